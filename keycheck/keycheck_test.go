package keycheck

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
)

var t0 = time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)

func newChecker(t *testing.T, models ...keygate.Model) (*Checker, *clockwork.FakeClock) {
	t.Helper()
	p := pool.New(keygate.NewKeyHasher([]byte("check")), keygate.DefaultKeyPolicy())
	if err := p.Load(models); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(t0)
	return &Checker{Pool: p, Client: http.DefaultClient, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, clock
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func TestCheckEveryVendor(t *testing.T) {
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-openai-good-000001": mockprovider.OK, "sk-openai-quota-00002": mockprovider.QuotaExhausted}})
	anth := mockprovider.NewVendor(mockprovider.VendorAnthropic, map[string]mockprovider.Behavior{"sk-ant-good-00000001": mockprovider.OK})
	gem := mockprovider.NewVendor(mockprovider.VendorGemini, map[string]mockprovider.Behavior{"AIza-good-0000000001": mockprovider.OK})
	sf := mockprovider.NewVendor(mockprovider.VendorSiliconFlow, map[string]mockprovider.Behavior{"sk-sf-broke-00000001": mockprovider.QuotaExhausted})
	c, clock := newChecker(t,
		keygate.Model{ModelID: "gpt", Provider: "openai", BaseURL: serve(t, openai) + "/v1",
			APIKeys: []keygate.KeySpec{{Key: "sk-openai-good-000001"}, {Key: "sk-openai-quota-00002"}, {Key: "sk-openai-unknown-003"}}},
		keygate.Model{ModelID: "claude", Provider: "anthropic", BaseURL: serve(t, anth) + "/v1",
			APIKeys: []keygate.KeySpec{{Key: "sk-ant-good-00000001"}, {Key: "sk-ant-bad-000000002"}}},
		keygate.Model{ModelID: "gemini", Provider: "gemini", BaseURL: serve(t, gem) + "/v1beta",
			APIKeys: []keygate.KeySpec{{Key: "AIza-good-0000000001"}, {Key: "AIza-bad-00000000002"}}},
		keygate.Model{ModelID: "qwen", Provider: "siliconflow", BaseURL: serve(t, sf) + "/v1",
			APIKeys: []keygate.KeySpec{{Key: "sk-sf-broke-00000001"}}},
	)
	var progress int
	results := c.CheckAll(context.Background(), Filter{Vendor: "all"}, func(Result) { progress++ })
	if len(results) != 8 || progress != 8 {
		t.Fatalf("want 8 keys checked with 8 progress calls, got %d / %d", len(results), progress)
	}
	want := map[string]struct {
		ok     bool
		class  string
		status string
	}{
		keygate.Mask("sk-openai-good-000001"): {true, "", pool.StatusUnused},
		keygate.Mask("sk-openai-quota-00002"): {false, "insufficient_quota", pool.StatusCooldown},
		keygate.Mask("sk-openai-unknown-003"): {false, "authentication_error", pool.StatusDisabled},
		keygate.Mask("sk-ant-good-00000001"):  {true, "", pool.StatusUnused},
		keygate.Mask("sk-ant-bad-000000002"):  {false, "authentication_error", pool.StatusDisabled},
		keygate.Mask("AIza-good-0000000001"):  {true, "", pool.StatusUnused},
		keygate.Mask("AIza-bad-00000000002"):  {false, "authentication_error", pool.StatusDisabled},
		keygate.Mask("sk-sf-broke-00000001"):  {false, "insufficient_quota", pool.StatusCooldown},
	}
	for _, r := range results {
		w, ok := want[r.Masked]
		if !ok || r.OK != w.ok || r.Class != w.class || r.Status != w.status {
			t.Errorf("%s (%s): ok=%v class=%q status=%q, want %+v", r.Masked, r.Vendor, r.OK, r.Class, r.Status, w)
		}
	}
	if only := c.CheckAll(context.Background(), Filter{Vendor: "gemini"}, nil); len(only) != 2 {
		t.Fatalf("vendor filter: %d results", len(only))
	}
	// A passing check brings back a key disabled for authentication.
	anth.SetBehavior("sk-ant-bad-000000002", mockprovider.OK)
	c.CheckAll(context.Background(), Filter{Model: "claude"}, nil)
	for _, k := range c.Pool.Keys() {
		if k.Masked() == keygate.Mask("sk-ant-bad-000000002") && k.View(clock.Now()).Status == pool.StatusDisabled {
			t.Fatal("a passing check must re-enable the key")
		}
	}
}

// fail puts the key in the state live traffic would have left it in.
func fail(t *testing.T, c *Checker, model string, class health.Class, now time.Time) {
	t.Helper()
	a, ok := c.Pool.Group(model).Pick(nil, now.UnixNano())
	if !ok {
		t.Fatal("no key")
	}
	c.Pool.Failed(&a, now, health.Verdict{Class: class, Scope: class.Scope(), Failover: true})
}

func TestRecoveryRechecksQuotaKeyOnScheduleUntilItReturns(t *testing.T) {
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-quota-key-0000001": mockprovider.QuotaExhausted}})
	c, clock := newChecker(t, keygate.Model{ModelID: "gpt-4o-mini", BaseURL: serve(t, openai) + "/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-quota-key-0000001"}}})
	r := &Recovery{Checker: c, Schedule: DefaultSchedule()}
	ctx := context.Background()
	fail(t, c, "gpt-4o-mini", health.ClassInsufficientQuota, t0)
	k := c.Pool.Keys()[0]
	j := jitter(k.ID, time.Hour)

	steps := []struct {
		at     time.Duration
		checks int
	}{
		{30 * time.Minute, 0},
		{time.Hour + j - time.Second, 0}, // not before its schedule
		{time.Hour + j, 1},               // first check: 1 h after the failure
		{time.Hour + j + time.Minute, 0}, // not again so soon
		{3*time.Hour + j, 1},             // second: 2 h after the first
	}
	for _, s := range steps {
		clock.Advance(t0.Add(s.at).Sub(clock.Now()))
		if n := r.RunOnce(ctx); n != s.checks {
			t.Fatalf("at t0+%s: %d checks, want %d", s.at, n, s.checks)
		}
	}
	if st := k.View(clock.Now()).Status; st != pool.StatusCooldown && st != pool.StatusDisabled {
		t.Fatalf("still out of quota: status %s %+v", st, k.View(clock.Now()))
	}
	// The quota returns: the next scheduled check brings the key back.
	openai.SetBehavior("sk-quota-key-0000001", mockprovider.OK)
	clock.Advance(t0.Add(7*time.Hour + j).Sub(clock.Now()))
	if n := r.RunOnce(ctx); n != 1 {
		t.Fatalf("third check: %d", n)
	}
	if v := k.View(clock.Now()); v.Status == pool.StatusCooldown || v.Status == pool.StatusDisabled || v.ErrorClass != "" {
		t.Fatalf("a key whose quota returned must be back: %+v", v)
	}
	if openai.Count("sk-quota-key-0000001") != 3 {
		t.Fatalf("the provider saw %d checks, want 3", openai.Count("sk-quota-key-0000001"))
	}
}

func TestRecoveryStopsAfterMaxAttempts(t *testing.T) {
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-broken-key-000001": mockprovider.QuotaExhausted}})
	c, clock := newChecker(t, keygate.Model{ModelID: "gpt-4o-mini", BaseURL: serve(t, openai) + "/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-broken-key-000001"}}})
	sched := DefaultSchedule()
	r := &Recovery{Checker: c, Schedule: sched}
	fail(t, c, "gpt-4o-mini", health.ClassInsufficientQuota, t0)
	total := 0
	for h := 0; h < 30*24; h++ {
		clock.Advance(time.Hour)
		total += r.RunOnce(context.Background())
	}
	if total != sched["insufficient_quota"].MaxAttempts {
		t.Fatalf("%d checks over a month, want exactly MaxAttempts=%d", total, sched["insufficient_quota"].MaxAttempts)
	}
	if st := c.Pool.Keys()[0].View(clock.Now()).Status; st != pool.StatusDisabled {
		t.Fatalf("a key past its maximum attempts stays out, status %s", st)
	}
}

func TestRecoveryLeavesRevokedKeysAlone(t *testing.T) {
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-revoked-key-00001": mockprovider.InvalidKey}})
	c, clock := newChecker(t, keygate.Model{ModelID: "gpt", BaseURL: serve(t, openai) + "/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-revoked-key-00001"}}})
	fail(t, c, "gpt", health.ClassAuthentication, t0)
	r := &Recovery{Checker: c, Schedule: DefaultSchedule()}
	clock.Advance(48 * time.Hour)
	if n := r.RunOnce(context.Background()); n != 0 {
		t.Fatal("keys disabled for authentication are not re-checked unless configured")
	}
	r.CheckAuth = true
	if n := r.RunOnce(context.Background()); n != 1 {
		t.Fatal("with CheckAuth the revoked key is re-checked")
	}
}

func TestChecksAreSpreadOverTheInterval(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 1000; i++ {
		seen[jitter(keygate.NewKeyHasher(nil).ID(string(rune(i))+"-key"), time.Hour)/time.Second] = true
	}
	if len(seen) < 300 {
		t.Fatalf("1,000 keys should get spread check times, got %d distinct seconds", len(seen))
	}
}
