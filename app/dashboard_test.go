package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/app"
)

// browser is a client that keeps cookies and does not follow redirects,
// like a browser tab whose every step the test looks at.
type browser struct {
	t     *testing.T
	base  string
	c     *http.Client
	clock *clockwork.FakeClock
}

func newDashboard(t *testing.T) *browser {
	t.Helper()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	return &browser{t: t, base: serveDashboard(t, t.TempDir(), clock), c: newCookieClient(t), clock: clock}
}

// serveDashboard starts a keygate with one key on the database in dir and
// answers its URL.
func serveDashboard(t *testing.T, dir string, clock clockwork.Clock) string {
	t.Helper()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: "http://127.0.0.1:9/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-dashboard-test-key-1"}}}}
	a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Store().Close() })
	return srv.URL
}

func newCookieClient(t *testing.T) *http.Client {
	jar := &cookieJar{m: map[string]*http.Cookie{}}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// cookieJar keeps cookies by name, whatever their Path (one host). last
// is the last session cookie it was given, kept after the browser drops it.
type cookieJar struct {
	m    map[string]*http.Cookie
	last string
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		if c.Name == "kg_session" && c.Value != "" {
			j.last = c.Value
		}
		if c.MaxAge < 0 {
			delete(j.m, c.Name)
		} else {
			j.m[c.Name] = c
		}
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.m {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (b *browser) do(method, path, body string, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func (b *browser) signIn(form url.Values) *http.Response {
	b.t.Helper()
	resp, _ := b.do("POST", "/login", form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": b.base})
	return resp
}

var csrfMeta = regexp.MustCompile(`<meta name="kg-csrf" content="([^"]+)">`)

// csrf reads the CSRF token the way the pages' scripts do: from the page.
func (b *browser) csrf() string {
	b.t.Helper()
	resp, page := b.do("GET", "/keys", "", nil)
	m := csrfMeta.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		b.t.Fatalf("GET /keys: %d, no CSRF token in the page", resp.StatusCode)
	}
	return m[1]
}

func (b *browser) keyStatus(id string) string {
	b.t.Helper()
	_, body := call(b.t, "GET", b.base+"/api/v1/keys/"+id, adminToken, "")
	var v struct{ Status string }
	json.Unmarshal(body, &v)
	return v.Status
}

func (b *browser) firstKey() string {
	b.t.Helper()
	_, body := call(b.t, "GET", b.base+"/api/v1/keys", adminToken, "")
	var v struct{ Data []struct{ ID string } }
	json.Unmarshal(body, &v)
	if len(v.Data) == 0 {
		b.t.Fatal("no keys")
	}
	return v.Data[0].ID
}

func TestDashboardSessionCookieAndCSRF(t *testing.T) {
	b := newDashboard(t)
	if resp, _ := b.do("GET", "/", "", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / before sign-in: %d to %q, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := b.signIn(url.Values{"admin_token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the admin token: %d", resp.StatusCode)
	}
	var c *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == "kg_session" {
			c = x
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", c)
	}
	if strings.Contains(c.Value, adminToken) {
		t.Fatal("the cookie carries the admin token")
	}
	id := b.firstKey()
	patch := `{"status":"disabled"}`

	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"no CSRF token", map[string]string{}},
		{"a wrong CSRF token", map[string]string{"X-CSRF-Token": "forged"}},
		{"the token, from another site", map[string]string{"X-CSRF-Token": b.csrf(), "Origin": "https://evil.example"}},
		{"the token, cross-site fetch", map[string]string{"X-CSRF-Token": b.csrf(), "Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do("PATCH", "/api/v1/keys/"+id, patch, tc.header)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"forbidden"`) {
				t.Fatalf("PATCH with the cookie and %s: %d %s, want 403", tc.name, resp.StatusCode, body)
			}
			if got := b.keyStatus(id); got == "disabled" {
				t.Fatal("the refused change disabled the key")
			}
		})
	}

	// Reading needs no CSRF token; a change with it goes through.
	if resp, _ := b.do("GET", "/api/v1/keys?limit=1", "", nil); resp.StatusCode != 200 {
		t.Fatalf("GET with the cookie: %d", resp.StatusCode)
	}
	if resp, body := b.do("PATCH", "/api/v1/keys/"+id, patch, map[string]string{"X-CSRF-Token": b.csrf(), "Origin": b.base}); resp.StatusCode != 200 {
		t.Fatalf("PATCH with the cookie and the CSRF token: %d %s", resp.StatusCode, body)
	}
	if got := b.keyStatus(id); got != "disabled" {
		t.Fatalf("key is %s after the accepted change, want disabled", got)
	}

	// Sign-out is a change too; then the cookie is dead on the server.
	token := b.csrf()
	if resp, _ := b.do("POST", "/logout", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/logout", "csrf="+url.QueryEscape(token), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", b.base+"/api/v1/keys", nil)
	req.AddCookie(c)
	old, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	old.Body.Close()
	if old.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the signed-out cookie answered %d, want 401", old.StatusCode)
	}
}

func TestDashboardSignInRefusesNonAdmins(t *testing.T) {
	b := newDashboard(t)
	for _, u := range []string{`{"username":"alice","password":"alice-password","role":"user"}`, `{"username":"root","password":"root-password","role":"admin"}`} {
		if resp, body := call(t, "POST", b.base+"/api/v1/users", adminToken, u); resp.StatusCode != 201 {
			t.Fatalf("create user: %d %s", resp.StatusCode, body)
		}
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"a gateway token", url.Values{"admin_token": {appToken}}, http.StatusForbidden},
		{"a wrong admin token", url.Values{"admin_token": {"kg-not-it"}}, http.StatusUnauthorized},
		{"a user who is not an admin", url.Values{"username": {"alice"}, "password": {"alice-password"}}, http.StatusForbidden},
		{"a wrong password", url.Values{"username": {"root"}, "password": {"not-the-password"}}, http.StatusUnauthorized},
		{"nothing", url.Values{}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.signIn(tc.form)
			if resp.StatusCode != tc.status {
				t.Fatalf("sign-in with %s: %d, want %d", tc.name, resp.StatusCode, tc.status)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "kg_session" && c.Value != "" {
					t.Fatal("a refused sign-in set a session cookie")
				}
			}
		})
	}
	// Sign-in from another site is refused even with a right credential.
	resp, _ := b.do("POST", "/login", url.Values{"admin_token": {adminToken}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d, want 403", resp.StatusCode)
	}
	if resp := b.signIn(url.Values{"username": {"root"}, "password": {"root-password"}, "next": {"/usage"}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/usage" {
		t.Fatalf("admin user sign-in: %d to %q, want /usage", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.do("GET", "/usage", "", nil); resp.StatusCode != 200 {
		t.Fatalf("GET /usage signed in: %d", resp.StatusCode)
	}

	// Deleting the user ends their session at once: it is checked on every call.
	_, body := call(t, "GET", b.base+"/api/v1/users", adminToken, "")
	var users struct{ Data []keygate.User }
	json.Unmarshal(body, &users)
	for _, u := range users.Data {
		if u.Username == "root" {
			call(t, "DELETE", b.base+"/api/v1/users/"+jsonNumber(u.ID), adminToken, "")
		}
	}
	if resp, _ := b.do("GET", "/api/v1/keys", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a deleted admin's session answered %d, want 401", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/keys", "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a deleted admin's page answered %d, want a redirect to sign-in", resp.StatusCode)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestDashboardSessionExpires(t *testing.T) {
	b := newDashboard(t)
	b.signIn(url.Values{"admin_token": {adminToken}})
	if resp, _ := b.do("GET", "/api/v1/keys", "", nil); resp.StatusCode != 200 {
		t.Fatalf("fresh session: %d", resp.StatusCode)
	}
	b.clock.Advance(12*time.Hour + time.Second)
	if resp, _ := b.do("GET", "/api/v1/keys", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after 12 h: %d, want 401", resp.StatusCode)
	}
}

// Every page carries the CSP, the viewport and no inline script.
func TestDashboardPagesHaveNoInlineScript(t *testing.T) {
	b := newDashboard(t)
	b.signIn(url.Values{"admin_token": {adminToken}})
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+="`)
	for _, p := range []string{"/", "/keys", "/models", "/tokens", "/usage", "/users", "/audit", "/login"} {
		resp, page := b.do("GET", p, "", nil)
		if p == "/login" {
			resp, page = (&browser{t: t, base: b.base, c: newCookieClient(t)}).do("GET", p, "", nil)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if !strings.Contains(page, `<meta name="viewport" content="width=device-width">`) {
			t.Errorf("GET %s: no viewport meta", p)
		}
		if inline.MatchString(page) {
			t.Errorf("GET %s: inline script: %q", p, inline.FindString(page))
		}
	}
	resp, _ := b.do("GET", "/assets/common.js", "", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("common.js served as %q", ct)
	}
}

// Wrong admin tokens on the sign-in page lock the source address out as
// wrong passwords do: 429 with Retry-After, the right token included, until
// the lockout ends.
func TestDashboardAdminTokenSignInIsThrottled(t *testing.T) {
	b := newDashboard(t)
	for i := range 10 {
		if resp := b.signIn(url.Values{"admin_token": {fmt.Sprintf("kg-guess-%d", i)}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong admin token %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	// The refusal is held on the clock (the tarpit) before it goes, as a
	// throttled password login's is.
	answered := make(chan *http.Response, 1)
	go func() { answered <- b.signIn(url.Values{"admin_token": {adminToken}}) }()
	for loginsHeld(t, b.base) != 1 {
		select {
		case resp := <-answered:
			t.Fatalf("a locked-out sign-in answered %d before the clock moved: it must be held", resp.StatusCode)
		default:
		}
		time.Sleep(5 * time.Millisecond) // waiting for the request to arrive, not for time to pass
	}
	b.clock.Advance(admin.TarpitHold)
	resp := <-answered
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "25" {
		t.Fatalf("right token after 10 wrong ones: %d, Retry-After %q; want 429 and 25 (30 less the 5 s held)", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "kg_session" && c.Value != "" {
			t.Fatal("a throttled sign-in set a session cookie")
		}
	}
	b.clock.Advance(25 * time.Second)
	if resp := b.signIn(url.Values{"admin_token": {adminToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right token after the lockout: %d, want a redirect", resp.StatusCode)
	}
	// Success forgets the failures: the next wrong token is a first one.
	if resp := b.signIn(url.Values{"admin_token": {"kg-guess-again"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token after a success: %d, want 401", resp.StatusCode)
	}
}

// A change made from the dashboard is audited under the credential its
// session signed in with, as the same change through the API is.
func TestDashboardChangesAreAuditedUnderTheSignedInCredential(t *testing.T) {
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: "http://127.0.0.1:9/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-dashboard-audit-key1"}}}}
	g := start(t, cfg)
	b := &browser{t: t, base: g.url, c: newCookieClient(t)}
	if resp := b.signIn(url.Values{"admin_token": {adminToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	id := b.firstKey()
	if resp, body := b.do("PATCH", "/api/v1/keys/"+id, `{"status":"disabled"}`, map[string]string{"X-CSRF-Token": b.csrf()}); resp.StatusCode != 200 {
		t.Fatalf("disable from the dashboard: %d %s", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, v := jsonCall(t, "GET", g.url+"/api/v1/audit", adminToken, "")
		entries, _ := v["data"].([]any)
		for _, e := range entries {
			if e := e.(map[string]any); e["action"] == "keys.update" && e["target"] == id {
				if e["actor"] != "admin" {
					t.Fatalf("the dashboard's change is audited as %v, want admin (the credential its session signed in with)", e["actor"])
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry for the change: %v", entries)
		}
	}
}
