package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/store"
)

// TestSIGTERMEndsALongStreamCleanly runs the real binary with a stream of
// about 50 s in flight (one word a second) and sends SIGTERM with
// shutdown_timeout 2s: the stream ends with an error event the caller's
// SDK raises, the process exits cleanly, and the stream's usage record is
// there, marked partial, with the tokens relayed so far.
func TestSIGTERMEndsALongStreamCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	mock := mockprovider.New(mockprovider.Options{ChunkDelay: time.Second, Words: 50,
		Keys: map[string]mockprovider.Behavior{"sk-longstream-key-0001": mockprovider.OK}})
	provider := httptest.NewServer(mock)
	defer provider.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "keygate.db")
	base, cmd, logs := startKeygate(t, dir, func(addr string) string {
		return fmt.Sprintf(`listen: %s
database_url: sqlite://%s
admin_token: kg-admin-longstream
shutdown_timeout: 2s
tokens: [{name: app, token: kg-app-longstream}]
models:
  - model_id: gpt-4o-mini
    base_url: %s/v1
    api_keys: [sk-longstream-key-0001]
`, addr, db, provider.URL)
	})

	req, _ := http.NewRequest("POST", base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"tell me a long story"}]}`))
	req.Header.Set("Authorization", "Bearer kg-app-longstream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	chunks := 0
	for chunks < 3 { // a few words have reached the caller
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream broke early: %v", err)
		}
		if strings.HasPrefix(line, "data: {") {
			chunks++
		}
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for {
		line, err := br.ReadString('\n')
		rest.WriteString(line)
		if err != nil {
			break
		}
	}
	took := time.Since(sent)
	if !strings.Contains(rest.String(), `"code":"shutting_down"`) || strings.Contains(rest.String(), "[DONE]") {
		t.Fatalf("the cut stream must end with an error event, not [DONE] or silence:\n%s", rest.String())
	}
	if took > 15*time.Second {
		t.Fatalf("the stream ran %s after SIGTERM with shutdown_timeout 2s", took)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("keygate exited with %v:\n%s", err, logs.String())
	}

	s, err := store.Open(context.Background(), "sqlite://"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.ListUsage(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("want the cut stream's record, found %d records:\n%s", len(recs), logs.String())
	}
	r := recs[0]
	if r.UsageSource != keygate.UsagePartial || r.CompletionTokens == 0 || r.PromptTokens == 0 || r.Status == 200 {
		t.Fatalf("the cut stream's record must be partial, with the tokens relayed so far, not a clean 200: %+v", r)
	}
}

// startKeygate builds the binary into dir, writes the config config(addr)
// gives for a free loopback address, starts `keygate serve` on it and
// waits until it answers /healthz. It returns the base URL, the process
// and its stderr.
func startKeygate(t *testing.T, dir string, config func(addr string) string) (string, *exec.Cmd, *strings.Builder) {
	t.Helper()
	bin := filepath.Join(dir, "keygate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(dir, "keygate.yaml"), []byte(config(addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "keygate.yaml"))
	cmd.Dir = dir
	logs := &strings.Builder{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	base := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base, cmd, logs
		}
		if i > 200 {
			t.Fatalf("keygate did not start:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
