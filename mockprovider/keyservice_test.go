package mockprovider

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func newKeyService(t *testing.T) (*KeyService, *clockwork.FakeClock, *httptest.Server) {
	t.Helper()
	clock := clockwork.NewFakeClock()
	s := NewKeyService(clock, 10*time.Minute)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, clock, srv
}

// fetch asks the service for a key and returns the status and the decoded body.
func fetch(t *testing.T, srv *httptest.Server, method, query, body string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+"/getApikey"+query, strings.NewReader(body))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer is not JSON: %s", raw)
	}
	return resp.StatusCode, out
}

func TestKeyServiceIssue(t *testing.T) {
	keyFormat := regexp.MustCompile(`^dyn-\d+-[0-9a-f]{12}$`)
	tests := []struct {
		name, method, query, body string
		status                    int
		wantErr                   string
	}{
		{"GET", "GET", "?sceneCode=P2025122", "", 200, ""},
		{"POST", "POST", "", `{"sceneCode":"P2025122"}`, 200, ""},
		{"POST with query", "POST", "?sceneCode=P2025122", "", 200, ""},
		{"GET without sceneCode", "GET", "", "", 400, "sceneCode required"},
		{"POST without sceneCode", "POST", "", `{"other":1}`, 400, "sceneCode required"},
		{"POST with bad JSON", "POST", "", `{`, 400, "sceneCode required"},
		{"PUT", "PUT", "?sceneCode=x", "", 405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, srv := newKeyService(t)
			status, out := fetch(t, srv, tt.method, tt.query, tt.body)
			if status != tt.status || out["error"] != tt.wantErr {
				t.Fatalf("%d %v, want %d error %q", status, out, tt.status, tt.wantErr)
			}
			if tt.status == 200 && (!keyFormat.MatchString(out["result"]) || !s.Valid(out["result"])) {
				t.Errorf("issued %q, valid %v", out["result"], s.Valid(out["result"]))
			}
			if s.Calls() != 1 {
				t.Errorf("Calls = %d", s.Calls())
			}
		})
	}
}

func TestKeyServiceLifecycle(t *testing.T) {
	s, clock, srv := newKeyService(t)
	validate := s.Validator()

	_, a := fetch(t, srv, "GET", "?sceneCode=x", "")
	clock.Advance(5 * time.Minute)
	_, b := fetch(t, srv, "GET", "?sceneCode=x", "")
	keyA, keyB := a["result"], b["result"]
	if keyA == keyB || !s.Valid(keyA) || !s.Valid(keyB) {
		t.Fatalf("keys %q %q: each call must issue a new valid key", keyA, keyB)
	}
	if got, ok := validate(keyA); got != OK || !ok {
		t.Errorf("Validator(valid key) = %q, %v", got, ok)
	}

	clock.Advance(5*time.Minute + time.Second) // past A's ttl, not B's
	if s.Valid(keyA) || !s.Valid(keyB) {
		t.Errorf("after A's ttl: A valid %v, B valid %v", s.Valid(keyA), s.Valid(keyB))
	}
	if got, ok := validate(keyA); got != InvalidKey || !ok {
		t.Errorf("Validator(expired key) = %q, %v", got, ok)
	}

	s.Revoke(keyB)
	if s.Valid(keyB) {
		t.Error("revoked key still valid")
	}
	if got, ok := validate(keyB); got != InvalidKey || !ok {
		t.Errorf("Validator(revoked key) = %q, %v", got, ok)
	}
	s.Revoke("dyn-0-unknown")
	if s.Valid("dyn-0-unknown") {
		t.Error("revoking an unknown key made it valid")
	}
	if _, ok := validate("sk-static"); ok {
		t.Error("Validator judged a key the service never issued")
	}

	s.SetDown(true)
	if status, out := fetch(t, srv, "GET", "?sceneCode=x", ""); status != 503 || out["error"] != "unavailable" {
		t.Errorf("down: %d %v", status, out)
	}
	s.SetDown(false)
	if status, out := fetch(t, srv, "GET", "?sceneCode=x", ""); status != 200 || !s.Valid(out["result"]) {
		t.Errorf("back up: %d %v", status, out)
	}
	if s.Calls() != 4 {
		t.Errorf("Calls = %d, want 4", s.Calls())
	}
}

// TestKeyServiceWithProvider is the pairing the key-service feature relies
// on: the provider accepts a fetched key until it expires, then rejects it
// as invalid, while static keys keep their own behaviour.
func TestKeyServiceWithProvider(t *testing.T) {
	s, clock, ks := newKeyService(t)
	_, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-static": OK}, Validate: s.Validator()})

	_, out := fetch(t, ks, "POST", "", `{"sceneCode":"x"}`)
	key := out["result"]
	if resp, body := call(t, srv, "POST", "/v1/chat/completions", key, chatReq); resp.StatusCode != 200 {
		t.Fatalf("fresh key: %d %s", resp.StatusCode, body)
	}
	clock.Advance(10 * time.Minute)
	resp, body := call(t, srv, "POST", "/v1/chat/completions", key, chatReq)
	if e := decodeError(t, body); resp.StatusCode != 401 || code(e) != "invalid_api_key" {
		t.Errorf("expired key: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-static", chatReq); resp.StatusCode != 200 {
		t.Errorf("static key: %d", resp.StatusCode)
	}
}
