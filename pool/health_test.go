package pool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func verdict(class health.Class, retryAfter time.Duration) health.Verdict {
	return health.Verdict{Class: class, Scope: class.Scope(), RetryAfter: retryAfter, Failover: true, Reason: string(class)}
}

// failOnce picks the only usable key of g at now and fails it with v.
func failOnce(t *testing.T, p *Pool, g *Group, now time.Time, v health.Verdict) *Key {
	t.Helper()
	a, ok := g.Pick(nil, now.UnixNano())
	if !ok {
		t.Fatalf("at %s: no key to fail", now.Sub(t0))
	}
	p.Failed(&a, now, v)
	return a.Key()
}

func admits(g *Group, now time.Time) bool {
	a, ok := g.Pick(nil, now.UnixNano())
	if ok {
		// Give a probe back: this helper only looks.
		(&Pool{}).Release(&a)
	}
	return ok
}

func TestCooldownBackoffAndCap(t *testing.T) {
	cases := []struct {
		class health.Class
		want  []time.Duration // cooldown after the 1st, 2nd, … failure in a row
	}{
		{health.ClassRateLimit, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}},
		{health.ClassServiceUnavailable, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}},
		{health.ClassInternal, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(string(tc.class), func(t *testing.T) {
			p := testPool(t, model("m", keygate.ModeSingle, "sk-only-key-000000001"))
			g := p.Group("m")
			now := t0
			for i, want := range tc.want {
				failOnce(t, p, g, now, verdict(tc.class, 0))
				if admits(g, now.Add(want-time.Millisecond)) {
					t.Fatalf("failure %d: key usable before its %s cooldown ended", i+1, want)
				}
				now = now.Add(want)
				if !admits(g, now) {
					t.Fatalf("failure %d: key not usable once its %s cooldown ended", i+1, want)
				}
			}
		})
	}
}

func TestDisableAfterNInARow(t *testing.T) {
	cases := []struct {
		class health.Class
		n     int
	}{
		{health.ClassAuthentication, 1},
		{health.ClassInsufficientQuota, 3},
		{health.ClassPermissionDenied, 3},
		{health.ClassUnknown, 2},
	}
	for _, tc := range cases {
		t.Run(string(tc.class), func(t *testing.T) {
			p := testPool(t, model("m", keygate.ModeSingle, "sk-doomed-key-0000001"))
			g := p.Group("m")
			now := t0
			var k *Key
			for i := 1; i <= tc.n; i++ {
				k = failOnce(t, p, g, now, verdict(tc.class, 0))
				now = now.Add(48 * time.Hour) // far past any cooldown
			}
			if admits(g, now) || admits(g, now.Add(365*24*time.Hour)) {
				t.Fatalf("after %d %s failures in a row the key must stay disabled", tc.n, tc.class)
			}
			if v := k.View(now); v.Status != StatusDisabled || v.ErrorClass != string(tc.class) {
				t.Fatalf("view: status %s class %s", v.Status, v.ErrorClass)
			}
			k.Reset()
			if !admits(g, now) {
				t.Fatal("a reset key must serve again")
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeSingle, "sk-limited-key-000001"))
	g := p.Group("m")
	failOnce(t, p, g, t0, verdict(health.ClassRateLimit, 7*time.Second))
	if admits(g, t0.Add(6*time.Second)) || !admits(g, t0.Add(7*time.Second)) {
		t.Fatal("a rate limit with Retry-After 7s must cool the key exactly 7s")
	}
}

func TestExactlyOneProbeWhenCooldownEnds(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-recovering-key-0001"))
	g := p.Group("m")
	failOnce(t, p, g, t0, verdict(health.ClassServiceUnavailable, 0))
	after := t0.Add(10 * time.Second)

	var admitted atomic.Int32
	var probes sync.Map
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if a, ok := g.Pick(nil, after.UnixNano()); ok {
				admitted.Add(1)
				probes.Store(i, a)
			}
		}(i)
	}
	wg.Wait()
	if n := admitted.Load(); n != 1 {
		t.Fatalf("%d requests probed the recovering key, want exactly 1", n)
	}
	var probe Attempt
	probes.Range(func(_, v any) bool { probe = v.(Attempt); return false })

	// A failed probe takes the next step of backoff (20 s)…
	p.Failed(&probe, after, verdict(health.ClassServiceUnavailable, 0))
	if admits(g, after.Add(19*time.Second)) {
		t.Fatal("a failed probe must cool the key for the next, doubled step")
	}
	// …and a successful one heals it for everyone.
	next := after.Add(20 * time.Second)
	a, ok := g.Pick(nil, next.UnixNano())
	if !ok {
		t.Fatal("the second probe was not admitted")
	}
	if _, ok := g.Pick(nil, next.UnixNano()); ok {
		t.Fatal("while a probe is in flight, nobody else may use the key")
	}
	p.Succeeded(&a, next, 100*time.Millisecond)
	for i := 0; i < 3; i++ {
		if _, ok := g.Pick(nil, next.UnixNano()); !ok {
			t.Fatal("a healed key serves everyone")
		}
	}
	// Healed means counters reset: the next failure starts again at 10 s.
	failOnce(t, p, g, next, verdict(health.ClassServiceUnavailable, 0))
	if !admits(g, next.Add(10*time.Second)) {
		t.Fatal("after healing, backoff starts again from the first step")
	}
}

func TestInFlightFailuresDoNotMultiplyTheCooldown(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-burst-key-0000001"))
	g := p.Group("m")
	var burst []Attempt
	for i := 0; i < 5; i++ {
		a, _ := g.Pick(nil, t0.UnixNano())
		burst = append(burst, a)
	}
	for i := range burst {
		p.Failed(&burst[i], t0, verdict(health.ClassInsufficientQuota, 0))
	}
	if !admits(g, t0.Add(time.Hour)) {
		t.Fatal("five requests failing together are one failure: one hour of cooldown, not disabled")
	}
}

func TestScopeKeyVersusKeyAndModel(t *testing.T) {
	shared := "sk-shared-between-ab-01"
	p := testPool(t, model("a", keygate.ModeSingle, shared), model("b", keygate.ModeSingle, shared))
	a, b := p.Group("a"), p.Group("b")

	failOnce(t, p, a, t0, verdict(health.ClassRateLimit, 0))
	if admits(a, t0.Add(time.Second)) {
		t.Fatal("a rate limit on model a must cool the key for a")
	}
	if !admits(b, t0.Add(time.Second)) {
		t.Fatal("a rate limit on model a must leave the key usable for b")
	}

	failOnce(t, p, b, t0.Add(2*time.Second), verdict(health.ClassAuthentication, 0))
	if admits(a, t0.Add(time.Hour)) || admits(b, t0.Add(time.Hour)) {
		t.Fatal("a 401 retires the key for every model")
	}
}

func TestNoFaultFailuresChangeNothing(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeSingle, "sk-innocent-key-00001"))
	g := p.Group("m")
	for _, c := range []health.Class{health.ClassCanceled, health.ClassNetwork, health.ClassClient, health.ClassRegion} {
		failOnce(t, p, g, t0, health.Verdict{Class: c, Scope: health.ScopeNone})
	}
	if !admits(g, t0) {
		t.Fatal("a caller hanging up, a network error or a bad request must not cool the key")
	}
	if v := p.Keys()[0].View(t0); v.FailureCount != 0 {
		t.Fatalf("they must not count as the key's failures either: %d", v.FailureCount)
	}
}

func TestRecoversAtIsTheSoonestKey(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-first-cooling-0001", "sk-second-cooling-002"))
	g := p.Group("m")
	failOnce(t, p, g, t0, verdict(health.ClassRateLimit, 30*time.Second))
	failOnce(t, p, g, t0, verdict(health.ClassRateLimit, 5*time.Second))
	at, ok := g.RecoversAt(t0.UnixNano())
	if !ok || !at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("soonest recovery %v, want t0+5s", at)
	}
	for _, k := range p.Keys() {
		k.SetDisabled(true)
	}
	if _, ok := g.RecoversAt(t0.UnixNano()); ok {
		t.Fatal("every key disabled: nothing recovers by itself")
	}
}

func TestStatesRoundTrip(t *testing.T) {
	m := model("m", keygate.ModeRoundRobin, "sk-persist-me-000001", "sk-persist-too-00002")
	p := testPool(t, m)
	g := p.Group("m")
	failOnce(t, p, g, t0, verdict(health.ClassInsufficientQuota, 0))
	failOnce(t, p, g, t0, verdict(health.ClassRateLimit, 0))
	states := p.States(t0, false)
	if len(states) == 0 {
		t.Fatal("changed states must be reported")
	}
	if again := p.States(t0, false); len(again) != 0 {
		t.Fatalf("States clears dirty marks, got %d again", len(again))
	}

	fresh := testPool(t, m)
	fresh.Restore(states)
	fg := fresh.Group("m")
	if admits(fg, t0.Add(59*time.Second)) {
		t.Fatal("restored pool must keep both keys cooling")
	}
	if !admits(fg, t0.Add(time.Minute)) {
		t.Fatal("the rate-limited key must come back after 60s in the restored pool")
	}
	for _, k := range p.Keys() {
		before, after := k.View(t0), fresh.Key(k.ID).View(t0)
		if before.ErrorClass != after.ErrorClass || before.FailureCount != after.FailureCount || before.Status != after.Status {
			t.Fatalf("key %s: before %+v after %+v", k.ID, before, after)
		}
	}
}
