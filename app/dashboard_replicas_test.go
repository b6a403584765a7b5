package app_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/keygate/keygate/dashboard"
)

// Two replicas on one database, behind a load balancer that does not keep
// a browser on one: a session made on either works on both, and signing
// out on one ends it on the other within dashboard.SessionRecheck.
func TestDashboardSessionsAcrossReplicas(t *testing.T) {
	dir := t.TempDir() // one database (and master key beside it) for both
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	baseA, baseB := serveDashboard(t, dir, clock), serveDashboard(t, dir, clock)
	jar := newCookieClient(t) // one browser; the balancer sends it to either
	onA := &browser{t: t, base: baseA, c: jar, clock: clock}
	onB := &browser{t: t, base: baseB, c: jar, clock: clock}

	if resp := onA.signIn(url.Values{"admin_token": {adminToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in on A: %d", resp.StatusCode)
	}
	if resp, _ := onB.do("GET", "/api/v1/keys", "", nil); resp.StatusCode != 200 {
		t.Fatalf("A's session on B: %d, want 200", resp.StatusCode)
	}
	// B knows the session's CSRF token too: a change made from B's page
	// with it goes through, and without it is refused.
	csrf := onB.csrf()
	if csrf != onA.csrf() {
		t.Fatal("the replicas give the session different CSRF tokens")
	}
	id := onA.firstKey()
	patch := `{"status":"disabled"}`
	if resp, body := onB.do("PATCH", "/api/v1/keys/"+id, patch, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a change on B without the CSRF token: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := onB.do("PATCH", "/api/v1/keys/"+id, patch, map[string]string{"Content-Type": "application/json", dashboard.CSRFHeader: csrf, "Origin": baseB}); resp.StatusCode != 200 {
		t.Fatalf("a change on B with A's session: %d %s", resp.StatusCode, body)
	}

	// Sign out on B, where the session was used but not made.
	form := url.Values{"csrf": {csrf}}.Encode()
	if resp, _ := onB.do("POST", "/logout", form, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": baseB}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on B: %d", resp.StatusCode)
	}
	// The browser dropped its cookie; a copy of it (a stolen one) must not
	// work anywhere either: B at once, A after at most SessionRecheck.
	stolen := &http.Cookie{Name: dashboard.CookieName, Value: jar.Jar.(*cookieJar).last}
	get := func(base string) int {
		req, _ := http.NewRequest("GET", base+"/api/v1/keys", nil)
		req.AddCookie(stolen)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(baseB); code != http.StatusUnauthorized {
		t.Fatalf("the signed-out session on B: %d, want 401", code)
	}
	clock.Advance(dashboard.SessionRecheck)
	if code := get(baseA); code != http.StatusUnauthorized {
		t.Fatalf("the signed-out session on A %v after sign-out: %d, want 401", dashboard.SessionRecheck, code)
	}
}
