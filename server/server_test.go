package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keycheck"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/server"
)

// memRecorder keeps usage records in memory so tests can read what the
// relay recorded; the store's own batching is tested in package usage.
type memRecorder struct {
	mu   sync.Mutex
	recs []keygate.UsageRecord
}

func (m *memRecorder) Record(r keygate.UsageRecord) error {
	m.mu.Lock()
	m.recs = append(m.recs, r)
	m.mu.Unlock()
	return nil
}

func (m *memRecorder) all() []keygate.UsageRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]keygate.UsageRecord(nil), m.recs...)
}

type fixture struct {
	provider *mockprovider.Provider
	upstream *httptest.Server
	gateway  *httptest.Server
	pool     *pool.Pool
	rec      *memRecorder
	clock    *clockwork.FakeClock
}

const (
	appToken    = "kg-test-app-token"
	limitedTok  = "kg-test-limited-token"
	expiredTok  = "kg-test-expired-token"
	meteredTok  = "kg-test-metered-token"
	healthyKey1 = "sk-healthy-one-111111"
	healthyKey2 = "sk-healthy-two-222222"
)

type setup struct {
	keys map[string]mockprovider.Behavior
	opts mockprovider.Options
	// upstream, if set, wraps the mock provider (a test's own misbehaviour).
	upstream func(http.Handler) http.Handler
	models   func(base string) []keygate.Model
	maxBody  int64
	policy   *keygate.KeyPolicy
	tune     func(*relay.Relay) // changes to the relay's settings
	// readTimeout bounds reading request bodies (default: the server's).
	readTimeout time.Duration
}

func newFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	s.opts.Keys = s.keys
	if s.opts.Keys == nil {
		s.opts.Keys = map[string]mockprovider.Behavior{healthyKey1: mockprovider.OK, healthyKey2: mockprovider.OK}
	}
	f := &fixture{provider: mockprovider.New(s.opts), rec: &memRecorder{}, clock: clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	var up http.Handler = f.provider
	if s.upstream != nil {
		up = s.upstream(f.provider)
	}
	f.upstream = httptest.NewServer(up)
	t.Cleanup(f.upstream.Close)

	base := f.upstream.URL + "/v1"
	models := []keygate.Model{{
		ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: base, KeyUsageMode: keygate.ModeRoundRobin,
		APIKeys: []keygate.KeySpec{{Key: healthyKey1}, {Key: healthyKey2}},
	}, {
		ModelID: "text-embedding-3-small", Provider: "openai", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
		APIKeys: []keygate.KeySpec{{Key: healthyKey1}},
	}, {
		ModelID: "house-model", UpstreamModel: "gpt-4o", Provider: "openai", BaseURL: base,
		APIKeys: []keygate.KeySpec{{Key: healthyKey1}},
	}}
	if s.models != nil {
		models = s.models(base)
	}
	policy := keygate.DefaultKeyPolicy()
	if s.policy != nil {
		policy = *s.policy
	}
	f.pool = pool.New(keygate.NewKeyHasher([]byte("test")), policy)
	f.pool.SetClock(f.clock.Now)
	if err := f.pool.Load(models); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	past := f.clock.Now().Add(-time.Hour)
	auth := server.NewAuth("kg-admin-secret", f.clock.Now)
	auth.SetTokens([]keygate.TokenSpec{
		{Name: "app", Token: appToken, User: "alice", Models: []string{"*"}},
		{Name: "limited", Token: limitedTok, Models: []string{"text-embedding-3-small"}},
		{Name: "old", Token: expiredTok, ExpiresAt: &past},
		{Name: "metered", Token: meteredTok, RPM: 5, TPM: 100000},
	})
	if s.maxBody == 0 {
		s.maxBody = 32 << 20
	}
	checker := &keycheck.Checker{Pool: f.pool, Client: http.DefaultClient, Clock: f.clock, Logger: logger}
	rl := &relay.Relay{
		Pool: f.pool, Client: &http.Client{Transport: upstreamTransport(10 * time.Second)}, Recorder: f.rec,
		Logger: logger, Clock: f.clock, MaxResponseBytes: 64 << 20,
	}
	if s.tune != nil {
		s.tune(rl)
	}
	h := server.New(server.Deps{
		Logger: logger, Clock: f.clock, Pool: f.pool, Auth: auth, MaxBodyBytes: s.maxBody, Checker: checker, Relay: rl,
		RequestReadTimeout: s.readTimeout,
	})
	f.gateway = httptest.NewServer(h)
	t.Cleanup(f.gateway.Close)
	return f
}

func (f *fixture) post(t *testing.T, path, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, b)
	}
	return v
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`

func TestChatNonStreaming(t *testing.T) {
	f := newFixture(t, setup{})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	v := readJSON(t, resp)
	if v["object"] != "chat.completion" {
		t.Fatalf("want a chat.completion, got %v", v)
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Keygate-Attempts") != "1" {
		t.Fatalf("missing keygate headers: %v", resp.Header)
	}
	if k := resp.Header.Get("X-Keygate-Key"); k != f.pool.KeyID(healthyKey1) && k != f.pool.KeyID(healthyKey2) {
		t.Fatalf("X-Keygate-Key %q is not the id of a pool key", k)
	}
	got := f.provider.Requests()
	if len(got) != 1 || got[0].Authorization == "Bearer "+appToken || (got[0].Key != healthyKey1 && got[0].Key != healthyKey2) {
		t.Fatalf("the provider must see a pool key, never the caller's token: %+v", got)
	}
	recs := f.rec.all()
	usage := v["usage"].(map[string]any)
	if len(recs) != 1 || recs[0].Status != 200 || recs[0].Token != "app" || recs[0].User != "alice" ||
		recs[0].PromptTokens != int(usage["prompt_tokens"].(float64)) || recs[0].CompletionTokens != int(usage["completion_tokens"].(float64)) ||
		recs[0].KeyID == "" || recs[0].RequestID != resp.Header.Get("X-Request-Id") || recs[0].Model != "gpt-4o-mini" {
		t.Fatalf("record does not match the request: %+v", recs)
	}
}

func TestUpstreamModelRenameAndAlias(t *testing.T) {
	f := newFixture(t, setup{})
	resp := f.post(t, "/api/v1/llm/chat", appToken, `{"model":"house-model","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("alias: status %d", resp.StatusCode)
	}
	if got := f.provider.Requests(); got[0].Model != "gpt-4o" {
		t.Fatalf("upstream must receive upstream_model gpt-4o, got %q", got[0].Model)
	}
	if r := f.rec.all(); r[0].Model != "house-model" || r[0].UpstreamModel != "gpt-4o" {
		t.Fatalf("record: %+v", r[0])
	}
}

func TestChatStreamingFlushesEachEvent(t *testing.T) {
	hold := make(chan struct{})
	f := newFixture(t, setup{opts: mockprovider.Options{StreamHold: hold}})
	resp := f.post(t, "/v1/chat/completions", appToken,
		`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: {") {
		t.Fatalf("first event must arrive while the provider is still holding the stream: %q %v", first, err)
	}
	close(hold)
	rest, _ := io.ReadAll(br)
	if !strings.HasSuffix(strings.TrimSpace(string(rest)), "data: [DONE]") {
		t.Fatalf("stream must end with [DONE]: %s", rest)
	}
	resp.Body.Close()
	waitFor(t, func() bool { return len(f.rec.all()) == 1 })
	r := f.rec.all()[0]
	if !r.Stream || r.Status != 200 || r.CompletionTokens == 0 || r.PromptTokens == 0 {
		t.Fatalf("stream record must carry the provider's usage: %+v", r)
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	f := newFixture(t, setup{})
	resp := f.post(t, "/v1/embeddings", appToken, `{"model":"text-embedding-3-small","input":["a","b"]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("embeddings status %d", resp.StatusCode)
	}
	if data := readJSON(t, resp)["data"].([]any); len(data) != 2 {
		t.Fatalf("want 2 embeddings, got %d", len(data))
	}
	for _, path := range []string{"/v1/models", "/api/v1/llm/models"} {
		req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+limitedTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		v := readJSON(t, resp)
		resp.Body.Close()
		data := v["data"].([]any)
		if v["object"] != "list" || len(data) != 1 || data[0].(map[string]any)["id"] != "text-embedding-3-small" {
			t.Fatalf("%s: a token limited to one model must see only it: %v", path, v)
		}
	}
}

func TestRoundRobinSpreadsOverKeys(t *testing.T) {
	f := newFixture(t, setup{})
	for i := 0; i < 10; i++ {
		if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if a, b := f.provider.Count(healthyKey1), f.provider.Count(healthyKey2); a != 5 || b != 5 {
		t.Fatalf("round robin over 2 keys: want 5/5, got %d/%d", a, b)
	}
}

func TestFailoverSkipsBadKeys(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-invalid-key-0000": mockprovider.InvalidKey, "sk-limited-key-0000": mockprovider.RateLimited, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: "sk-invalid-key-0000"}, {Key: "sk-limited-key-0000"}, {Key: healthyKey1}}}}
		},
	})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "3" || resp.Header.Get("X-Keygate-Key") != f.pool.KeyID(healthyKey1) {
		t.Fatalf("want success on the third key, got %d attempts=%s key=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), resp.Header.Get("X-Keygate-Key"))
	}
}

func TestEveryKeyFailingReturnsLastUpstreamErrorMasked(t *testing.T) {
	bad := "sk-bad-and-echoed-key-9999"
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{bad: mockprovider.QuotaExhausted},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: bad}}}}
		},
	})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || !strings.Contains(string(b), "insufficient_quota") || strings.Contains(string(b), bad) {
		t.Fatalf("want the provider's 429 insufficient_quota with no clear key, got %d %s", resp.StatusCode, b)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	// The mock answers 404 model_not_found for a model it does not serve:
	// every key would fail the same way, so no other key is tried.
	f2 := newFixture(t, setup{models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", UpstreamModel: "no-such-upstream", BaseURL: base,
			APIKeys: []keygate.KeySpec{{Key: healthyKey1}, {Key: healthyKey2}}}}
	}})
	resp := f2.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 404 || len(f2.provider.Requests()) != 1 {
		t.Fatalf("a 404 from the provider goes back at once: status %d after %d calls", resp.StatusCode, len(f2.provider.Requests()))
	}
	if code := readJSON(t, resp)["error"].(map[string]any)["code"]; code != "model_not_found" {
		t.Fatalf("the provider's error body must reach the caller, got code %v", code)
	}
}

func TestGarbageFromProviderFailsOver(t *testing.T) {
	f := newFixture(t, setup{keys: map[string]mockprovider.Behavior{"sk-garbage-key-00000": mockprovider.Garbage, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: "sk-garbage-key-00000"}, {Key: healthyKey1}}}}
		}})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("garbage must be treated as a failure and fail over: %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	f2 := newFixture(t, setup{keys: map[string]mockprovider.Behavior{"sk-garbage-key-00000": mockprovider.Garbage},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: "sk-garbage-key-00000"}}}}
		}})
	resp = f2.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 502 || readJSON(t, resp)["error"].(map[string]any)["code"] != keygate.EUpstream {
		t.Fatalf("garbage from the only key: want 502 upstream_error, got %d", resp.StatusCode)
	}
}

func TestErrorTable(t *testing.T) {
	f := newFixture(t, setup{maxBody: 1024})
	noKeys := newFixture(t, setup{models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: healthyKey1, Status: keygate.StatusDisabled}}}}
	}})
	cases := []struct {
		name, token, body string
		fx                *fixture
		status            int
		code, msg         string
	}{
		{"no token", "", chatBody, f, 401, "invalid_api_key", "missing bearer token"},
		{"unknown token", "kg-nope", chatBody, f, 401, "invalid_api_key", "invalid or unknown token"},
		{"expired token", expiredTok, chatBody, f, 401, "invalid_api_key", "expired"},
		{"model not allowed", limitedTok, chatBody, f, 403, "model_not_allowed", "gpt-4o-mini"},
		{"unknown model", appToken, `{"model":"gpt-9","messages":[]}`, f, 404, "model_not_found", "gpt-9"},
		{"malformed JSON", appToken, `{"model":"gpt-4o-mini",`, f, 400, "invalid_request", "not valid JSON"},
		{"missing model", appToken, `{"messages":[]}`, f, 400, "invalid_request", "model"},
		{"model not a string", appToken, `{"model":5,"messages":[]}`, f, 400, "invalid_request", "model"},
		{"missing messages", appToken, `{"model":"gpt-4o-mini"}`, f, 400, "invalid_request", "messages"},
		{"bad stream flag", appToken, `{"model":"gpt-4o-mini","messages":[],"stream":"yes"}`, f, 400, "invalid_request", "stream"},
		{"too large", appToken, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, f, 413, "request_too_large", "1024"},
		{"no available key", appToken, chatBody, noKeys, 503, "no_available_key", "gpt-4o-mini"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.fx.post(t, "/v1/chat/completions", tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("every response carries X-Request-Id")
			}
			e, ok := readJSON(t, resp)["error"].(map[string]any)
			if !ok || e["code"] != tc.code || !strings.Contains(e["message"].(string), tc.msg) || e["type"] == "" {
				t.Fatalf("want code %s with %q in the message, got %v", tc.code, tc.msg, e)
			}
		})
	}
	if n := len(f.provider.Requests()); n != 0 {
		t.Fatalf("rejected requests must not reach the provider, %d did", n)
	}
}

func TestUnknownRouteAndHealth(t *testing.T) {
	f := newFixture(t, setup{})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/v2/nothing": 404} {
		resp, err := http.Get(f.gateway.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: status %d, want %d (with X-Request-Id)", path, resp.StatusCode, want)
		}
	}
	for _, k := range f.pool.Keys() {
		k.SetDisabled(true)
	}
	resp, _ := http.Get(f.gateway.URL + "/readyz")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz with no usable key: %d, want 503", resp.StatusCode)
	}
}

func TestRequestIDIsKeptWhenSane(t *testing.T) {
	f := newFixture(t, setup{})
	req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-abc-123")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-abc-123" {
		t.Fatalf("got %q", got)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	f := newFixture(t, setup{opts: mockprovider.Options{StreamHold: hold}})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.gateway.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+appToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return f.provider.Canceled() == 1 })
	waitFor(t, func() bool { return len(f.rec.all()) == 1 })
	if r := f.rec.all()[0]; r.Status != 499 {
		t.Fatalf("a caller hanging up is recorded as 499, got %d", r.Status)
	}
}

// waitFor polls cond for up to 5 s: for work that finishes on another
// goroutine after the response (recording, upstream cancellation).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached within 5s")
}
