package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

func TestHostileRequestBodies(t *testing.T) {
	f := newFixture(t, setup{maxBody: 16 << 20})
	cases := []struct{ name, body, msg string }{
		{"8 MB of nested brackets", `{"model":"gpt-4o-mini","messages":` + strings.Repeat("[", 8<<20) + `}`, "nested deeper than 128"},
		{"duplicate max_tokens", `{"model":"gpt-4o-mini","messages":[],"max_tokens":-1e15,"max_tokens":10}`, `duplicate key "max_tokens"`},
		{"duplicate model, escaped", `{"model":"gpt-4o-mini","messages":[],"mod\u0065l":"gpt-4o"}`, `duplicate key "model"`},
		{"negative max_tokens", `{"model":"gpt-4o-mini","messages":[],"max_tokens":-5}`, "max_tokens must be a whole number"},
		{"absurd max_completion_tokens", `{"model":"gpt-4o-mini","messages":[],"max_completion_tokens":1e15}`, "max_completion_tokens must be a whole number"},
		{"fractional max_tokens", `{"model":"gpt-4o-mini","messages":[],"max_tokens":1.5}`, "max_tokens"},
		{"messages not an array", `{"model":"gpt-4o-mini","messages":"hi"}`, "messages must be an array"},
		{"not an object", `["model"]`, "JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := f.post(t, "/v1/chat/completions", appToken, c.body)
			e, _ := readJSON(t, resp)["error"].(map[string]any)
			if resp.StatusCode != 400 || e["code"] != keygate.EInvalidRequest || !strings.Contains(fmt.Sprint(e["message"]), c.msg) {
				t.Fatalf("want 400 invalid_request naming %q, got %d %v", c.msg, resp.StatusCode, e)
			}
		})
	}
	if n := len(f.provider.Requests()); n != 0 {
		t.Fatalf("refused bodies must not reach the provider, %d did", n)
	}
	// The gateway is still up.
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
		t.Fatalf("after hostile bodies: %d", resp.StatusCode)
	}
}

func TestHeadersToTheProviderByAllowlist(t *testing.T) {
	f := newFixture(t, setup{models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: healthyKey1}},
			Headers: map[string]string{"X-Tenant": "bank-a"}}}
	}})
	req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	for k, v := range map[string]string{
		"Authorization": "Bearer " + appToken, "OpenAI-Organization": "org-evil", "OpenAI-Project": "proj-evil",
		"Cookie": "a=b", "X-Forwarded-For": "10.0.0.1", "OpenAI-Beta": "assistants=v2", "Idempotency-Key": "idem-1",
		"X-Request-Id": "caller-trace-42", "X-Tenant": "bank-b", "User-Agent": "OpenAI/NodeJS/4.0",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	got := f.provider.Requests()[0].Header
	for _, h := range []string{"Openai-Organization", "Openai-Project", "Cookie", "X-Forwarded-For"} {
		if got.Get(h) != "" {
			t.Errorf("the caller's %s must not reach the provider", h)
		}
	}
	for h, want := range map[string]string{"Openai-Beta": "assistants=v2", "Idempotency-Key": "idem-1",
		"X-Request-Id": "caller-trace-42", "X-Tenant": "bank-a", "Authorization": "Bearer " + healthyKey1} {
		if got.Get(h) != want {
			t.Errorf("provider got %s %q, want %q", h, got.Get(h), want)
		}
	}
	if resp.Header.Get("X-Request-Id") != "caller-trace-42" || f.rec.all()[0].RequestID != "caller-trace-42" {
		t.Errorf("the caller's request id is the id everywhere: answer %q, record %q", resp.Header.Get("X-Request-Id"), f.rec.all()[0].RequestID)
	}
}

func TestRequestIDs(t *testing.T) {
	f := newFixture(t, setup{})
	for id, kept := range map[string]bool{
		"req_abc/123:x y": true, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false, "é": false,
	} {
		req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Authorization", "Bearer "+appToken)
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); (got == id) != kept || got == "" {
			t.Errorf("request id %q: answer carries %q, kept=%v", id, got, kept)
		}
		if up := resp.Header.Get("X-Upstream-Request-Id"); up != "" && up == resp.Header.Get("X-Request-Id") {
			t.Error("the upstream's id comes back apart from keygate's")
		}
	}
}

func TestMethodNotAllowedAndModelRetrieve(t *testing.T) {
	f := newFixture(t, setup{})
	req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+"/v1/chat/completions", nil)
	req.Header.Set("Authorization", "Bearer "+appToken)
	resp, _ := http.DefaultClient.Do(req)
	e, _ := readJSON(t, resp)["error"].(map[string]any)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || e["code"] != keygate.EMethodNotAllowed {
		t.Fatalf("GET on a POST route: %d Allow=%q %v", resp.StatusCode, resp.Header.Get("Allow"), e)
	}
	for path, want := range map[string]int{"/v1/models/gpt-4o-mini": 200, "/v1/models/gpt-9": 404} {
		req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+appToken)
		resp, _ := http.DefaultClient.Do(req)
		v := readJSON(t, resp)
		if resp.StatusCode != want {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, v)
		}
		if want == 200 && (v["id"] != "gpt-4o-mini" || v["object"] != "model") {
			t.Fatalf("model object: %v", v)
		}
	}
	// A token limited to other models does not see this one.
	req, _ = http.NewRequest(http.MethodGet, f.gateway.URL+"/v1/models/gpt-4o-mini", nil)
	req.Header.Set("Authorization", "Bearer "+limitedTok)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 404 {
		t.Fatalf("a model the token may not use: %d", resp.StatusCode)
	}
}

func TestRequestBodyReadDeadline(t *testing.T) {
	f := newFixture(t, setup{readTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.gateway.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A caller that sends its headers and a trickle of its body, then nothing.
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{\"model\"", appToken)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400") || !strings.Contains(string(b), "did not arrive within") {
		t.Fatalf("a trickling body is cut at the read deadline: %q", b)
	}
}

func TestNetworkFailureStreakCoolsOnlyThatKey(t *testing.T) {
	const flaky = "sk-flaky-conn-00000001"
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{flaky: mockprovider.OK, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: flaky}, {Key: healthyKey1}}}}
		},
	})
	f.provider.SetFault(flaky, mockprovider.FaultReset)
	for i := 0; i < 3; i++ {
		resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	k := f.pool.Key(f.pool.KeyID(flaky))
	if v := k.View(f.clock.Now()); v.Status != "cooldown" || v.ErrorClass != "network_error" {
		t.Fatalf("three resets in a row while a peer serves: want a network_error cooldown, got %s %s", v.Status, v.ErrorClass)
	}
	before := f.provider.Count(flaky)
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.Header.Get("X-Keygate-Attempts") != "1" || f.provider.Count(flaky) != before {
		t.Fatal("a cooling key is skipped")
	}
	// When every key fails at the network level, none is blamed: the
	// network, not a key, is down.
	f.provider.SetFault(flaky, "")
	k.Reset()
	f.provider.SetFault(healthyKey1, mockprovider.FaultReset)
	f.provider.SetFault(flaky, mockprovider.FaultReset)
	for i := 0; i < 4; i++ {
		f.post(t, "/v1/chat/completions", appToken, chatBody)
	}
	if v := f.pool.Key(f.pool.KeyID(healthyKey1)).View(f.clock.Now()); v.Status == "cooldown" {
		t.Fatalf("with no peer succeeding, network failures cool no key: %+v", v)
	}
}

func TestFailoverPrefersKeysThatServedBefore(t *testing.T) {
	keys := map[string]mockprovider.Behavior{healthyKey1: mockprovider.OK}
	var specs []keygate.KeySpec
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("sk-bad-key-never-%03d", i)
		keys[k] = mockprovider.ServerError
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	specs = append(specs, keygate.KeySpec{Key: healthyKey1})
	f := newFixture(t, setup{keys: keys, models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle, APIKeys: specs}}
	}})
	// The healthy key serves once, alone.
	for _, s := range specs[:5] {
		f.pool.Key(f.pool.KeyID(s.Key)).SetDisabled(true)
	}
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	for _, s := range specs[:5] {
		f.pool.Key(f.pool.KeyID(s.Key)).SetDisabled(false)
	}
	// Now the first key fails: the retry goes to the key with a record,
	// not to the never-used keys next in line.
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" || resp.Header.Get("X-Keygate-Key") != f.pool.KeyID(healthyKey1) {
		t.Fatalf("after a failure the proven key serves: %d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
}

func TestCallerRateLimitHeaders(t *testing.T) {
	f := newFixture(t, setup{})
	resp := f.post(t, "/v1/chat/completions", meteredTok, chatBody)
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	h := resp.Header
	if h.Get("X-Ratelimit-Limit-Requests") != "5" || h.Get("X-Ratelimit-Remaining-Requests") != "4" ||
		h.Get("X-Ratelimit-Limit-Tokens") != "100000" || h.Get("X-Ratelimit-Reset-Requests") == "" || h.Get("X-Ratelimit-Remaining-Tokens") == "" {
		t.Fatalf("the caller's own limits in OpenAI's headers: %v", h)
	}
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.Header.Get("X-Ratelimit-Limit-Requests") != "" {
		t.Fatal("a token without limits gets no rate-limit headers (and never the provider's)")
	}
}
