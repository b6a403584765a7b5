package keysource_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
)

// counting is a key service that gives answer(n) to its nth call (from 1)
// and counts the calls.
func counting(t *testing.T, answer func(n int) string) (url string, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(answer(int(calls.Add(1)))))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

// The key a service hands out is trimmed, a key no header can carry is
// refused like a failed fetch, and lifetimes are kept sane: a "never
// expiring" key lives a day, and a lease expired on arrival is refused.
func TestFetchedKeyIsCleanedAndItsLifetimeBounded(t *testing.T) {
	const key = "sk-live-0123456789abcdef"
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := clock.Now()
	day := now.Add(keysource.MaxLifetime)
	tests := []struct {
		name    string
		answer  string
		want    time.Time // zero: refused
		wantKey string
	}{
		{"trailing newline trimmed", `{"result":"` + key + `\n"}`, now.Add(600 * time.Second), key},
		{"surrounding spaces trimmed", `{"result":"  ` + key + ` \t"}`, now.Add(600 * time.Second), key},
		{"line break inside refused", `{"result":"sk-live-0123\r\n456789abcdef"}`, time.Time{}, ""},
		{"control character refused", `{"result":"sk-live-0123\u0000456789abcdef"}`, time.Time{}, ""},
		{"non-ASCII refused", `{"result":"sk-live-0123é456789abcdef"}`, time.Time{}, ""},
		{"never-expiring expires_in clamped", `{"result":"` + key + `","expires_in":9999999999}`, day, key},
		{"huge expires_in clamped", `{"result":"` + key + `","expires_in":1e300}`, day, key},
		{"far expire_time clamped", `{"result":"` + key + `","expire_time":"9999-12-31T23:59:59Z"}`, day, key},
		{"far unix ms expire_time clamped", `{"result":"` + key + `","expire_time":99999999999999999}`, day, key},
		{"expired on arrival refused", fmt.Sprintf(`{"result":"%s","expire_time":%d}`, key, now.Add(-time.Second).Unix()), time.Time{}, ""},
		{"zero expires_in refused", `{"result":"` + key + `","expires_in":0}`, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := keysource.New(keygate.KeySource{URL: answering(t, tt.answer), SceneCode: "P1", Retries: 1},
				keysource.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			l, err := src.Wait(ctx)
			if tt.want.IsZero() {
				if err == nil {
					t.Fatalf("accepted lease %+v", l)
				}
				return
			}
			if err != nil || l.Secret != tt.wantKey || !l.ExpiresAt.Equal(tt.want) {
				t.Errorf("lease %q until %v, %v; want %q until %v", l.Secret, l.ExpiresAt, err, tt.wantKey, tt.want)
			}
		})
	}
}

// A service that hands out keys which are stale at once (a lifetime of a
// millisecond) is asked once a second, not in a storm, although every
// fetch succeeds; so is one whose every key is rejected at once.
func TestRefetchingIsRateLimitedAfterSuccess(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer string
		reject bool
	}{
		{"stale keys", `{"result":"sk-live-%04d-0123456789","expires_in":0.001}`, false},
		{"rejected keys", `{"result":"sk-live-%04d-0123456789"}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			url, calls := counting(t, func(n int) string { return fmt.Sprintf(tt.answer, n) })
			src, err := keysource.New(keygate.KeySource{URL: url, SceneCode: "P1"},
				keysource.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { src.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			stop := make(chan struct{})
			if tt.reject {
				// Callers reject every key they are given, as fast as they can.
				for range 4 {
					go func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
							src.Rejected(rctx, src.Current().Secret)
							rcancel()
						}
					}()
				}
			}
			for range 10 {
				// Each second allows one refetch: wait (in real time, for a
				// loaded machine) until it has been made, then let any storm
				// beyond it show itself.
				before := calls.Load()
				clock.Advance(time.Second)
				for deadline := time.Now().Add(2 * time.Second); calls.Load() == before && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			time.Sleep(20 * time.Millisecond)
			if n := calls.Load(); n > 12 {
				t.Fatalf("%d key-service calls in 10 s, want at most one a second", n)
			}
			if n := calls.Load(); n < 5 {
				t.Fatalf("%d key-service calls in 10 s: a stale key must still be replaced", n)
			}
		})
	}
}
