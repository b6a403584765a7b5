package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

func TestFallbackModelAfterKeysAreSpent(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-quota-gone-000001": mockprovider.QuotaExhausted, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{
				{ModelID: "gpt-4o-mini", BaseURL: base, Fallbacks: []string{"gpt-4o"}, APIKeys: []keygate.KeySpec{{Key: "sk-quota-gone-000001"}}},
				{ModelID: "gpt-4o", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: healthyKey1}}},
			}
		},
	})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("want the fallback model to answer on attempt 2, got %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	if got := f.provider.Requests(); got[1].Model != "gpt-4o" {
		t.Fatalf("the fallback must call its own model, got %q", got[1].Model)
	}
}

func TestNoAvailableKeyCarriesRetryAfter(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-limited-key-00001": mockprovider.RateLimited},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: "sk-limited-key-00001"}}}}
		},
	})
	// The first call meets the provider's 429 (Retry-After: 20) and returns it.
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 429 {
		t.Fatalf("first call: %d", resp.StatusCode)
	}
	// Now the only key cools down: the gateway answers by itself.
	f.clock.Advance(5 * time.Second)
	resp = f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "15" {
		t.Fatalf("want 503 with Retry-After 15 (20 s cooldown, 5 s gone), got %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := readJSON(t, resp)["error"].(map[string]any)["code"]; code != "no_available_key" {
		t.Fatalf("code %v", code)
	}
	if n := f.provider.Count("sk-limited-key-00001"); n != 1 {
		t.Fatalf("a cooling key must not be called, provider saw %d calls", n)
	}
	// When the cooldown ends, the key is probed again.
	f.clock.Advance(15 * time.Second)
	f.provider.SetBehavior("sk-limited-key-00001", mockprovider.OK)
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
		t.Fatalf("after the cooldown the key must serve again: %d", resp.StatusCode)
	}
}

func TestMaxRetriesBoundsKeyRotation(t *testing.T) {
	keys := map[string]mockprovider.Behavior{}
	var specs []keygate.KeySpec
	for i := 0; i < 6; i++ {
		k := fmt.Sprintf("sk-broken-%02d-xxxxxxx", i)
		keys[k] = mockprovider.ServerError
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	f := newFixture(t, setup{keys: keys, models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle, APIKeys: specs}}
	}})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 500 || resp.Header.Get("X-Keygate-Attempts") != "4" {
		t.Fatalf("max_retries 3: want 4 attempts ending in the provider's 500, got %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	seen := map[string]bool{}
	for _, r := range f.provider.Requests() {
		if seen[r.Key] {
			t.Fatalf("key %s tried twice in one request", keygate.Mask(r.Key))
		}
		seen[r.Key] = true
	}
}

func TestNetworkErrorsHaveTheirOwnBudget(t *testing.T) {
	// Three keys at an address where nothing listens, then a good one:
	// network errors are retried on other keys without using max_retries.
	dead := "http://127.0.0.1:1/v1"
	f := newFixture(t, setup{models: func(base string) []keygate.Model {
		return []keygate.Model{
			{ModelID: "gpt-4o-mini", BaseURL: dead, APIKeys: []keygate.KeySpec{{Key: "sk-dead-one-0000001"}, {Key: "sk-dead-two-0000002"}}, KeyUsageMode: keygate.ModeSingle},
		}
	}})
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 502 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("want 502 after trying both keys, got %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	if e := readJSON(t, resp)["error"].(map[string]any); e["code"] != keygate.EUpstream || !strings.Contains(e["message"].(string), "unreachable") {
		t.Fatalf("error %v", e)
	}
	// A network error is not the key's fault: both keys stay usable.
	resp = f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatal("keys must not cool down because of network errors")
	}
}

func TestStreamFailsOverBeforeFirstByte(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-overloaded-00001": mockprovider.Overloaded, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: "sk-overloaded-00001"}, {Key: healthyKey1}}}}
		},
	})
	resp := f.post(t, "/v1/chat/completions", appToken, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("a 503 before the stream starts must fail over: %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	if events < 3 {
		t.Fatalf("want a whole stream, got %d events", events)
	}
}

func TestKeysAdminRoutes(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-revoked-key-00001": mockprovider.InvalidKey, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: "sk-revoked-key-00001"}, {Key: healthyKey1}}}}
		},
	})
	f.post(t, "/v1/chat/completions", appToken, chatBody)

	get := func(path, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, readJSON(t, resp)
	}
	if code, _ := get("/api/v1/keys", appToken); code != 403 {
		t.Fatalf("a gateway token is not an admin credential: %d", code)
	}
	if code, _ := get("/api/v1/keys", "wrong"); code != 401 {
		t.Fatalf("wrong admin token: %d", code)
	}
	code, body := get("/api/v1/keys?status=disabled", "kg-admin-secret")
	data := body["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("want the one disabled key, got %d %v", code, body)
	}
	k := data[0].(map[string]any)
	if k["masked"] != keygate.Mask("sk-revoked-key-00001") || k["error_class"] != "authentication_error" ||
		k["suggested_action"] == "" || k["failure_count"] != float64(1) || k["last_error"] == "" {
		t.Fatalf("key view: %v", k)
	}
	id := k["id"].(string)
	for _, b := range []string{"sk-revoked-key-00001", healthyKey1} {
		if raw := fmt.Sprint(body); strings.Contains(raw, b) {
			t.Fatal("the keys API must never return a key in clear")
		}
	}

	resp := f.post(t, "/api/v1/keys/reset?failed=true", "kg-admin-secret", "")
	if v := readJSON(t, resp); resp.StatusCode != 200 || v["reset"] != float64(1) {
		t.Fatalf("reset failed keys: %d %v", resp.StatusCode, v)
	}
	if _, v := get("/api/v1/keys/"+id, "kg-admin-secret"); v["status"] == "disabled" || v["error_class"] != "" {
		t.Fatalf("after reset: %v", v)
	}

	req, _ := http.NewRequest(http.MethodPatch, f.gateway.URL+"/api/v1/keys/"+id, strings.NewReader(`{"status":"disabled"}`))
	req.Header.Set("Authorization", "Bearer kg-admin-secret")
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if _, v := get("/api/v1/keys/"+id, "kg-admin-secret"); presp.StatusCode != 200 || v["status"] != "disabled" || v["operator_disabled"] != true {
		t.Fatalf("patch disabled: %d %v", presp.StatusCode, v)
	}
	if code, _ := get("/api/v1/keys/k_nope", "kg-admin-secret"); code != 404 {
		t.Fatalf("unknown key: %d", code)
	}
}

// TestStressThroughGateway sends requests from 64 goroutines through the
// whole gateway while keys fail in mixed ways, and checks that every one
// succeeds (two keys stay healthy) and none tries a key twice.
func TestStressThroughGateway(t *testing.T) {
	keys := map[string]mockprovider.Behavior{healthyKey1: mockprovider.OK, healthyKey2: mockprovider.OK}
	specs := []keygate.KeySpec{{Key: healthyKey1}, {Key: healthyKey2}}
	for i, b := range []mockprovider.Behavior{mockprovider.InvalidKey, mockprovider.QuotaExhausted, mockprovider.RateLimited,
		mockprovider.ServerError, mockprovider.Overloaded, mockprovider.Garbage, mockprovider.InvalidKey, mockprovider.RateLimited} {
		k := fmt.Sprintf("sk-mixed-%02d-%s", i, b)
		keys[k] = b
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	// Room to walk past every bad key: with the default of 3 further keys a
	// request that meets four bad keys in a row, before they cool, fails.
	policy := keygate.DefaultKeyPolicy()
	policy.MaxRetries = len(specs)
	f := newFixture(t, setup{keys: keys, policy: &policy, models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: specs}}
	}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
				req.Header.Set("Authorization", "Bearer "+appToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failures != 0 {
		t.Fatalf("%d of 320 requests failed while two keys were healthy", failures)
	}
	byRequest := map[string]map[string]bool{}
	for _, r := range f.provider.Requests() {
		if r.Method != http.MethodPost {
			continue // keygate's own key checks, which confirm a refused key before it is disabled
		}
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			t.Fatal("the gateway must forward its request id upstream")
		}
		if byRequest[id] == nil {
			byRequest[id] = map[string]bool{}
		}
		if byRequest[id][r.Key] {
			t.Fatalf("request %s tried key %s twice", id, keygate.Mask(r.Key))
		}
		byRequest[id][r.Key] = true
	}
	if len(byRequest) != 320 {
		t.Fatalf("want 320 distinct requests upstream, got %d", len(byRequest))
	}
}

func TestCheckKeysRoute(t *testing.T) {
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{"sk-revoked-key-00001": mockprovider.InvalidKey, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: "sk-revoked-key-00001"}, {Key: healthyKey1}}}}
		},
	})
	resp := f.post(t, "/api/v1/keys/check?vendor=openai", "kg-admin-secret", "")
	v := readJSON(t, resp)
	if resp.StatusCode != 200 || v["checked"] != float64(2) || v["passed"] != float64(1) {
		t.Fatalf("check: %d %v", resp.StatusCode, v)
	}
	req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/api/v1/keys/check", nil)
	req.Header.Set("Authorization", "Bearer kg-admin-secret")
	req.Header.Set("Accept", "application/x-ndjson")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stream.Body)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	stream.Body.Close()
	if len(lines) != 3 || lines[0] != `{"total":2}` || !strings.Contains(lines[1], `"masked"`) {
		t.Fatalf("streamed check: want a total and one line per key, got %q", lines)
	}
	lookup := f.post(t, "/api/v1/keys/lookup", "kg-admin-secret", `{"key":"`+healthyKey1+`"}`)
	if v := readJSON(t, lookup); lookup.StatusCode != 200 || v["masked"] != keygate.Mask(healthyKey1) {
		t.Fatalf("lookup by clear key: %d %v", lookup.StatusCode, v)
	}
	if got := f.post(t, "/api/v1/keys/lookup", "kg-admin-secret", `{"key":"sk-never-seen-000000"}`); got.StatusCode != 404 {
		t.Fatalf("lookup of an unknown key: %d", got.StatusCode)
	}
	if got := f.post(t, "/api/v1/keys/check?vendor=nokia", "kg-admin-secret", ""); got.StatusCode != 400 {
		t.Fatalf("unknown vendor: %d", got.StatusCode)
	}
	if got := f.post(t, "/api/v1/keys/check", appToken, ""); got.StatusCode != 403 {
		t.Fatalf("a gateway token may not run checks: %d", got.StatusCode)
	}
	// The failed check retired the revoked key: live traffic no longer tries it.
	resp = f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.Header.Get("X-Keygate-Attempts") != "1" {
		t.Fatalf("after the check, requests go straight to the good key: attempts=%s", resp.Header.Get("X-Keygate-Attempts"))
	}
}
