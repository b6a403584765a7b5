package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// TestThrottledLoginsAreCheap: once an address is locked out, its logins
// are refused before the body is read (a body that is not even JSON still
// gets 429, not 400), held in the tarpit, with Retry-After, and the flood
// leaves one audit entry per lockout window, not one per attempt.
func TestThrottledLoginsAreCheap(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	g := startWith(t, baseConfig(t, t.TempDir()), clock)
	login := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(g.url+"/api/v1/auth/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 10 { // ten usernames: the address, not a user, is locked
		if code, _ := login(fmt.Sprintf(`{"username":"guess%d","password":"wrong-password"}`, i)); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	// The flood comes at once; every refusal is held in the tarpit, then
	// sent with Retry-After counted from then (30 s lockout - 5 s held).
	bodies := make([]string, 50)
	for i := range bodies {
		bodies[i] = `{"username":"someone","password":"wrong-password"}`
		if i%2 == 1 {
			bodies[i] = `not json at all`
		}
	}
	for i, a := range heldLogins(t, g.url, clock, bodies...) {
		if a.code != 429 || a.retry != "25" {
			t.Fatalf("throttled attempt %d (%q): %d Retry-After %q, want 429 and 25", i, bodies[i], a.code, a.retry)
		}
	}
	throttled := func(want int) {
		t.Helper()
		var n int
		deadline := time.Now().Add(5 * time.Second) // the audit log writes in batches, in real time
		for {
			_, v := jsonCall(t, "GET", g.url+"/api/v1/audit?action=login.throttled", adminToken, "")
			entries, _ := v["data"].([]any)
			if n = len(entries); n >= want && time.Now().After(deadline.Add(-4*time.Second)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n != want {
			t.Fatalf("%d login.throttled audit entries, want %d (one per lockout window)", n, want)
		}
	}
	throttled(1)

	// The next lockout window is reported again, once.
	clock.Advance(26 * time.Second)
	if code, _ := login(`{"username":"someone","password":"wrong-password"}`); code != 401 {
		t.Fatalf("after the lockout: %d, want 401", code)
	}
	bodies = bodies[:20]
	for i := range bodies {
		bodies[i] = `{"username":"someone","password":"wrong-password"}`
	}
	for _, a := range heldLogins(t, g.url, clock, bodies...) {
		if a.code != 429 || a.retry != "55" {
			t.Fatalf("second lockout: %d %q, want 429 and 55", a.code, a.retry)
		}
	}
	throttled(2)
}
