package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/mockprovider"
)

// TestSIGTERMFlushesEveryRecord runs the real binary, sends it N requests,
// stops it with SIGTERM and finds exactly N usage records in its database.
func TestSIGTERMFlushesEveryRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	mock := mockprovider.New(mockprovider.Options{
		Keys: map[string]mockprovider.Behavior{"sk-sigterm-key-000001": mockprovider.OK}, Latency: 200 * time.Millisecond})
	provider := httptest.NewServer(mock)
	defer provider.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "keygate.db")
	base, cmd, logs := startKeygate(t, dir, func(addr string) string {
		return fmt.Sprintf(`listen: %s
database_url: sqlite://%s
admin_token: kg-admin-sigterm
tokens: [{name: app, token: kg-app-sigterm}]
models:
  - model_id: gpt-4o-mini
    base_url: %s/v1
    api_keys: [sk-sigterm-key-000001]
`, addr, db, provider.URL)
	})

	const n = 30
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer kg-app-sigterm")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	// SIGTERM while every request is in flight at the provider.
	for i := 0; mock.Count("sk-sigterm-key-000001") < n; i++ {
		if i > 400 {
			t.Fatalf("only %d of %d requests reached the provider", mock.Count("sk-sigterm-key-000001"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	recs := exitedRecords(t, cmd, logs, db)
	if len(recs) != n {
		t.Fatalf("sent %d requests, found %d records after SIGTERM", n, len(recs))
	}
}
