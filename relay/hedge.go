package relay

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
)

// Hedging (SPEC section 4a): a request of a model with `hedge:` that has
// no first byte of an answer after after_ms (0: the key's recent p95 time
// to first byte) is sent a second time, on another key, within the model's
// cap of extra calls. The first answer wins; the other call is cancelled
// and recorded as an attempt of its own, charged to no key, and the caller
// is billed once. A stream is hedged only before its first byte, so the
// caller never sees two.

// leg is one of a hedged request's calls.
type leg struct {
	a       pool.Attempt
	ad      provider.Adapter
	t       provider.Target
	hold    held
	resp    *http.Response
	err     error
	took    time.Duration
	release func()
}

// won reports whether the leg has a good answer started.
func (l *leg) won() bool { return l.err == nil && l.resp.StatusCode < 300 }

// hedgeCap is the model's cap of extra calls.
func (r *Relay) hedgeCap(model string, percent float64) *pace.HedgeCap {
	if v, ok := r.hedges.Load(model); ok {
		h := v.(*pace.HedgeCap)
		h.SetPercent(percent)
		return h
	}
	v, _ := r.hedges.LoadOrStore(model, pace.NewHedgeCap(percent))
	return v.(*pace.HedgeCap)
}

// HedgeCounts are a model's requests and extra calls over the last minute.
func (r *Relay) HedgeCounts(model string, now time.Time) (requests, extra int64) {
	if v, ok := r.hedges.Load(model); ok {
		return v.(*pace.HedgeCap).Counts(now)
	}
	return 0, 0
}

// hedgeAfter is how long the first call may go without an answer.
func hedgeAfter(h *keygate.Hedge, s *pool.Slot) time.Duration {
	if h.AfterMS > 0 {
		return time.Duration(h.AfterMS) * time.Millisecond
	}
	return s.TTFB().P95()
}

// roundTrip sends the attempt's request out and, when the model hedges and
// the call is slow, a second one on another key. The attempt, its adapter
// and target become those of the call whose answer came first; the other
// is cancelled and accounted for on its own. release ends the winner's
// hold on its key.
func (a *attempt) roundTrip(actx context.Context, out *http.Request, ad *provider.Adapter, t *provider.Target) (resp *http.Response, err error, release func()) {
	r, c := a.relay, a.call
	h := a.a.Deployment.Model.Hedge
	if h == nil {
		release = a.a.Key().Acquire()
		resp, err = r.transport().RoundTrip(out)
		return resp, err, release
	}
	now := r.Clock.Now()
	hc := r.hedgeCap(a.group, h.MaxExtraPercent)
	hc.Request(now)
	after := hedgeAfter(h, a.a.Slot)

	results := make(chan leg, 2)
	first, cancelFirst := a.startLeg(actx, func(ctx context.Context) (*http.Request, error) { return out.WithContext(ctx), nil },
		*a.a, *ad, *t, c.hold, results)
	if c.NoHedge || after <= 0 || c.tried == nil {
		return a.win(<-results, first, ad, t)
	}
	timer := r.Clock.NewTimer(after)
	select {
	case l := <-results:
		timer.Stop()
		return a.win(l, first, ad, t)
	case <-timer.Chan():
	}
	b, ok := c.Group.Pick(*c.tried, r.Clock.Now().UnixNano())
	if !ok || !hc.TryExtra(r.Clock.Now()) {
		if ok {
			r.Pool.Report(&b, pool.Outcome{Time: r.Clock.Now(), Failed: true, Verdict: health.Verdict{Class: health.ClassCanceled}})
		}
		return a.win(<-results, first, ad, t)
	}
	*c.tried = append(*c.tried, b.Key())
	bad := provider.For(b.Deployment.Model.Provider)
	bt := provider.Target{Model: &b.Deployment.Model, Secret: b.Key().Secret(), Bearer: b.Key().Bearer()}
	_, cancelSecond := a.startLeg(actx, func(ctx context.Context) (*http.Request, error) {
		return provider.NewUpstreamRequest(ctx, bad, &c.Request, bt)
	}, b, bad, bt, r.reserve(&b, c), results)
	firstN := a.n
	a.n++ // the second call is an attempt of its own

	x := <-results
	if !x.won() {
		// A failed answer does not end the race: the other call may still
		// succeed. The failure is its key's, judged on its own.
		y := <-results
		a.lose(x, firstN, true)
		return a.win(y, first, ad, t)
	}
	// The other is cancelled at once; its end is accounted for when it comes.
	loserN := firstN
	if x.a.Slot == first {
		cancelSecond()
		loserN = a.n
	} else {
		cancelFirst()
	}
	go func() { a.lose(<-results, loserN, false) }()
	return a.win(x, first, ad, t)
}

// win makes l the attempt's call: its key, adapter and target (the
// secret that answer is masked of) are the attempt's from here on.
func (a *attempt) win(l leg, first *pool.Slot, ad *provider.Adapter, t *provider.Target) (*http.Response, error, func()) {
	if l.a.Slot != first {
		*a.a, *ad, *t = l.a, l.ad, l.t
		a.call.hold = l.hold
	}
	if l.err == nil {
		l.a.Slot.TTFB().Add(l.took)
	}
	return l.resp, l.err, l.release
}

// startLeg sends one call in the background; its result arrives once the
// answer's first byte has (or the call failed). The first byte, not the
// headers, is the answer: a provider may send headers at once and think
// for seconds after.
func (a *attempt) startLeg(actx context.Context, build func(context.Context) (*http.Request, error), pa pool.Attempt,
	ad provider.Adapter, t provider.Target, h held, out chan<- leg) (*pool.Slot, context.CancelFunc) {
	r := a.relay
	lctx, cancel := context.WithCancel(actx)
	go func() {
		started := r.Clock.Now()
		l := leg{a: pa, ad: ad, t: t, hold: h, release: pa.Key().Acquire()}
		req, err := build(lctx)
		if err == nil {
			l.resp, err = r.transport().RoundTrip(req)
		}
		l.err = err
		if err == nil && l.resp.StatusCode < 300 {
			br := bufio.NewReaderSize(l.resp.Body, 4096)
			if _, perr := br.Peek(1); perr != nil && perr != io.EOF {
				l.resp.Body.Close()
				l.resp, l.err = nil, perr
			} else {
				l.resp.Body = bodyWithCancel{Reader: br, Closer: l.resp.Body, cancel: cancel}
			}
		}
		l.took = r.Clock.Since(started)
		out <- l
	}()
	return pa.Slot, cancel
}

// bodyWithCancel is a leg's answer: closing it ends the leg's context too.
type bodyWithCancel struct {
	io.Reader
	io.Closer
	cancel context.CancelFunc
}

func (b bodyWithCancel) Close() error {
	err := b.Closer.Close()
	b.cancel()
	return err
}

// lose ends the call that did not win, as attempt n: cancelled, it is
// charged to no key; failed before the other won, it is its key's failure.
func (a *attempt) lose(l leg, n int, failed bool) {
	defer l.release()
	r := a.relay
	la := &attempt{relay: r, call: a.call, a: &l.a, n: n, group: a.group}
	now := r.Clock.Now()
	v := health.Verdict{Class: health.ClassCanceled, Reason: "hedged: the other call answered first"}
	switch {
	case l.err != nil && failed:
		v = health.ClassifyErr(l.err, false)
		if v.Class == health.ClassNetwork {
			v.Scope = health.ScopeNone
		}
	case l.err == nil:
		defer l.resp.Body.Close()
		la.status = l.resp.StatusCode
		la.meta = l.ad.Meta(l.resp.Header, now)
		var body []byte
		if failed {
			body, _ = io.ReadAll(io.LimitReader(l.resp.Body, 64<<10))
			v = l.ad.Failure(&a.call.Request, l.resp.StatusCode, l.resp.Header, body, now).Verdict
		}
		r.observe(&l.a, &l.hold, l.resp.StatusCode, l.resp.Header, body)
	}
	la.report(pool.Outcome{Time: now, Failed: true, Verdict: v})
	r.settle(&l.hold, false, v)
}
