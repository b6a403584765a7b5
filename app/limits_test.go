package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

var day1 = time.Date(2026, 4, 10, 23, 50, 0, 0, time.UTC)

// limitsEnv is a gateway on a fake clock in front of the mock provider,
// with a model priced at $1,000 per million tokens so costs are visible.
type limitsEnv struct {
	g        *gateway
	clock    *clockwork.FakeClock
	provider *mockprovider.Provider
}

func newLimitsEnv(t *testing.T, tokens []keygate.TokenSpec, edit func(*keygate.Model)) *limitsEnv {
	t.Helper()
	p := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-good-key-000000001": mockprovider.OK}})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	cfg := baseConfig(t, t.TempDir())
	m := keygate.Model{ModelID: "gpt-4o-mini", BaseURL: srv.URL + "/v1", InputPrice: 1000, OutputPrice: 1000,
		APIKeys: []keygate.KeySpec{{Key: "sk-good-key-000000001"}}}
	if edit != nil {
		edit(&m)
	}
	cfg.Models = []keygate.Model{m}
	cfg.Tokens = append(cfg.Tokens, tokens...)
	clock := clockwork.NewFakeClockAt(day1)
	return &limitsEnv{g: startWith(t, cfg, clock), clock: clock, provider: p}
}

func (e *limitsEnv) chat(t *testing.T, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, b := call(t, "POST", e.g.url+"/v1/chat/completions", token, body)
	var v map[string]any
	json.Unmarshal(b, &v)
	return resp, v
}

func errCode(v map[string]any) any {
	if e, ok := v["error"].(map[string]any); ok {
		return e["code"]
	}
	return nil
}

func TestTokenRPMWindow(t *testing.T) {
	e := newLimitsEnv(t, []keygate.TokenSpec{{Name: "slow", Token: "kg-slow-token-secret", RPM: 2}}, nil)
	for i := 0; i < 2; i++ {
		if resp, _ := e.chat(t, "kg-slow-token-secret", chat); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, v := e.chat(t, "kg-slow-token-secret", chat)
	if resp.StatusCode != 429 || errCode(v) != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request in a minute: %d %v Retry-After=%q", resp.StatusCode, v, resp.Header.Get("Retry-After"))
	}
	e.clock.Advance(2 * time.Minute)
	if resp, _ := e.chat(t, "kg-slow-token-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}
	// Another token is not affected by this one's limit.
	if resp, _ := e.chat(t, "kg-app-test-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("other token: %d", resp.StatusCode)
	}
}

func TestTokenTPMAndModelRPM(t *testing.T) {
	e := newLimitsEnv(t, []keygate.TokenSpec{{Name: "tpm", Token: "kg-tpm-token-secret", TPM: 100}},
		func(m *keygate.Model) { m.RPM = 3 })
	small := `{"model":"gpt-4o-mini","max_tokens":12,"messages":[{"role":"user","content":"hi"}]}`
	if resp, _ := e.chat(t, "kg-tpm-token-secret", small); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	// ~27 tokens used; a request reserving ~200 tokens does not fit in 100.
	big := `{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"user","content":"hi"}]}`
	if resp, v := e.chat(t, "kg-tpm-token-secret", big); resp.StatusCode != 429 || errCode(v) != "rate_limit_exceeded" {
		t.Fatalf("over TPM: %d %v", resp.StatusCode, v)
	}
	// The model's own RPM of 3 caps every token together.
	e.chat(t, "kg-app-test-secret", chat)
	e.chat(t, "kg-app-test-secret", chat)
	resp, v := e.chat(t, "kg-app-test-secret", chat)
	if resp.StatusCode != 429 || !strings.Contains(v["error"].(map[string]any)["message"].(string), "model gpt-4o-mini") {
		t.Fatalf("model RPM: %d %v", resp.StatusCode, v)
	}
}

func TestBudgetHoldsUnderConcurrencyAndRollsOver(t *testing.T) {
	e := newLimitsEnv(t, []keygate.TokenSpec{{Name: "tight", Token: "kg-tight-token-secret",
		Budget: &keygate.Budget{Amount: 0.1, Period: "daily"}}}, nil)
	body := `{"model":"gpt-4o-mini","max_tokens":12,"messages":[{"role":"user","content":"hello"}]}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, v := e.chat(t, "kg-tight-token-secret", body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case resp.StatusCode == 200:
				ok++
			case resp.StatusCode == 429 && errCode(v) == "budget_exceeded":
				over++
			default:
				t.Errorf("unexpected %d %v", resp.StatusCode, v)
			}
		}()
	}
	wg.Wait()
	if ok == 0 || over == 0 || ok+over != 50 {
		t.Fatalf("want some served and the rest refused as budget_exceeded: %d ok, %d over", ok, over)
	}
	spent, one := e.spent(t, "kg-tight-token-secret")
	if spent > 0.1+one {
		t.Fatalf("spent $%.4f on a $0.10 budget: more than one request ($%.4f) over", spent, one)
	}
	// The next day the daily budget starts again.
	e.clock.Advance(time.Hour)
	if resp, v := e.chat(t, "kg-tight-token-secret", body); resp.StatusCode != 200 {
		t.Fatalf("after midnight the daily budget rolls over: %d %v", resp.StatusCode, v)
	}
}

// spent reads the caller's own usage (GET /api/v1/llm/usage) once the
// records are written, and the cost of one request.
func (e *limitsEnv) spent(t *testing.T, token string) (total, one float64) {
	t.Helper()
	var v map[string]any
	for i := 0; i < 200; i++ {
		e.clock.Advance(time.Second) // lets the recorder flush
		_, b := call(t, "GET", e.g.url+"/api/v1/llm/usage", token, "")
		json.Unmarshal(b, &v)
		if n, _ := v["requests"].(float64); n > 0 {
			time.Sleep(20 * time.Millisecond)
			_, b = call(t, "GET", e.g.url+"/api/v1/llm/usage", token, "")
			json.Unmarshal(b, &v)
			return v["cost"].(float64), v["cost"].(float64) / v["requests"].(float64)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("usage never reached the store")
	return 0, 0
}

func TestTokenExpiry(t *testing.T) {
	exp := day1.Add(time.Hour)
	e := newLimitsEnv(t, []keygate.TokenSpec{{Name: "brief", Token: "kg-brief-token-secret", ExpiresAt: &exp}}, nil)
	if resp, _ := e.chat(t, "kg-brief-token-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Hour)
	if resp, v := e.chat(t, "kg-brief-token-secret", chat); resp.StatusCode != 401 || errCode(v) != "invalid_api_key" {
		t.Fatalf("after expiry: %d %v", resp.StatusCode, v)
	}
}

func TestStreamUsageChunkHiddenOrShownAndRecorded(t *testing.T) {
	e := newLimitsEnv(t, nil, nil)
	read := func(body string) (events []string) {
		req, _ := http.NewRequest("POST", e.g.url+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer kg-app-test-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				events = append(events, sc.Text())
			}
		}
		return events
	}
	hasUsage := func(events []string) bool {
		for _, ev := range events {
			if strings.Contains(ev, `"usage":{`) {
				return true
			}
		}
		return false
	}
	plain := read(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if hasUsage(plain) || plain[len(plain)-1] != "data: [DONE]" {
		t.Fatalf("a caller that did not ask must not see the usage chunk: %v", plain)
	}
	asked := read(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if !hasUsage(asked) {
		t.Fatalf("a caller that asked must see the usage chunk: %v", asked)
	}
	for _, r := range e.provider.Requests() {
		if !strings.Contains(string(r.Body), `"include_usage":true`) {
			t.Fatalf("keygate must ask the provider for usage: %s", r.Body)
		}
	}
	totals := e.usageBy(t, "token", 2)
	if totals[0]["completion_tokens"].(float64) != 24 {
		t.Fatalf("both streams recorded with the provider's usage (12 + 12): %v", totals)
	}
}

// usageBy reads GET /api/v1/usage grouped by group once n records landed.
func (e *limitsEnv) usageBy(t *testing.T, group string, n int) []map[string]any {
	t.Helper()
	for i := 0; i < 200; i++ {
		e.clock.Advance(time.Second)
		_, b := call(t, "GET", e.g.url+"/api/v1/usage?group_by="+group, "kg-admin-test-secret", "")
		var v struct{ Data []map[string]any }
		json.Unmarshal(b, &v)
		sum := 0.0
		for _, d := range v.Data {
			sum += d["requests"].(float64)
		}
		if int(sum) >= n {
			return v.Data
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d records never reached the store", n)
	return nil
}

func TestTokenizerFallbackWhenProviderSendsNoUsage(t *testing.T) {
	// An OpenAI-compatible server that reports no usage at all.
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Stream bool }
		json.NewDecoder(r.Body).Decode(&req)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, word := range []string{"hello", " there", " friend"} {
				fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", word)
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello there friend"},"finish_reason":"stop"}]}`)
	}))
	defer bare.Close()
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: bare.URL, APIKeys: []keygate.KeySpec{{Key: "sk-any-key-0000000001"}}}}
	clock := clockwork.NewFakeClockAt(day1)
	e := &limitsEnv{g: startWith(t, cfg, clock), clock: clock}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}]}`
	if resp, v := e.chat(t, "kg-app-test-secret", body); resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, v)
	}
	stream := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello world"}]}`
	if resp, _ := call(t, "POST", e.g.url+"/v1/chat/completions", "kg-app-test-secret", stream); resp.StatusCode != 200 {
		t.Fatalf("stream %d", resp.StatusCode)
	}
	got := e.usageBy(t, "model", 2)[0]
	// "hello world" is 2 tokens + 3 for the message + 3 to prime the reply;
	// "hello there friend" is 3 tokens. Twice.
	if got["prompt_tokens"] != float64(16) || got["completion_tokens"] != float64(6) {
		t.Fatalf("tokenizer fallback: want 16 prompt and 6 completion tokens, got %v", got)
	}
}

func TestTokensAPI(t *testing.T) {
	e := newLimitsEnv(t, nil, nil)
	resp, b := call(t, "POST", e.g.url+"/api/v1/tokens", "kg-admin-test-secret",
		`{"name":"team-a","user":"bob","models":["gpt-4o-mini"],"rpm":100,"budget":{"amount":5,"period":"monthly"}}`)
	var created map[string]any
	json.Unmarshal(b, &created)
	secret, _ := created["token"].(string)
	if resp.StatusCode != 201 || !strings.HasPrefix(secret, "kg-") {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	if resp, _ := e.chat(t, secret, chat); resp.StatusCode != 200 {
		t.Fatalf("a new token works at once: %d", resp.StatusCode)
	}
	_, b = call(t, "GET", e.g.url+"/api/v1/tokens", "kg-admin-test-secret", "")
	if strings.Contains(string(b), secret) || !strings.Contains(string(b), `"team-a"`) || !strings.Contains(string(b), `"spent"`) {
		t.Fatalf("the list shows tokens without their secret, with spending: %s", b)
	}
	for _, bad := range []string{`{"name":""}`, `{"name":"x","budget":{"amount":1,"period":"weekly"}}`, `{"name":"x","rpm":-1}`, `{"name":"app"}`} {
		if resp, b := call(t, "POST", e.g.url+"/api/v1/tokens", "kg-admin-test-secret", bad); resp.StatusCode/100 != 4 {
			t.Errorf("%s: want a 4xx, got %d %s", bad, resp.StatusCode, b)
		}
	}
	if resp, _ := call(t, "POST", e.g.url+"/api/v1/tokens", secret, `{"name":"sneaky"}`); resp.StatusCode != 403 {
		t.Fatalf("a gateway token cannot create tokens: %d", resp.StatusCode)
	}
	id := fmt.Sprint(created["id"])
	if resp, _ := call(t, "DELETE", e.g.url+"/api/v1/tokens/"+id, "kg-admin-test-secret", ""); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := e.chat(t, secret, chat); resp.StatusCode != 401 {
		t.Fatalf("a revoked token stops working at once: %d", resp.StatusCode)
	}
}

func TestLoginTokenOnClientAPI(t *testing.T) {
	e := newLimitsEnv(t, nil, nil)
	resp, b := call(t, "POST", e.g.url+"/api/v1/users", "kg-admin-test-secret", `{"username":"carol","password":"correct horse","role":"user"}`)
	var user map[string]any
	json.Unmarshal(b, &user)
	if resp.StatusCode != 201 {
		t.Fatalf("create user: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "POST", e.g.url+"/api/v1/auth/login", "", `{"username":"carol","password":"correct horse"}`)
	var login map[string]any
	json.Unmarshal(b, &login)
	jwt, _ := login["token"].(string)
	if resp.StatusCode != 200 || jwt == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	if resp, v := e.chat(t, jwt, chat); resp.StatusCode != 200 {
		t.Fatalf("a login token calls the client API (SPEC 2): %d %v", resp.StatusCode, v)
	}
	if got := e.usageBy(t, "user", 1); got[0]["group"] != "carol" {
		t.Fatalf("the call is recorded for the user: %v", got)
	}
	if resp, _ := e.chat(t, jwt[:len(jwt)-4]+"AAAA", chat); resp.StatusCode != 401 {
		t.Fatalf("a forged login token: %d", resp.StatusCode)
	}
	call(t, "DELETE", e.g.url+fmt.Sprintf("/api/v1/users/%v", user["id"]), "kg-admin-test-secret", "")
	if resp, v := e.chat(t, jwt, chat); resp.StatusCode != 401 || !strings.Contains(fmt.Sprint(v), "no longer exists") {
		t.Fatalf("a deleted user's login token stops at once: %d %v", resp.StatusCode, v)
	}
	e.clock.Advance(25 * time.Hour)
	if resp, _ := e.chat(t, jwt, chat); resp.StatusCode != 401 {
		t.Fatalf("expired: %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	e := newLimitsEnv(t, nil, nil)
	e.chat(t, "kg-app-test-secret", chat)
	if resp, _ := call(t, "GET", e.g.url+"/metrics", "kg-app-test-secret", ""); resp.StatusCode != 403 {
		t.Fatalf("metrics need the admin credential: %d", resp.StatusCode)
	}
	resp, b := call(t, "GET", e.g.url+"/metrics", "kg-admin-test-secret", "")
	body := string(b)
	for _, want := range []string{
		`keygate_requests_total{model="gpt-4o-mini",status="200"} 1`,
		`keygate_upstream_attempts_total{class="ok",model="gpt-4o-mini"} 1`,
		`keygate_tokens_total{kind="completion",model="gpt-4o-mini"} 12`,
		`keygate_keys{status="healthy"} 1`,
		`keygate_request_duration_seconds_count{model="gpt-4o-mini"} 1`,
		`keygate_gateway_overhead_seconds_count{model="gpt-4o-mini"} 1`,
		`keygate_time_to_first_token_seconds_count{model="gpt-4o-mini"} 1`,
		`keygate_cost_usd_total{model="gpt-4o-mini"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if resp.StatusCode != 200 || strings.Contains(body, "sk-good-key") || strings.Contains(body, "kg-app-test-secret") {
		t.Fatalf("metrics: %d, and no key or token may appear", resp.StatusCode)
	}
}
