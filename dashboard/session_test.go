package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
)

func request(method, cookie string, header map[string]string) *http.Request {
	r := httptest.NewRequest(method, "http://gate.example/api/v1/keys/k_1", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestSessionCredential(t *testing.T) {
	clock := clockwork.NewFakeClock()
	s := NewSessions(clock)
	cookie, csrf, _ := s.start(context.Background(), "the-admin-token", "admin token")

	for _, tc := range []struct {
		name     string
		r        *http.Request
		present  bool
		code     string // "" = accepted
		wantCred bool
	}{
		{"no cookie: a bearer token is needed", request("POST", "", nil), false, "", false},
		{"a read needs no CSRF token", request("GET", cookie, nil), true, "", true},
		{"a change without the CSRF token", request("PATCH", cookie, nil), true, keygate.EForbidden, false},
		{"a change with a wrong CSRF token", request("DELETE", cookie, map[string]string{CSRFHeader: csrf + "x"}), true, keygate.EForbidden, false},
		{"a change with the token from another origin", request("POST", cookie, map[string]string{CSRFHeader: csrf, "Origin": "https://evil.example"}), true, keygate.EForbidden, false},
		{"a change with the token, cross-site", request("POST", cookie, map[string]string{CSRFHeader: csrf, "Sec-Fetch-Site": "same-site"}), true, keygate.EForbidden, false},
		{"a change with the token, same origin", request("POST", cookie, map[string]string{CSRFHeader: csrf, "Origin": "http://gate.example", "Sec-Fetch-Site": "same-origin"}), true, "", true},
		{"a change with the token, no browser headers", request("PUT", cookie, map[string]string{CSRFHeader: csrf}), true, "", true},
		{"an unknown cookie", request("GET", "forged", nil), true, keygate.EInvalidAPIKey, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, present, err := s.Credential(tc.r)
			if present != tc.present || keygate.ErrorCode(err) != tc.code && !(tc.code == "" && err == nil) || (cred == "the-admin-token") != tc.wantCred {
				t.Fatalf("credential %q, present %v, err %v; want present %v, code %q", cred, present, err, tc.present, tc.code)
			}
		})
	}

	clock.Advance(SessionTTL - time.Second)
	if _, _, err := s.Credential(request("GET", cookie, nil)); err != nil {
		t.Fatalf("a session just under its lifetime: %v", err)
	}
	clock.Advance(time.Second)
	if _, _, err := s.Credential(request("GET", cookie, nil)); keygate.ErrorCode(err) != keygate.EInvalidAPIKey {
		t.Fatalf("an expired session: %v, want invalid_api_key", err)
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	s := NewSessions(clockwork.NewFakeClock())
	a, _, _ := s.start(context.Background(), "cred-a", "a")
	b, _, _ := s.start(context.Background(), "cred-b", "b")
	s.end(context.Background(), a)
	if _, _, err := s.Credential(request("GET", a, nil)); err == nil {
		t.Fatal("a signed-out session still works")
	}
	if cred, _, err := s.Credential(request("GET", b, nil)); err != nil || cred != "cred-b" {
		t.Fatalf("another session ended with it: %q %v", cred, err)
	}
}
