package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func loginStatus(t *testing.T, api *adminAPI, user, password string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", api.url+"/api/v1/auth/login", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestLoginThrottle: wrong passwords in a row lock the username out with
// 429 and Retry-After (the right password included, or guessing would go
// on); so do failures for many usernames from one address.
func TestLoginThrottle(t *testing.T) {
	api := newAdminAPI(t)
	api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"root","password":"root-password","role":"admin"}`)

	for i := range 5 {
		if code, _ := loginStatus(t, api, "root", "wrong-password"); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	// A refusal is held (admin.TarpitHold, 5 s), and Retry-After counts
	// from when it is sent.
	code, retry := heldLogin(t, api.url, api.clock, `{"username":"root","password":"wrong-password"}`)
	if code != 429 || retry != "25" {
		t.Fatalf("after 5 failures: %d Retry-After %q, want 429 and 25", code, retry)
	}
	if code, _ := heldLogin(t, api.url, api.clock, `{"username":"root","password":"root-password"}`); code != 429 {
		t.Fatalf("the right password while locked out: %d, want 429", code)
	}
	api.clock.Advance(21 * time.Second)
	if code, _ := loginStatus(t, api, "root", "wrong-password"); code != 401 {
		t.Fatalf("after the lockout: %d, want 401", code)
	}
	if code, retry := heldLogin(t, api.url, api.clock, `{"username":"root","password":"wrong-password"}`); code != 429 || retry != "55" {
		t.Fatalf("failing again doubles the lockout: %d %q, want 429 and 55", code, retry)
	}
	api.clock.Advance(56 * time.Second)
	api.login("root", "root-password") // a success clears the strikes
	if code, _ := loginStatus(t, api, "root", "wrong-password"); code != 401 {
		t.Fatalf("after a success: %d, want 401", code)
	}

	// One address trying many usernames.
	for i := range 9 {
		if code, _ := loginStatus(t, api, fmt.Sprintf("guess%d", i), "wrong-password"); code != 401 {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code, retry := heldLogin(t, api.url, api.clock, `{"username":"someone-else","password":"whatever-pass"}`); code != 429 || retry == "" {
		t.Fatalf("the address after 10 failures: %d %q, want 429 with Retry-After", code, retry)
	}
}
