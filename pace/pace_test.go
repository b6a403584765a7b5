package pace

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseVendors(t *testing.T) {
	tests := []struct {
		name   string
		vendor string
		status int
		h      http.Header
		body   string
		check  func(t *testing.T, l Limits)
	}{
		{"openai durations", "openai", 200, hdr(
			"x-ratelimit-limit-requests", "5000", "x-ratelimit-remaining-requests", "4999", "x-ratelimit-reset-requests", "12ms",
			"x-ratelimit-limit-tokens", "160000", "x-ratelimit-remaining-tokens", "159976", "x-ratelimit-reset-tokens", "1m30s"), "",
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 5000, 4999, t0.Add(12*time.Millisecond), false)
				want(t, l.Tokens, 160000, 159976, t0.Add(90*time.Second), false)
			}},
		{"openai seconds and 6m0s, guessed", "", 200, hdr(
			"x-ratelimit-limit-requests", "50", "x-ratelimit-remaining-requests", "42", "x-ratelimit-reset-requests", "20s",
			"x-ratelimit-limit-tokens", "40000", "x-ratelimit-remaining-tokens", "18000", "x-ratelimit-reset-tokens", "6m0s"), "",
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 50, 42, t0.Add(20*time.Second), false)
				want(t, l.Tokens, 40000, 18000, t0.Add(6*time.Minute), false)
			}},
		{"anthropic RFC 3339", "anthropic", 200, hdr(
			"anthropic-ratelimit-requests-limit", "1000", "anthropic-ratelimit-requests-remaining", "999", "anthropic-ratelimit-requests-reset", "2026-12-01T10:00:01Z",
			"anthropic-ratelimit-tokens-limit", "96000", "anthropic-ratelimit-tokens-remaining", "95000", "anthropic-ratelimit-tokens-reset", "2026-12-01T10:00:00.5Z",
			"anthropic-ratelimit-input-tokens-limit", "80000", "anthropic-ratelimit-input-tokens-remaining", "79000", "anthropic-ratelimit-input-tokens-reset", "2026-12-01T10:00:01Z",
			"anthropic-ratelimit-output-tokens-limit", "16000", "anthropic-ratelimit-output-tokens-remaining", "15800", "anthropic-ratelimit-output-tokens-reset", "2026-12-01T10:00:02Z"), "",
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 1000, 999, t0.Add(time.Second), false)
				want(t, l.Tokens, 96000, 95000, t0.Add(500*time.Millisecond), false)
				want(t, l.InputTokens, 80000, 79000, t0.Add(time.Second), false)
				want(t, l.OutputTokens, 16000, 15800, t0.Add(2*time.Second), false)
			}},
		{"anthropic guessed from headers", "", 200, hdr(
			"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", "2026-12-01T10:00:30Z"), "",
			func(t *testing.T, l Limits) { want(t, l.Requests, 50, 0, t0.Add(30*time.Second), false) }},
		{"azure remaining only, fixed windows", "azure", 200, hdr(
			"x-ratelimit-remaining-requests", "19", "x-ratelimit-remaining-tokens", "19913"), "",
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 0, 19, t0.Add(10*time.Second), true)
				want(t, l.Tokens, 0, 19913, t0.Add(time.Minute), true)
			}},
		{"azure -1 is not a count, reset in seconds", "", 200, hdr(
			"x-ratelimit-remaining-requests", "45", "x-ratelimit-limit-tokens", "-1", "x-ratelimit-remaining-tokens", "-1"), "",
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 0, 45, t0.Add(10*time.Second), true)
				if l.Tokens.Set {
					t.Errorf("tokens = %+v, want unset for -1", l.Tokens)
				}
			}},
		{"gemini quota failure with retry info", "gemini", 429, nil,
			`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"15"},{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count","quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaValue":"250000"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}`,
			func(t *testing.T, l Limits) {
				want(t, l.Requests, 15, 0, t0.Add(38*time.Second), true)
				want(t, l.InputTokens, 250000, 0, t0.Add(38*time.Second), true)
			}},
		{"gemini daily quota resets at Pacific midnight", "gemini", 429, nil,
			`{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"200"}]}]}}`,
			func(t *testing.T, l Limits) {
				// 10:00 UTC on 1 December is 02:00 PST: midnight is 22 h away.
				want(t, l.Requests, 200, 0, t0.Add(22*time.Hour), true)
			}},
		{"gemini 200 says nothing", "gemini", 200, nil, `{"candidates":[]}`,
			func(t *testing.T, l Limits) {
				if l.Any() {
					t.Errorf("got %+v", l)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h == nil {
				h = http.Header{}
			}
			tt.check(t, Parse(tt.vendor, tt.status, h, []byte(tt.body), t0))
		})
	}
}

func want(t *testing.T, w Window, limit, rem int64, reset time.Time, fixed bool) {
	t.Helper()
	if !w.Set || w.Limit != limit || w.Remaining != rem || !w.Reset.Equal(reset) || w.Fixed != fixed {
		t.Errorf("window = %+v, want limit %d remaining %d reset %s fixed %v", w, limit, rem, reset, fixed)
	}
}

func TestParseReset(t *testing.T) {
	for in, d := range map[string]time.Duration{"1m30s": 90 * time.Second, "6ms": 6 * time.Millisecond, "20s": 20 * time.Second,
		"0.5": 500 * time.Millisecond, "7": 7 * time.Second, "2026-12-01T10:01:00Z": time.Minute} {
		if got, ok := ParseReset(in, t0); !ok || got.Sub(t0) != d {
			t.Errorf("ParseReset(%q) = %s, %v; want +%s", in, got, ok, d)
		}
	}
	for _, in := range []string{"", "soon", "-5s"} {
		if _, ok := ParseReset(in, t0); ok {
			t.Errorf("ParseReset(%q) ok, want not", in)
		}
	}
}

func TestConfiguredRPMPacesTheKey(t *testing.T) {
	r := NewRoom(60, 0, t0)
	for i := range 60 {
		if tk := r.Reserve(t0, Cost{}); tk.Wait != 0 {
			t.Fatalf("request %d waits %s, want none within the rpm", i+1, tk.Wait)
		}
	}
	if r.Ready(t0.UnixNano()) {
		t.Fatal("ready after 60 requests of an rpm of 60")
	}
	tk := r.Reserve(t0, Cost{})
	if tk.Wait < 990*time.Millisecond || tk.Wait > 1010*time.Millisecond {
		t.Errorf("61st request waits %s, want about 1 s (the bucket refills one a second)", tk.Wait)
	}
	r.Cancel(t0, tk)
	if !r.Ready(t0.Add(time.Second).UnixNano()) {
		t.Error("not ready a second later")
	}
}

func TestOutOfRoomUntilReset(t *testing.T) {
	t.Run("openai bucket: room for the next request comes back at its share of the reset", func(t *testing.T) {
		r := &Room{}
		r.Observe(t0, ParseOpenAI(hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "6s"), t0), nil)
		if r.Ready(t0.UnixNano()) {
			t.Fatal("ready with 0 remaining")
		}
		if got := time.Duration(r.ReadyAt() - t0.UnixNano()); got < 99*time.Millisecond || got > 101*time.Millisecond {
			t.Errorf("ready in %s, want 100 ms (60 refill in 6 s)", got)
		}
	})
	t.Run("azure window: nothing before the reset", func(t *testing.T) {
		r := &Room{}
		r.Observe(t0, ParseAzure(hdr("x-ratelimit-remaining-requests", "0"), t0), nil)
		if r.Ready(t0.Add(9 * time.Second).UnixNano()) {
			t.Error("ready 9 s into a 10 s window with 0 remaining")
		}
		if !r.Ready(t0.Add(10 * time.Second).UnixNano()) {
			t.Error("not ready at the reset")
		}
	})
	t.Run("the lower count wins within a window", func(t *testing.T) {
		r := &Room{}
		r.Observe(t0, ParseOpenAI(hdr("x-ratelimit-limit-requests", "10", "x-ratelimit-remaining-requests", "2", "x-ratelimit-reset-requests", "48s"), t0), nil)
		r.Reserve(t0, Cost{})
		r.Reserve(t0, Cost{})
		// A slow answer from before says 5 remain; the two in flight are not in it.
		r.Observe(t0, ParseOpenAI(hdr("x-ratelimit-limit-requests", "10", "x-ratelimit-remaining-requests", "5", "x-ratelimit-reset-requests", "30s"), t0), nil)
		if r.Ready(t0.UnixNano()) {
			t.Error("a stale answer gave back room that two requests in flight took")
		}
	})
	t.Run("a 429 holds the key until its retry time", func(t *testing.T) {
		r := &Room{}
		r.Refused(t0, t0.Add(3*time.Second))
		if r.Ready(t0.Add(2 * time.Second).UnixNano()) {
			t.Error("ready before the retry time")
		}
		if !r.Ready(t0.Add(3 * time.Second).UnixNano()) {
			t.Error("not ready at the retry time")
		}
	})
}

func TestReserveAndSettleTokens(t *testing.T) {
	r := NewRoom(0, 1000, t0)
	tk := r.Reserve(t0, Cost{Input: 300, Output: 500})
	if tk.Wait != 0 {
		t.Fatalf("wait %s", tk.Wait)
	}
	if w := r.WaitFor(t0, Cost{Input: 300}); w == 0 {
		t.Error("300 more tokens fit while 800 of 1000 are reserved")
	}
	r.Settle(t0, tk, 300, 20) // the answer was short
	if w := r.WaitFor(t0, Cost{Input: 600}); w != 0 {
		t.Errorf("600 tokens wait %s after the request settled at 320 of 1000", w)
	}
	f := r.Forecast(t0)
	if f.RemainingTokens == nil || *f.RemainingTokens != 680 {
		t.Errorf("remaining tokens = %v, want 680", f.RemainingTokens)
	}
}

func TestCancelGivesTheReservationBack(t *testing.T) {
	r := NewRoom(1, 100, t0)
	tk := r.Reserve(t0, Cost{Input: 100})
	if r.Ready(t0.UnixNano()) {
		t.Fatal("ready with the one request of the minute taken")
	}
	r.Cancel(t0, tk)
	if !r.Ready(t0.UnixNano()) || r.WaitFor(t0, Cost{Input: 100}) != 0 {
		t.Error("a cancelled reservation kept its room")
	}
}

func TestForecastOfADrainingKey(t *testing.T) {
	// A bucket of 60 that refills in 6 s (10/s), drained at 15/s: it runs
	// dry when 60/(15-10) = 12 s have passed.
	r := &Room{}
	limits := func(rem int) Limits {
		return ParseOpenAI(hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", itoa(rem),
			"x-ratelimit-reset-requests", (time.Duration(60-rem)*100*time.Millisecond).String()), t0)
	}
	r.Observe(t0, limits(60), nil)
	level := 60.0
	now := t0
	step := time.Second / 15
	for now.Before(t0.Add(3 * time.Second)) {
		now = now.Add(step)
		level = min(60, level+10*step.Seconds()) - 1
		r.Reserve(now, Cost{})
		tk := ParseOpenAI(hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", itoa(int(level)),
			"x-ratelimit-reset-requests", (time.Duration((60-level)*100)*time.Millisecond).String()), now)
		r.Observe(now, tk, nil)
	}
	f := r.Forecast(now)
	if f.ExhaustsAt == nil {
		t.Fatal("no exhausts_at for a key burning faster than it refills")
	}
	wantAt := t0.Add(12 * time.Second)
	if d := f.ExhaustsAt.Sub(wantAt); d < -900*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("exhausts_at %s, want within 10%% of the 9 s left: %s", f.ExhaustsAt, wantAt)
	}
	if f.RequestsPerMinute < 800 || f.RequestsPerMinute > 1000 {
		t.Errorf("burn %.0f/min, want about 900", f.RequestsPerMinute)
	}
	if f.RemainingRequests == nil || *f.RemainingRequests > 46 || *f.RemainingRequests < 43 {
		t.Errorf("remaining = %v, want about 45", f.RemainingRequests)
	}

	// Used slower than it refills, it does not run dry.
	calm := NewRoom(60, 0, t0)
	for i := range 30 {
		calm.Reserve(t0.Add(time.Duration(i)*2*time.Second), Cost{})
	}
	if f := calm.Forecast(t0.Add(60 * time.Second)); f.ExhaustsAt != nil {
		t.Errorf("a key at half its rpm runs dry at %s", f.ExhaustsAt)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestHedgeCap(t *testing.T) {
	h := NewHedgeCap(5)
	for range 100 {
		h.Request(t0)
	}
	for i := range 5 {
		if !h.TryExtra(t0) {
			t.Fatalf("extra %d refused under a 5%% cap of 100 requests", i+1)
		}
	}
	if h.TryExtra(t0) {
		t.Error("a sixth extra call of 100 requests allowed under 5%")
	}
	// A minute later the window has slid past them all.
	later := t0.Add(61 * time.Second)
	if h.TryExtra(later) {
		t.Error("an extra call allowed with no requests in the last minute")
	}
	for range 20 {
		h.Request(later)
	}
	if !h.TryExtra(later) {
		t.Error("an extra call refused with 20 fresh requests and none extra")
	}
	if req, extra := h.Counts(later); req != 20 || extra != 1 {
		t.Errorf("counts %d, %d; want 20, 1", req, extra)
	}
}

func TestLatencyP95(t *testing.T) {
	var l Latency
	for i := range 19 {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	if l.P95() != 0 {
		t.Errorf("p95 %s from 19 samples, want none yet", l.P95())
	}
	for i := range 100 {
		l.Add(time.Duration(i%20+1) * 10 * time.Millisecond) // 10..200 ms
	}
	if p := l.P95(); p < 180*time.Millisecond || p > 200*time.Millisecond {
		t.Errorf("p95 %s, want 190 ms", p)
	}
}

func TestMayWait(t *testing.T) {
	ctx := context.Background()
	if !MayWait(ctx, t0, t0.Add(time.Second), 3*time.Second, 5*time.Second) {
		t.Error("a 3 s wait 1 s into a 5 s budget refused")
	}
	if MayWait(ctx, t0, t0.Add(3*time.Second), 3*time.Second, 5*time.Second) {
		t.Error("a wait past the budget allowed")
	}
	dl, cancel := context.WithDeadline(ctx, t0.Add(2*time.Second))
	defer cancel()
	if MayWait(dl, t0, t0, 3*time.Second, 5*time.Second) {
		t.Error("a wait past the caller's deadline allowed")
	}
	gone, cancel2 := context.WithCancel(ctx)
	cancel2()
	if MayWait(gone, t0, t0, 0, 5*time.Second) {
		t.Error("a caller that went away may wait")
	}
}

func TestSleepUsesTheClock(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	done := make(chan bool)
	go func() { done <- Sleep(context.Background(), clock, 2*time.Second) }()
	clock.BlockUntilContext(context.Background(), 1)
	clock.Advance(2 * time.Second)
	if !<-done {
		t.Error("Sleep reported the caller gone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- Sleep(ctx, clock, time.Hour) }()
	clock.BlockUntilContext(context.Background(), 1)
	cancel()
	if <-done {
		t.Error("Sleep did not stop when the caller went")
	}
}

// A burst sent before anything was known: the first answer's remaining
// count is as of its own request, and the nine sent after it are not in it.
func TestFirstAnswerCountsWhatWasSentAfterIt(t *testing.T) {
	r := &Room{}
	var first Ticket
	for i := range 10 {
		tk := r.Reserve(t0, Cost{})
		if i == 0 {
			first = tk
		}
	}
	r.Observe(t0, ParseOpenAI(hdr("x-ratelimit-limit-requests", "10", "x-ratelimit-remaining-requests", "9", "x-ratelimit-reset-requests", "6s"), t0), &first)
	if r.Ready(t0.UnixNano()) {
		t.Error("ready: the nine requests sent after the answered one were not counted")
	}
	if f := r.Forecast(t0); f.RemainingRequests == nil || *f.RemainingRequests != 0 {
		t.Errorf("remaining %v, want 0", f.RemainingRequests)
	}
}
