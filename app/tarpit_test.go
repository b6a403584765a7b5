package app_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/admin"
)

// loginAnswer is what a login got: its status, Retry-After and whether the
// server closed the connection after it.
type loginAnswer struct {
	code   int
	retry  string
	closed bool
}

func postLogin(t *testing.T, url, body string) loginAnswer {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/auth/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return loginAnswer{}
	}
	resp.Body.Close()
	return loginAnswer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close}
}

// heldLogins sends the logins at once, which the caller expects to be
// throttled: each is held in the tarpit, so none answers until all of them
// are held (keygate_login_refusals_held on /metrics says so) and the
// clock has moved on by the hold. It returns their answers in order.
func heldLogins(t *testing.T, url string, clock *clockwork.FakeClock, bodies ...string) []loginAnswer {
	t.Helper()
	out := make([]loginAnswer, len(bodies))
	done := make(chan int, len(bodies))
	for i, b := range bodies {
		go func() { out[i] = postLogin(t, url, b); done <- i }()
	}
	for held := 0; held != len(bodies); {
		select {
		case i := <-done:
			t.Fatalf("login %d answered %+v before the clock moved: a throttled login must be held", i, out[i])
		default:
		}
		held = loginsHeld(t, url)
		if held > len(bodies) {
			t.Fatalf("%d logins held, %d sent", held, len(bodies))
		}
		time.Sleep(5 * time.Millisecond) // waiting for requests to arrive, not for time to pass
	}
	clock.Advance(admin.TarpitHold)
	for range bodies {
		<-done
	}
	return out
}

// heldLogin is heldLogins for one login.
func heldLogin(t *testing.T, url string, clock *clockwork.FakeClock, body string) (int, string) {
	t.Helper()
	a := heldLogins(t, url, clock, body)[0]
	return a.code, a.retry
}

// loginsHeld reads keygate_login_refusals_held from /metrics.
func loginsHeld(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "keygate_login_refusals_held "); ok {
			var n int
			for _, c := range v {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	t.Fatal("no keygate_login_refusals_held in /metrics")
	return 0
}

// TestShutdownSendsHeldLoginRefusals: a refusal held in the login tarpit
// does not hold up shutdown; it is sent when shutdown begins.
func TestShutdownSendsHeldLoginRefusals(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	g := startWith(t, baseConfig(t, t.TempDir()), clock)
	for i := range 10 {
		if a := postLogin(t, g.url, `{"username":"guess`+string(rune('a'+i))+`","password":"wrong-password"}`); a.code != 401 {
			t.Fatalf("failure %d: %+v", i, a)
		}
	}
	held := make(chan loginAnswer, 1)
	go func() { held <- postLogin(t, g.url, `{"username":"root","password":"wrong-password"}`) }()
	for loginsHeld(t, g.url) != 1 {
		time.Sleep(5 * time.Millisecond) // waiting for the request to arrive
	}
	stopped := make(chan struct{})
	go func() { g.shutdown(t); close(stopped) }()
	select {
	case a := <-held:
		if a.code != 429 {
			t.Fatalf("a held refusal at shutdown: %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not send the held refusal")
	}
	<-stopped
}
