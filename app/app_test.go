package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/store"
)

// gateway is a keygate started through app.New and Serve on port 0, the way
// `keygate serve` starts it.
type gateway struct {
	url    string
	stop   context.CancelFunc
	done   chan error
	dbPath string
}

func start(t *testing.T, cfg *config.Config) *gateway {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith starts the gateway on an injected clock (nil: the real one).
func startWith(t *testing.T, cfg *config.Config, clock clockwork.Clock) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { g.done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { g.shutdown(t) })
	return g
}

// shutdown stops the gateway as SIGTERM would and waits for it.
func (g *gateway) shutdown(t *testing.T) {
	t.Helper()
	if g.stop == nil {
		return
	}
	g.stop()
	g.stop = nil
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop")
	}
}

func baseConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.Options{WorkDir: t.TempDir(), Listen: "127.0.0.1:0",
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = "sqlite://" + filepath.Join(dir, "keygate.db")
	cfg.AdminToken = "kg-admin-test-secret"
	cfg.Tokens = []keygate.TokenSpec{{Name: "app", Token: "kg-app-test-secret", Models: []string{"*"}}}
	return cfg
}

func call(t *testing.T, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func TestKeyStateSurvivesRestart(t *testing.T) {
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-good-key-000000001": mockprovider.OK, "sk-revoked-key-000002": mockprovider.InvalidKey,
	}}))
	defer provider.Close()
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: provider.URL + "/v1",
		KeyUsageMode: keygate.ModeSingle, InputPrice: 1, OutputPrice: 2,
		APIKeys: []keygate.KeySpec{{Key: "sk-revoked-key-000002"}, {Key: "sk-good-key-000000001"}}}}

	g := start(t, cfg)
	for i := 0; i < 3; i++ {
		if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	}
	before := keysByMasked(t, g.url)
	g.shutdown(t)

	g2 := start(t, cfg)
	after := keysByMasked(t, g2.url)
	revoked, good := after[keygate.Mask("sk-revoked-key-000002")], after[keygate.Mask("sk-good-key-000000001")]
	if revoked["status"] != "disabled" || revoked["error_class"] != "authentication_error" {
		t.Fatalf("the revoked key must still be disabled after a restart: %v", revoked)
	}
	if good["success_count"] != float64(3) || good["total_requests"] != before[keygate.Mask("sk-good-key-000000001")]["total_requests"] ||
		good["prompt_tokens"].(float64) == 0 || good["cost"].(float64) == 0 {
		t.Fatalf("the good key's statistics must come back: %v", good)
	}
	// The disabled key is not tried again after the restart.
	resp, _ := call(t, "POST", g2.url+"/v1/chat/completions", "kg-app-test-secret", chat)
	if resp.Header.Get("X-Keygate-Attempts") != "1" {
		t.Fatalf("after restart the revoked key must be skipped, attempts=%s", resp.Header.Get("X-Keygate-Attempts"))
	}
}

func keysByMasked(t *testing.T, url string) map[string]map[string]any {
	t.Helper()
	resp, b := call(t, "GET", url+"/api/v1/keys", "kg-admin-test-secret", "")
	if resp.StatusCode != 200 {
		t.Fatalf("keys: %d %s", resp.StatusCode, b)
	}
	var v struct{ Data []map[string]any }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, k := range v.Data {
		out[k["masked"].(string)] = k
	}
	return out
}

func TestShutdownFlushesEveryRecord(t *testing.T) {
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-good-key-000000001": mockprovider.OK}, Latency: 20 * time.Millisecond}))
	defer provider.Close()
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: provider.URL + "/v1", APIKeys: []keygate.KeySpec{{Key: "sk-good-key-000000001"}}}}
	g := start(t, cfg)

	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
				t.Errorf("status %d: %s", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	g.shutdown(t) // flushes the recorder before Serve returns

	db, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.ListUsage(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("want exactly %d usage records after shutdown, got %d", n, len(recs))
	}
}

func TestZeroConfigModeFixedKey(t *testing.T) {
	provider := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-zero-config-key-01": mockprovider.OK}})
	srv := httptest.NewServer(provider)
	defer srv.Close()
	env := map[string]string{
		"LLM_API_KEY": "sk-zero-config-key-01", "LLM_BASE_URL": srv.URL + "/v1", "LLM_MODEL": "gpt-4o-mini",
		"LLM_TEMPERATURE": "0.3", "APIKEY_SERVICE_ENABLED": "false",
		"KEYGATE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "kg.db"),
	}
	cfg, err := config.Load(config.Options{WorkDir: t.TempDir(), Listen: "127.0.0.1:0",
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	g := start(t, cfg) // no token configured, loopback: open mode
	resp, b := call(t, "POST", g.url+"/v1/chat/completions", "", chat)
	if resp.StatusCode != 200 {
		t.Fatalf("zero-config relay: %d %s", resp.StatusCode, b)
	}
	got := provider.Requests()
	if len(got) != 1 || got[0].Key != "sk-zero-config-key-01" || !strings.Contains(string(got[0].Body), `"temperature":0.3`) {
		t.Fatalf("the provider must get LLM_API_KEY and the default temperature: %+v", got)
	}
}

func TestRefusesOpenNonLoopback(t *testing.T) {
	cfg := baseConfig(t, t.TempDir())
	cfg.AdminToken, cfg.Tokens, cfg.Listen = "", nil, "0.0.0.0:8080"
	_, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "no authentication") {
		t.Fatalf("want a refusal to listen on 0.0.0.0 without auth, got %v", err)
	}
}
