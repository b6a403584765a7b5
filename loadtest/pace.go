package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// The pacing, forecast and hedging phases (issue 15). Time is compressed:
// the mock provider's rate-limit window is seconds, not a minute, and its
// headers say so, so keygate paces on them without knowing; max_queue_wait
// is compressed by the same factor. A phase takes seconds.

// PaceOptions size the phases. Zero values take the defaults of a full run.
type PaceOptions struct {
	Window time.Duration // the mock's rate-limit window (a "minute"); default 6 s
	Steady time.Duration // the pacing phase's timed part; default 2 windows
	Hedge  time.Duration // each half of the hedging phase; default 8 s
	Slow   time.Duration // the tail's delay; default 2 s
	// Only, if set, runs only the phases named (pacing, forecast, hedging).
	Only []string
	Log  io.Writer
}

func (o *PaceOptions) runs(phase string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, phase)
}

// PaceSmoke is a run of a few seconds that checks the phases work.
func PaceSmoke() PaceOptions {
	return PaceOptions{Window: 2 * time.Second, Steady: 3 * time.Second, Hedge: 2 * time.Second, Slow: time.Second}
}

// The numbers.
const (
	paceKeys     = 4
	paceRPM      = 60 // per key, per window
	paceTPM      = 3000
	paceDrive    = 300 // requests per window offered to the pool
	max429Share  = 0.01
	minAdmitted  = 0.95
	maxForecast  = 0.10
	maxP99Ratio  = 0.5
	hedgeCap     = 10.0 // max_extra_percent
	hedgeAfterMS = 200
	tailShare    = 0.05
	adminToken   = "kg-load-harness-admin"
)

// PaceResult is what the phases measured.
type PaceResult struct {
	Window time.Duration `json:"window_ns"`
	// Pacing, on and off.
	On  PacingRun `json:"pacing_on"`
	Off PacingRun `json:"pacing_off"`
	// Forecast: when keygate said the key would run dry, when the mock
	// first refused it, and the error as a share of the time left when the
	// forecast was read.
	ForecastAt, ExhaustsAt, RefusedAt time.Time
	ForecastError                     float64 `json:"forecast_error"`
	// Hedging: p99 latency without and with, extra upstream calls as a
	// percentage of requests, and tokens billed per request against the
	// mock's per-call usage.
	P99Plain, P99Hedged time.Duration
	Requests, Upstream  int64
	ExtraPercent        float64
	BilledRatio         float64
}

// PacingRun is one pacing phase.
type PacingRun struct {
	Calls, Refused int64   // upstream calls and upstream 429s
	Served, Shed   int64   // 200s in the counted part, and 503s with Retry-After
	Lost           int64   // anything else: a 429 passed on, a 503 without Retry-After, an error
	Admitted       float64 // served ÷ the pool's real limit over the timed part
	FirstLost      string
}

// providerStats is the mock's counters, as the "stats" command answers them.
type mockStats struct {
	Calls, Refused int64
	First          map[string]time.Time
}

func providerStats(p *mockprovider.Provider, keys []string) any {
	s := mockStats{Refused: int64(p.Refused()), First: map[string]time.Time{}}
	for _, k := range keys {
		s.Calls += int64(p.Count(k))
		if t := p.FirstRefusal(k); !t.IsZero() {
			s.First[k] = t
		}
	}
	return s
}

// paceBody asks for few tokens, as a caller who sets max_tokens does.
var paceBody = []byte(`{"model":"` + model + `","max_tokens":32,"messages":[{"role":"user","content":"Say hello to the load harness."}]}`)

// RunPace runs the three phases.
func RunPace(ctx context.Context, o PaceOptions) (*PaceResult, error) {
	if o.Window <= 0 {
		o.Window = 6 * time.Second
	}
	if o.Steady <= 0 {
		o.Steady = 2 * o.Window
	}
	if o.Hedge <= 0 {
		o.Hedge = 8 * time.Second
	}
	if o.Slow <= 0 {
		o.Slow = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	res := &PaceResult{Window: o.Window}
	var err error
	step := func(format string, args ...any) { fmt.Fprintf(o.Log, "keygate-load: "+format+"\n", args...) }
	if o.runs("pacing") {
		step("pacing on: %d keys of %d per %s, driven at %d per %s", paceKeys, paceRPM, o.Window, paceDrive, o.Window)
		if res.On, err = pacingPhase(ctx, o, false); err != nil {
			return nil, err
		}
		step("pacing off, for contrast")
		if res.Off, err = pacingPhase(ctx, o, true); err != nil {
			return nil, err
		}
	}
	if o.runs("forecast") {
		step("forecast: one key draining at 1.5× its refill")
		if err = forecastPhase(ctx, o, res); err != nil {
			return nil, err
		}
		step("forecast read at %s: exhausts_at %s; the mock refused first at %s",
			res.ForecastAt.Format("15:04:05.000"), res.ExhaustsAt.Format("15:04:05.000"), res.RefusedAt.Format("15:04:05.000"))
	}
	if o.runs("hedging") {
		step("hedging: %.0f%% of calls take %s", tailShare*100, o.Slow)
		if err = hedgePhase(ctx, o, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// pair starts a mock provider and a keygate in front of it; stop ends both.
func pair(ctx context.Context, o PaceOptions, prov, kg childSpec) (p, k *proc, stop func(), err error) {
	if p, err = start(ctx, prov, o.Log); err != nil {
		return nil, nil, nil, err
	}
	kg.Role, kg.Upstream, kg.Keys, kg.Token, kg.AdminToken = roleKeygate, p.url, prov.Keys, token, adminToken
	if k, err = start(ctx, kg, o.Log); err != nil {
		p.stop()
		return nil, nil, nil, err
	}
	return p, k, func() { k.stop(); p.stop() }, nil
}

func paceKeyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-pace-harness-key-%02d", i)
	}
	return keys
}

// post sends one chat request and reads the answer; it returns the status
// and the Retry-After header.
func post(ctx context.Context, c *http.Client, url string) (status int, retryAfter string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(paceBody))
	if err != nil {
		return 0, "", err
	}
	req.Header["Authorization"] = []string{"Bearer " + token}
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// pacingPhase drains the pool's buckets, then offers paceDrive requests per
// window for o.Steady, open loop, and counts what came back.
func pacingPhase(ctx context.Context, o PaceOptions, off bool) (PacingRun, error) {
	var run PacingRun
	keys := paceKeyNames(paceKeys)
	p, k, stop, err := pair(ctx, o,
		childSpec{Role: roleProvider, Keys: keys, Words: words, Limits: &mockprovider.Limits{RPM: paceRPM, TPM: paceTPM, Window: o.Window}},
		childSpec{PacingOff: off, MaxQueueWait: o.Window / 12}) // 5 s of a minute
	if err != nil {
		return run, err
	}
	defer stop()
	c := newClient(512)
	defer c.CloseIdleConnections()

	// The buckets start full: a burst of their size empties them.
	var wg sync.WaitGroup
	for range paceKeys * paceRPM {
		wg.Go(func() { post(ctx, c, k.url) })
	}
	wg.Wait()

	var served, shed, lost atomic.Int64
	var once sync.Once
	interval := o.Window / paceDrive
	began := time.Now()
	end := began.Add(o.Steady)
	// Room left over from the burst is spent in the first moments; the
	// count starts after a quarter of the phase, when only refill is left.
	from := began.Add(o.Steady / 4)
	for i := 0; ctx.Err() == nil; i++ {
		if !paceTick(began, i, interval, end) {
			break
		}
		wg.Go(func() {
			status, ra, err := post(ctx, c, k.url)
			done := time.Now()
			switch {
			case err == nil && status == http.StatusOK:
				if done.After(from) && done.Before(end) {
					served.Add(1)
				}
			case err == nil && status == http.StatusServiceUnavailable && ra != "":
				shed.Add(1)
			default:
				lost.Add(1)
				once.Do(func() { run.FirstLost = fmt.Sprintf("status %d, Retry-After %q, %v", status, ra, err) })
			}
		})
	}
	wg.Wait()
	var s mockStats
	if err := p.query("stats", &s); err != nil {
		return run, err
	}
	run.Calls, run.Refused = s.Calls, s.Refused
	run.Served, run.Shed, run.Lost = served.Load(), shed.Load(), lost.Load()
	limit := float64(paceKeys*paceRPM) * end.Sub(from).Seconds() / o.Window.Seconds()
	run.Admitted = float64(run.Served) / limit
	return run, ctx.Err()
}

// paceTick waits for the i-th send of a steady drive that began at began,
// and reports false once that moment is past end. A drive that fell behind
// (a busy machine) catches up rather than dropping sends, as a ticker
// would: the offered rate stays what the phase says.
func paceTick(began time.Time, i int, interval time.Duration, end time.Time) bool {
	at := began.Add(time.Duration(i) * interval)
	if !at.Before(end) {
		return false
	}
	time.Sleep(time.Until(at))
	return true
}

// keyState is what the phases read of GET /api/v1/keys.
type keyState struct {
	ExhaustsAt   *time.Time `json:"exhausts_at"`
	PromptTokens int64      `json:"prompt_tokens"`
	Requests     int64      `json:"total_requests"`
}

func keysOf(ctx context.Context, url string) ([]keyState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/keys", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Data []keyState }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// forecastPhase drains one key at 1.5× its refill rate, with pacing off so
// the mock is the one that refuses; the forecast is read a quarter of the
// way to the expected refusal.
func forecastPhase(ctx context.Context, o PaceOptions, res *PaceResult) error {
	keys := paceKeyNames(1)
	p, k, stop, err := pair(ctx, o,
		childSpec{Role: roleProvider, Keys: keys, Words: words, Limits: &mockprovider.Limits{RPM: paceRPM, Window: o.Window}},
		childSpec{PacingOff: true})
	if err != nil {
		return err
	}
	defer stop()
	c := newClient(64)
	defer c.CloseIdleConnections()
	refill := float64(paceRPM) / o.Window.Seconds() // per second
	rate := 1.5 * refill
	dry := time.Duration(float64(paceRPM) / (rate - refill) * float64(time.Second))
	interval := time.Duration(float64(time.Second) / rate)

	began := time.Now()
	readAt := began.Add(max(dry/4, 1500*time.Millisecond)) // the burn rate wants a second of history
	deadline := began.Add(2 * dry)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ctx.Err() == nil; i++ {
		if !paceTick(began, i, interval, deadline) {
			break
		}
		now := time.Now()
		wg.Go(func() { post(ctx, c, k.url) })
		if res.ForecastAt.IsZero() && now.After(readAt) {
			ks, err := keysOf(ctx, k.url)
			if err != nil {
				return err
			}
			if len(ks) == 1 && ks[0].ExhaustsAt != nil {
				res.ForecastAt, res.ExhaustsAt = time.Now(), *ks[0].ExhaustsAt
			}
		}
		if !res.ForecastAt.IsZero() && now.Sub(began) > dry/2 {
			var s mockStats
			if err := p.query("stats", &s); err != nil {
				return err
			}
			if t, ok := s.First[keys[0]]; ok {
				res.RefusedAt = t
				break
			}
		}
	}
	switch {
	case res.ExhaustsAt.IsZero():
		return errors.New("forecast: GET /api/v1/keys gave no exhausts_at for a draining key")
	case res.RefusedAt.IsZero():
		return errors.New("forecast: the mock never refused the draining key")
	}
	res.ForecastError = math.Abs(res.ExhaustsAt.Sub(res.RefusedAt).Seconds()) / res.RefusedAt.Sub(res.ForecastAt).Seconds()
	return ctx.Err()
}

// hedgePhase measures p99 latency over a provider with a latency tail,
// without hedging and then with it.
func hedgePhase(ctx context.Context, o PaceOptions, res *PaceResult) error {
	keys := paceKeyNames(paceKeys)
	tail := &mockprovider.Tail{Share: tailShare, Delay: o.Slow}
	billedEach := 0.0 // prompt tokens billed per request without hedging
	for _, h := range []*keygate.Hedge{nil, {AfterMS: hedgeAfterMS, MaxExtraPercent: hedgeCap}} {
		p, k, stop, err := pair(ctx, o, childSpec{Role: roleProvider, Keys: keys, Words: words, Tail: tail}, childSpec{Hedge: h})
		if err != nil {
			return err
		}
		lat, n, err := closedLoop(ctx, k.url, 8, o.Hedge)
		if err != nil {
			stop()
			return err
		}
		var s mockStats
		if err := p.query("stats", &s); err != nil {
			stop()
			return err
		}
		ks, err := keysOf(ctx, k.url)
		stop()
		if err != nil {
			return err
		}
		var billed int64
		for _, k := range ks {
			billed += k.PromptTokens
		}
		// Every call of the mock reports the same usage: hedged, the bill of
		// n requests is still n of them, whatever the extra calls cost upstream.
		if h == nil {
			res.P99Plain = percentile(lat, 0.99)
			billedEach = float64(billed) / float64(n)
			continue
		}
		res.P99Hedged = percentile(lat, 0.99)
		res.Requests, res.Upstream = n, s.Calls
		res.ExtraPercent = float64(s.Calls-n) * 100 / float64(n)
		res.BilledRatio = float64(billed) / float64(n) / billedEach
	}
	return ctx.Err()
}

// closedLoop keeps conns requests in flight for d and returns every
// latency of a 200 and how many there were.
func closedLoop(ctx context.Context, url string, conns int, d time.Duration) ([]time.Duration, int64, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range conns {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				t := time.Now()
				status, _, err := post(ctx, c, url)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return nil, 0, fmt.Errorf("hedging: %d requests failed", n)
	}
	return lat, int64(len(lat)), ctx.Err()
}

// WriteTable prints the phases against the targets.
func (r *PaceResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "keygate-load: pacing, forecast and hedging; the mock's window is %s (a compressed minute)\n\n", r.Window)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tmetric\tvalue\ttarget\t")
	row := func(phase, metric, value, target string, pass *bool) {
		v := ""
		if pass != nil {
			v = verdict(*pass)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", phase, metric, value, target, v)
	}
	b := func(v bool) *bool { return &v }
	share := func(run PacingRun) float64 { return float64(run.Refused) / math.Max(float64(run.Calls), 1) }
	row("pacing", "upstream 429s, pacing on (% of calls)", fmt.Sprintf("%.2f (%d of %d)", 100*share(r.On), r.On.Refused, r.On.Calls), "≤ 1 %", b(share(r.On) <= max429Share))
	row("pacing", "upstream 429s, pacing off (% of calls)", fmt.Sprintf("%.2f (%d of %d)", 100*share(r.Off), r.Off.Refused, r.Off.Calls), "contrast", nil)
	row("pacing", "admitted ÷ the pool's real limit, pacing on", fmt.Sprintf("%.3f", r.On.Admitted), "≥ 0.95", b(r.On.Admitted >= minAdmitted))
	row("pacing", "admitted ÷ the pool's real limit, pacing off", fmt.Sprintf("%.3f", r.Off.Admitted), "contrast", nil)
	row("pacing", "served / 503 with Retry-After / lost, pacing on", fmt.Sprintf("%d / %d / %d", r.On.Served, r.On.Shed, r.On.Lost), "lost = 0", b(r.On.Lost == 0))
	row("forecast", "exhausts_at error (% of the time left)", fmt.Sprintf("%.1f", 100*r.ForecastError), "≤ 10 %", b(r.ForecastError <= maxForecast))
	ratio := r.P99Hedged.Seconds() / math.Max(r.P99Plain.Seconds(), 1e-9)
	row("hedging", "p99 without / with hedging (ms)", fmt.Sprintf("%.0f / %.0f", ms(r.P99Plain), ms(r.P99Hedged)), "", nil)
	row("hedging", "p99 with ÷ without", fmt.Sprintf("%.2f", ratio), "≤ 0.50", b(ratio <= maxP99Ratio))
	row("hedging", "extra upstream calls (% of requests)", fmt.Sprintf("%.1f (%d calls, %d requests)", r.ExtraPercent, r.Upstream, r.Requests),
		fmt.Sprintf("≤ %.0f (the cap)", hedgeCap), b(r.ExtraPercent <= hedgeCap))
	row("hedging", "prompt tokens billed ÷ one request's each", fmt.Sprintf("%.3f", r.BilledRatio), "= 1", b(math.Abs(r.BilledRatio-1) < 1e-9))
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.On.FirstLost != "" {
		fmt.Fprintf(w, "\npacing on: first lost request: %s\n", r.On.FirstLost)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Passed reports whether every target was met.
func (r *PaceResult) Passed() bool {
	share := float64(r.On.Refused) / math.Max(float64(r.On.Calls), 1)
	ratio := r.P99Hedged.Seconds() / math.Max(r.P99Plain.Seconds(), 1e-9)
	return share <= max429Share && r.On.Admitted >= minAdmitted && r.On.Lost == 0 && r.ForecastError <= maxForecast &&
		ratio <= maxP99Ratio && r.ExtraPercent <= hedgeCap && math.Abs(r.BilledRatio-1) < 1e-9
}
