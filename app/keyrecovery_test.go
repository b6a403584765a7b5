package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// scriptedKeyService answers its nth call (from 1) with answer(n) and
// counts the calls.
func scriptedKeyService(t *testing.T, answer func(n int) string) (url string, calls *atomic.Int64) {
	t.Helper()
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer(int(calls.Add(1)))))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/getApikey", calls
}

// TestFetchedKeysRecoverByThemselves drives a model whose only key comes
// from a key service through the three ways a service went wrong in the
// field. Once the service hands out a good key, no client request fails,
// and the service is not hammered.
func TestFetchedKeysRecoverByThemselves(t *testing.T) {
	// The provider knows good keys by their prefix; the quota key is spent.
	provider := mockprovider.New(mockprovider.Options{Validate: func(key string) (mockprovider.Behavior, bool) {
		switch {
		case strings.HasPrefix(key, "sk-good-"):
			return mockprovider.OK, true
		case strings.HasPrefix(key, "sk-spent-"):
			return mockprovider.QuotaExhausted, true
		}
		return "", false
	}})
	upstream := httptest.NewServer(provider)
	t.Cleanup(upstream.Close)

	tests := []struct {
		name     string
		answer   func(n int) string
		maxCalls int64
	}{
		{"an out-of-quota key, then good keys", func(n int) string {
			if n == 1 {
				return `{"result":"sk-spent-000000000001"}`
			}
			return fmt.Sprintf(`{"result":"sk-good-%012d"}`, n)
		}, 2},
		{"a key with a trailing newline", func(n int) string {
			return fmt.Sprintf(`{"result":"sk-good-%012d\n"}`, n)
		}, 1},
		{"a key that never expires", func(n int) string {
			return fmt.Sprintf(`{"result":"sk-good-%012d","expires_in":9999999999}`, n)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, calls := scriptedKeyService(t, tt.answer)
			cfg := baseConfig(t, t.TempDir())
			cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", KeyUsageMode: keygate.ModeSingle,
				KeySource: &keygate.KeySource{URL: url, SceneCode: "P2025122", Method: "GET", ResultField: "result",
					ExpireSeconds: 600, RefreshBeforeSeconds: 120, TimeoutSeconds: 5, Retries: 3, RetryIntervalMS: 10}}}
			g := start(t, cfg)

			deadline := time.Now().Add(1500 * time.Millisecond)
			n := 0
			for time.Now().Before(deadline) {
				resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
				if resp.StatusCode != 200 {
					t.Fatalf("request %d failed: %d %s", n, resp.StatusCode, b)
				}
				n++
			}
			if c := calls.Load(); c > tt.maxCalls {
				t.Fatalf("%d key-service calls for %d requests, want at most %d", c, n, tt.maxCalls)
			}
			for _, k := range keysByMasked(t, g.url) {
				if k["status"] == "disabled" || k["status"] == "cooldown" {
					t.Fatalf("the fetched key must serve with clean health: %v", k)
				}
			}
		})
	}
}
