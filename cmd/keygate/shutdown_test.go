package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	if !strings.Contains(rest.String(), `"code":"no_available_key"`) || strings.Contains(rest.String(), "[DONE]") {
		t.Fatalf("the cut stream must end with an error event, not [DONE] or silence:\n%s", rest.String())
	}
	if took > 15*time.Second {
		t.Fatalf("the stream ran %s after SIGTERM with shutdown_timeout 2s", took)
	}
	recs := exitedRecords(t, cmd, logs, db)
	if len(recs) != 1 {
		t.Fatalf("want the cut stream's record, found %d records:\n%s", len(recs), logs.String())
	}
	r := recs[0]
	if r.UsageSource != keygate.UsagePartial || r.CompletionTokens == 0 || r.PromptTokens == 0 || r.Status == 200 {
		t.Fatalf("the cut stream's record must be partial, with the tokens relayed so far, not a clean 200: %+v", r)
	}
}

// TestSIGTERMAnswersASlowRequestCleanly runs the real binary with two
// non-streamed requests in flight whose provider takes 50 s to answer (an
// OpenAI chat caller and an Anthropic Messages caller), and sends SIGTERM
// with shutdown_timeout 2s: each caller gets a complete 503 error in its
// own dialect's shape (code no_available_key, Retry-After), not a cut
// connection, the process exits cleanly, and both records are written,
// marked partial, with the prompt that was relayed.
func TestSIGTERMAnswersASlowRequestCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	mock := mockprovider.New(mockprovider.Options{Latency: 50 * time.Second,
		Keys: map[string]mockprovider.Behavior{"sk-slowanswer-key-001": mockprovider.OK}})
	provider := httptest.NewServer(mock)
	defer provider.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "keygate.db")
	base, cmd, logs := startKeygate(t, dir, func(addr string) string {
		return fmt.Sprintf(`listen: %s
database_url: sqlite://%s
admin_token: kg-admin-slowanswer
shutdown_timeout: 2s
tokens: [{name: app, token: kg-app-slowanswer}]
models:
  - model_id: gpt-4o-mini
    base_url: %s/v1
    input_price: 1
    api_keys: [sk-slowanswer-key-001]
`, addr, db, provider.URL)
	})

	type answer struct {
		status int
		retry  string
		body   string
		err    error
	}
	send := func(path, body string) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer kg-app-slowanswer")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			out <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err}
		}()
		return out
	}
	chatAnswer := send("/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"write a long essay"}]}`)
	msgAnswer := send("/v1/messages", `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"write a long essay"}]}`)
	for i := 0; mock.Count("sk-slowanswer-key-001") < 2; i++ { // both are waiting on the provider
		if i > 400 {
			t.Fatalf("the requests never reached the provider:\n%s", logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  <-chan answer
		want string
	}{
		{"chat", chatAnswer, `{"error":{"message":"keygate is shutting down`},
		{"messages", msgAnswer, `{"type":"error","error":{"type":"overloaded_error","message":"no_available_key: keygate is shutting down`},
	} {
		a := <-c.got
		if a.err != nil || a.status != 503 || a.retry == "" || !strings.HasPrefix(a.body, c.want) || !json.Valid([]byte(a.body)) {
			t.Fatalf("%s caller cut by shutdown: %d Retry-After %q %q %v, want a complete 503 starting %s", c.name, a.status, a.retry, a.body, a.err, c.want)
		}
		if c.name == "chat" && !strings.Contains(a.body, `"code":"no_available_key"`) {
			t.Fatalf("chat caller: %s, want code no_available_key", a.body)
		}
	}
	if took := time.Since(sent); took > 15*time.Second {
		t.Fatalf("the requests ran %s after SIGTERM with shutdown_timeout 2s", took)
	}
	recs := exitedRecords(t, cmd, logs, db)
	if len(recs) != 2 {
		t.Fatalf("want both cut requests' records, found %d:\n%s", len(recs), logs.String())
	}
	for _, r := range recs {
		if r.Status != 503 || r.UsageSource != keygate.UsagePartial || r.PromptTokens == 0 || r.CompletionTokens != 0 || r.Cost == 0 || r.KeyID == "" {
			t.Fatalf("a request cut by shutdown must be recorded as 503, partial, with its prompt: %+v", r)
		}
	}
}

// exitedRecords waits for keygate to exit, which must be clean, and reads
// the usage records it left in the SQLite database at db.
func exitedRecords(t *testing.T, cmd *exec.Cmd, logs *strings.Builder, db string) []keygate.UsageRecord {
	t.Helper()
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
	return recs
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
