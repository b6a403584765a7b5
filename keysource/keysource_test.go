package keysource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
)

// An hour of steady traffic costs one key-service call per refresh window,
// not one per request.
func TestSteadyTrafficRefreshesOncePerWindow(t *testing.T) {
	e := newEnv(t, nil)
	var mu sync.Mutex
	var installed []keysource.Lease
	var early []string
	e.src.OnChange(func(l keysource.Lease) {
		// A callback may use the source (it runs with no lock held), and
		// the source does not hand l out or count it before the callbacks
		// have put it where requests look for it.
		v := e.src.View()
		mu.Lock()
		if v.Fetches != len(installed) || e.src.Current().Secret == l.Secret {
			early = append(early, fmt.Sprintf("lease %d: View says %d fetches, Current is the new lease: %v", len(installed)+1, v.Fetches, e.src.Current().Secret == l.Secret))
		}
		installed = append(installed, l)
		mu.Unlock()
	})
	e.start()
	c := e.client("")

	keys := map[string]bool{}
	for e.now() < 3600 {
		e.advance(10 * time.Second)
		keys[e.chat(c)] = true // fails the test on anything but 200
	}

	// ttl 600 s, refresh 120 s before: a fetch at 0 s, then every 480 s.
	want := []int{0, 480, 960, 1440, 1920, 2400, 2880, 3360}
	if got := e.rec.times(); !slices.Equal(got, want) {
		t.Errorf("key service called at %v s, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Errorf("a lease was handed out before its callbacks ran: %v", early)
	}
	if len(installed) != len(want) || len(keys) != len(want) {
		t.Errorf("%d leases installed, %d keys used; want %d", len(installed), len(keys), len(want))
	}
	logs := e.logs.String()
	if strings.Count(logs, `msg="key service ready"`) != 1 || strings.Count(logs, `msg="key refreshed"`) != len(want)-1 {
		t.Errorf("lifecycle logs:\n%s", logs)
	}
}

func TestServiceDownAtStartUsesBackup(t *testing.T) {
	e := newEnv(t, nil)
	e.ks.SetDown(true)
	e.start()
	c := e.client(backupKey)

	if l := e.src.Current(); l.Secret != "" {
		t.Fatalf("lease %+v while the service is down", l)
	}
	if got := e.chat(c); got != backupKey {
		t.Errorf("request used %s, want the backup", keygate.Mask(got))
	}
	e.advance(time.Second)
	e.advance(time.Second) // the third attempt fails too
	if got := e.chat(c); got != backupKey {
		t.Errorf("request used %s, want the backup", keygate.Mask(got))
	}
	if !strings.Contains(e.logs.String(), `msg="key fetch: all attempts failed" model=gpt-4o-mini key=backup`) {
		t.Errorf("no error naming the backup:\n%s", e.logs)
	}

	e.ks.SetDown(false)
	e.advance(2 * time.Second) // the pause after a failed round
	l := e.src.Current()
	if !l.Valid(e.clock.Now()) {
		t.Fatalf("no key once the service is back: %+v, view %+v", l, e.src.View())
	}
	if got := e.chat(c); got != l.Secret {
		t.Errorf("request used %s, want the fetched key %s", keygate.Mask(got), keygate.Mask(l.Secret))
	}
	if got, want := e.rec.times(), []int{0, 1, 2, 4}; !slices.Equal(got, want) {
		t.Errorf("key service called at %v s, want %v", got, want)
	}
	if v := e.src.View(); v.Fetches != 1 || v.Failures != 3 || v.LastError != "" {
		t.Errorf("view %+v", v)
	}
}

// The service goes down just before a refresh: requests keep the old key
// until it expires, then the backup, and none fails.
func TestServiceDownMidwayKeepsOldKeyThenBackup(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	c := e.client(backupKey)
	first := e.src.Current()

	for e.now() < 470 {
		e.advance(10 * time.Second)
	}
	e.ks.SetDown(true)
	for e.now() < 700 {
		e.advance(time.Second)
		if e.now()%10 != 0 {
			continue
		}
		want := first.Secret
		if e.now() >= 600 {
			want = backupKey
		}
		if got := e.chat(c); got != want {
			t.Fatalf("at %ds the request used %s, want %s", e.now(), keygate.Mask(got), keygate.Mask(want))
		}
	}

	// Three attempts 1 s apart, then rounds after pauses of 2, 4, 8, 16, 30… s.
	want := []int{0, 480, 481, 482, 484, 485, 486, 490, 491, 492, 500, 501, 502,
		518, 519, 520, 550, 551, 552, 582, 583, 584, 614, 615, 616, 646, 647, 648, 678, 679, 680}
	if got := e.rec.times(); !slices.Equal(got, want) {
		t.Errorf("key service called at %v s,\nwant %v", got, want)
	}
	logs := e.logs.String()
	for _, line := range []string{
		`level=WARN msg="key fetch failed" model=gpt-4o-mini attempt=1/3 error="fetch key from`,
		`attempt=3/3`,
		`status 503: {\"error\":\"unavailable\"}`,
		`level=ERROR msg="key fetch: all attempts failed" model=gpt-4o-mini key=` + keygate.Mask(first.Secret),
		`level=ERROR msg="key fetch: all attempts failed" model=gpt-4o-mini key=backup`,
	} {
		if !strings.Contains(logs, line) {
			t.Errorf("logs lack %s:\n%s", line, logs)
		}
	}

	e.ks.SetDown(false)
	for e.now() < 710 {
		e.advance(time.Second)
	}
	l := e.src.Current()
	if !l.Valid(e.clock.Now()) || l.FetchedAt.Sub(e.rec.start) != 710*time.Second {
		t.Fatalf("lease %+v: want one fetched at 710 s", l)
	}
	if got := e.chat(c); got != l.Secret {
		t.Errorf("request used %s, want the new key", keygate.Mask(got))
	}
}

// A key revoked early is replaced at once, once, and the request that found
// out is sent again with the new key.
func TestRevokedKeyIsReplacedOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	c := e.client(backupKey)
	e.advance(100 * time.Second)

	old := e.src.Current()
	e.ks.Revoke(old.Secret)
	got := e.chat(c)
	if got == old.Secret || got == backupKey || got != e.src.Current().Secret {
		t.Fatalf("request answered with %s; old %s, current %s", keygate.Mask(got),
			keygate.Mask(old.Secret), keygate.Mask(e.src.Current().Secret))
	}
	reqs := e.prov.Requests()
	if a, b := reqs[len(reqs)-2], reqs[len(reqs)-1]; a.Key != old.Secret || string(a.Body) != string(b.Body) {
		t.Errorf("retry: first with %s, body %q then %q", keygate.Mask(a.Key), a.Body, b.Body)
	}
	if n := len(e.rec.Calls()); n != 2 {
		t.Errorf("%d key-service calls, want 2", n)
	}

	// Many callers learn at once that the new key was revoked too (a second
	// later: two rounds of fetches are at least a second apart).
	e.advance(time.Second)
	second := e.src.Current()
	e.ks.Revoke(second.Secret)
	var wg sync.WaitGroup
	leases := make([]keysource.Lease, 20)
	for i := range leases {
		wg.Go(func() {
			l, err := e.src.Rejected(context.Background(), second.Secret)
			if err != nil {
				t.Error(err)
			}
			leases[i] = l
		})
	}
	wg.Wait()
	third := e.src.Current()
	for _, l := range leases {
		if l != third {
			t.Errorf("Rejected returned %s, want the new key %s", keygate.Mask(l.Secret), keygate.Mask(third.Secret))
		}
	}
	if n := len(e.rec.Calls()); n != 3 {
		t.Errorf("%d key-service calls, want 3", n)
	}
	if l, _ := e.src.Rejected(context.Background(), second.Secret); l != third {
		t.Error("Rejected for a key already replaced did not return the current lease")
	}

	// The background refresh follows the new key, fetched at 101 s.
	e.settle()
	for e.now() < 580 {
		e.advance(time.Second)
	}
	if n := len(e.rec.Calls()); n != 3 {
		t.Errorf("refreshed before 581 s: %v", e.rec.times())
	}
	e.advance(time.Second)
	if got, want := e.rec.times(), []int{0, 100, 101, 581}; !slices.Equal(got, want) {
		t.Errorf("key service called at %v s, want %v", got, want)
	}
}

// However many callers ask while a fetch is in progress, there is one fetch.
func TestSingleFlight(t *testing.T) {
	t.Run("refresh", func(t *testing.T) {
		e := newEnv(t, nil)
		e.start()
		old := e.src.Current()
		release := e.rec.holdCalls()
		defer release()
		e.clock.Advance(480 * time.Second)
		waitFor(t, func() bool { return len(e.rec.Calls()) == 2 })

		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if l := e.src.Current(); l != old {
					t.Errorf("Current during refresh: %s", keygate.Mask(l.Secret))
				}
				// The old key is still valid: no waiting.
				if l, err := e.src.Wait(context.Background()); err != nil || l != old {
					t.Errorf("Wait during refresh: %s, %v", keygate.Mask(l.Secret), err)
				}
			})
		}
		wg.Wait()
		release()
		e.settle()
		if n := len(e.rec.Calls()); n != 2 || e.src.Current() == old {
			t.Errorf("%d calls, lease changed %v", n, e.src.Current() != old)
		}
	})

	t.Run("no key yet", func(t *testing.T) {
		e := newEnv(t, nil)
		release := e.rec.holdCalls()
		defer release()
		leases := make(chan keysource.Lease, 50)
		var wg sync.WaitGroup
		for range cap(leases) {
			wg.Go(func() {
				l, err := e.src.Wait(context.Background())
				if err != nil {
					t.Error(err)
				}
				leases <- l
			})
		}
		waitFor(t, func() bool { return len(e.rec.Calls()) == 1 })
		release()
		wg.Wait()
		close(leases)
		for l := range leases {
			if l != e.src.Current() || !l.Valid(e.clock.Now()) {
				t.Errorf("Wait returned %+v", l)
			}
		}
		if n := len(e.rec.Calls()); n != 1 {
			t.Errorf("%d key-service calls, want 1", n)
		}
	})
}

func TestWait(t *testing.T) {
	t.Run("returns the fetch error when ctx ends", func(t *testing.T) {
		e := newEnv(t, nil)
		e.ks.SetDown(true)
		e.start()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		l, err := e.src.Wait(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(fmt.Sprint(err), "status 503") {
			t.Errorf("Wait = %+v, %v", l, err)
		}
	})

	t.Run("returns as soon as a fetch succeeds", func(t *testing.T) {
		e := newEnv(t, nil)
		e.ks.SetDown(true)
		e.start()
		type result struct {
			l   keysource.Lease
			err error
		}
		done := make(chan result, 1)
		go func() {
			l, err := e.src.Wait(context.Background())
			done <- result{l, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("Wait returned %+v with the service down", r)
		default:
		}
		e.ks.SetDown(false)
		e.clock.Advance(time.Second) // the second attempt of the first round
		select {
		case r := <-done:
			if r.err != nil || r.l != e.src.Current() || !r.l.Valid(e.clock.Now()) {
				t.Errorf("Wait = %+v, %v", r.l, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after the fetch succeeded")
		}
	})
}

func TestRequestToKeyService(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		url       string
		wantQuery string
		wantBody  string
	}{
		{"GET adds sceneCode to the query", "", "/getApikey?app=kg", "app=kg&sceneCode=P2025122", ""},
		{"POST sends it as JSON", "post", "/getApikey", "", `{"sceneCode":"P2025122"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(s *keygate.KeySource) {
				s.Method = tt.method
				s.URL = strings.TrimSuffix(s.URL, "/getApikey") + tt.url
				s.Headers = map[string]string{"X-App-Token": "app-token-value"}
			})
			l, err := e.src.Wait(context.Background())
			if err != nil || !e.ks.Valid(l.Secret) {
				t.Fatalf("Wait = %+v, %v", l, err)
			}
			call := e.rec.Calls()[0]
			if call.Query.Encode() != tt.wantQuery || call.Body != tt.wantBody {
				t.Errorf("service got query %q body %q", call.Query.Encode(), call.Body)
			}
			if got := call.Header.Get("X-App-Token"); got != "app-token-value" {
				t.Errorf("X-App-Token = %q", got)
			}
			if tt.wantBody != "" && call.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", call.Header.Get("Content-Type"))
			}
		})
	}
}

// answering is a key service that always gives the same answer.
func answering(t *testing.T, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAnswer(t *testing.T) {
	const key = "sk-live-0123456789abcdef"
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) // unix time in whole seconds
	now := clock.Now()
	in300 := now.Add(300 * time.Second)
	tests := []struct {
		name   string
		field  string
		answer string
		want   time.Time
	}{
		{"expire_seconds by default", "", `{"result":"` + key + `"}`, now.Add(600 * time.Second)},
		{"expires_in number", "", `{"result":"` + key + `","expires_in":300}`, in300},
		{"expires_in string", "", `{"result":"` + key + `","expires_in":"300"}`, in300},
		{"expire_time RFC 3339", "", `{"result":"` + key + `","expire_time":"` + in300.Format(time.RFC3339) + `"}`, in300},
		{"expire_time unix seconds", "", fmt.Sprintf(`{"result":"%s","expire_time":%d}`, key, in300.Unix()), in300},
		{"expire_time unix ms", "", fmt.Sprintf(`{"result":"%s","expire_time":%d}`, key, in300.UnixMilli()), in300},
		{"custom result field", "apiKey", `{"code":0,"apiKey":"` + key + `"}`, now.Add(600 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := keysource.New(keygate.KeySource{
				URL: answering(t, tt.answer), SceneCode: "P1", ResultField: tt.field,
			}, keysource.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			l, err := src.Wait(context.Background())
			if err != nil || l.Secret != key || !l.FetchedAt.Equal(now) || !l.ExpiresAt.Equal(tt.want) {
				t.Errorf("lease %+v, %v; want expiry %v", l, err, tt.want)
			}
		})
	}
}

// A key the service says lives shorter than refresh_before_seconds is
// refreshed at the same fraction of its life: 120/600 of 60 s before expiry.
func TestShortLifetimeKeepsTheProportion(t *testing.T) {
	e := newEnv(t, nil)
	var mu sync.Mutex
	calls := 0
	e.spec.URL = func() string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			fmt.Fprintf(w, `{"result":"sk-short-%04d-abcdefgh","expires_in":60}`, calls)
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}()
	src, err := keysource.New(e.spec, keysource.Options{Clock: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.src = src
	e.start()
	e.advance(47 * time.Second)
	mu.Lock()
	if calls != 1 {
		t.Errorf("%d calls by 47 s", calls)
	}
	mu.Unlock()
	e.advance(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("%d calls by 48 s, want a refresh at 48 s", calls)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		edit func(*keygate.KeySource)
		want string
	}{
		{"url missing", func(s *keygate.KeySource) { s.URL = "" }, "key_source.url: required"},
		{"url relative", func(s *keygate.KeySource) { s.URL = "/getApikey" }, `key_source.url: "/getApikey" must be an absolute http or https URL`},
		{"url not http", func(s *keygate.KeySource) { s.URL = "ftp://keys/get" }, "key_source.url:"},
		{"method", func(s *keygate.KeySource) { s.Method = "PUT" }, `key_source.method: "PUT" must be GET or POST`},
		{"scene_code", func(s *keygate.KeySource) { s.SceneCode = "" }, "key_source.scene_code: required"},
		{"result_field", func(s *keygate.KeySource) { s.ResultField = " " }, `key_source.result_field: " " must name a field`},
		{"expire_seconds", func(s *keygate.KeySource) { s.ExpireSeconds = -1 }, "key_source.expire_seconds: -1 must be positive"},
		{"refresh_before_seconds too big", func(s *keygate.KeySource) { s.RefreshBeforeSeconds = 700 },
			"key_source.refresh_before_seconds: 700 must be smaller than expire_seconds (600)"},
		{"refresh_before_seconds negative", func(s *keygate.KeySource) { s.RefreshBeforeSeconds = -1 }, "key_source.refresh_before_seconds: -1 must not be negative"},
		{"timeout_seconds", func(s *keygate.KeySource) { s.TimeoutSeconds = -1 }, "key_source.timeout_seconds: -1 must not be negative"},
		{"retries", func(s *keygate.KeySource) { s.Retries = -1 }, "key_source.retries: -1 must not be negative"},
		{"retry_interval_ms", func(s *keygate.KeySource) { s.RetryIntervalMS = -1 }, "key_source.retry_interval_ms: -1 must not be negative"},
		{"header name", func(s *keygate.KeySource) { s.Headers = map[string]string{"X Bad": "v"} }, `key_source.headers: "X Bad" is not a header name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := keygate.KeySource{URL: "http://keys.local/getApikey", SceneCode: "P1", ExpireSeconds: 600}
			tt.edit(&spec)
			_, err := keysource.New(spec, keysource.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want %q", err, tt.want)
			}
		})
	}

	t.Run("secrets in the url stay out", func(t *testing.T) {
		_, err := keysource.New(keygate.KeySource{URL: "ftp://me:hunter2@keys/get?token=s3cret", SceneCode: "P1"}, keysource.Options{})
		if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New = %v", err)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		src, err := keysource.New(keygate.KeySource{URL: "https://me:hunter2@keys.local/getApikey?token=s3cret", SceneCode: "P1"}, keysource.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := keysource.View{Type: "key_service", Target: "https://me@keys.local/getApikey", URL: "https://me@keys.local/getApikey",
			SceneCode: "P1", State: keysource.StateStarting}
		if v := src.View(); v != want {
			t.Errorf("View = %+v, want %+v", v, want)
		}
	})
}

// waitFor polls cond (for goroutines to get somewhere, never for time logic).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTransportEdges(t *testing.T) {
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

	t.Run("rejected and the service down: backup", func(t *testing.T) {
		e := newEnv(t, func(s *keygate.KeySource) { s.Retries = 1 })
		e.start()
		e.advance(time.Second) // two rounds of fetches are at least a second apart
		e.ks.Revoke(e.src.Current().Secret)
		e.ks.SetDown(true)
		if got := e.chat(e.client(backupKey)); got != backupKey {
			t.Errorf("retried with %s, want the backup", keygate.Mask(got))
		}
	})

	t.Run("body that cannot be replayed", func(t *testing.T) {
		e := newEnv(t, nil)
		e.start()
		e.advance(time.Second)
		old := e.src.Current()
		e.ks.Revoke(old.Secret)
		req, _ := http.NewRequest("POST", e.pURL+"/v1/chat/completions", io.NopCloser(strings.NewReader(chat)))
		resp, err := e.client(backupKey).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want the provider's 401", resp.StatusCode)
		}
		if l := e.src.Current(); l.Secret == old.Secret || !l.Valid(e.clock.Now()) {
			t.Error("the rejected key was not replaced for the next request")
		}
	})

	t.Run("no key and no backup", func(t *testing.T) {
		e := newEnv(t, nil)
		e.ks.SetDown(true)
		e.start()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", e.pURL+"/v1/chat/completions", strings.NewReader(chat))
		_, err := e.client("").Do(req)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no key for POST") {
			t.Errorf("Do = %v", err)
		}
		if n := len(e.prov.Requests()); n != 0 {
			t.Errorf("%d requests reached the provider", n)
		}
	})
}
