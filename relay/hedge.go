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
)

// Hedging (SPEC section 4a): a request of a model with `hedge:` that has
// no first byte of an answer after after_ms (0: the key's recent p95 time
// to first byte) is sent a second time, on another key, within the model's
// cap of extra calls. The first answer wins; the other call is cancelled,
// recorded as an attempt, and charged to no key. A stream is hedged only
// before its first byte, so the caller never sees two.

// leg is one of a hedged request's calls.
type leg struct {
	a       pool.Attempt
	hold    held
	resp    *http.Response
	err     error
	started time.Time
	took    time.Duration
	cancel  context.CancelFunc
}

// won reports whether the leg has a good answer started.
func (l *leg) won() bool { return l.err == nil && l.resp.StatusCode < 400 }

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

// hedgeAfter is how long the first call may go without an answer.
func hedgeAfter(h *keygate.Hedge, s *pool.Slot) time.Duration {
	if h.AfterMS > 0 {
		return time.Duration(h.AfterMS) * time.Millisecond
	}
	return s.TTFB().P95()
}

// sendHedged sends the attempt's call, and a second one on another key if
// the model hedges and the first is slow. *a becomes the attempt whose
// answer came first; the other is cancelled and accounted for here.
func (r *Relay) sendHedged(ctx context.Context, req *http.Request, c *Call, a *pool.Attempt, n *int, rec *keygate.UsageRecord) (*http.Response, error) {
	h := a.Deployment.Model.Hedge
	if h == nil {
		return r.send(ctx, req, c, a.Deployment, a.Key(), a.Key().Secret())
	}
	now := r.Clock.Now()
	hc := r.hedgeCap(c.Group.ID, h.MaxExtraPercent)
	hc.Request(now)
	after := hedgeAfter(h, a.Slot)
	if c.NoHedge || after <= 0 || c.tried == nil {
		l, _ := r.startLeg(ctx, req, c, *a, c.hold)
		res := <-l
		r.recordTTFB(&res)
		return res.resp, res.err
	}

	results := make(chan leg, 2)
	first, cancelFirst := r.startLeg(ctx, req, c, *a, c.hold)
	go func() { results <- <-first }()
	timer := r.Clock.NewTimer(after)
	defer timer.Stop()
	select {
	case l := <-results:
		r.recordTTFB(&l)
		return l.resp, l.err
	case <-timer.Chan():
	}
	if !hc.TryExtra(r.Clock.Now()) {
		l := <-results
		r.recordTTFB(&l)
		return l.resp, l.err
	}
	b, ok := c.Group.Pick(*c.tried, r.Clock.Now().UnixNano())
	if !ok {
		l := <-results
		r.recordTTFB(&l)
		return l.resp, l.err
	}
	*c.tried = append(*c.tried, b.Key())
	*n++
	rec.Attempts = *n
	second, cancelSecond := r.startLeg(ctx, req, c, b, r.reserve(&b, c))
	go func() { results <- <-second }()

	x := <-results
	if !x.won() {
		// A failed first answer does not end the race: the other call
		// may still succeed. The failure is the key's, judged here.
		y := <-results
		if y.won() {
			r.loseLeg(c, &x, true)
			x = y
		} else {
			// Both failed: the later one goes on to the loop, as one attempt would.
			r.loseLeg(c, &x, true)
			x = y
		}
	} else {
		// The other call is cancelled at once; its end is accounted for
		// when it comes.
		if x.a.Slot == a.Slot {
			cancelSecond()
		} else {
			cancelFirst()
		}
		go func() {
			y := <-results
			r.loseLeg(c, &y, false)
		}()
	}
	r.recordTTFB(&x)
	*a = x.a
	c.hold = x.hold
	rec.KeyID = x.a.Key().ID
	return x.resp, x.err
}

// startLeg sends one call in the background; its result arrives once the
// answer's first byte has (or the call failed).
func (r *Relay) startLeg(ctx context.Context, req *http.Request, c *Call, a pool.Attempt, h held) (<-chan leg, context.CancelFunc) {
	out := make(chan leg, 1)
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		l := leg{a: a, hold: h, started: r.Clock.Now(), cancel: cancel}
		l.resp, l.err = r.send(lctx, req, c, a.Deployment, a.Key(), a.Key().Secret())
		if l.err == nil && l.resp.StatusCode < 400 {
			// The first byte, not the headers, is the answer: a provider
			// may send headers at once and think for seconds after.
			br := bufio.NewReaderSize(l.resp.Body, 4096)
			if _, err := br.Peek(1); err != nil && err != io.EOF {
				l.resp.Body.Close()
				l.resp, l.err = nil, err
			} else {
				l.resp.Body = bodyWithCancel{Reader: br, Closer: l.resp.Body, cancel: cancel}
			}
		}
		l.took = r.Clock.Since(l.started)
		out <- l
	}()
	return out, cancel
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

// recordTTFB keeps the key's time to first byte for after_ms 0.
func (r *Relay) recordTTFB(l *leg) {
	if l.err == nil {
		l.a.Slot.TTFB().Add(l.took)
	}
}

// loseLeg ends the call that did not win: cancelled, it is an attempt
// charged to no key; failed before the other won, it is the key's failure.
func (r *Relay) loseLeg(c *Call, l *leg, failed bool) {
	defer l.cancel()
	now := r.Clock.Now()
	if l.err != nil {
		v := health.ClassifyErr(l.err, !failed)
		if !failed {
			v = health.Verdict{Class: health.ClassCanceled}
		}
		r.Metrics.Attempt(c.Group.ID, string(v.Class), l.took)
		r.Pool.Failed(&l.a, now, v)
		f := &failure{err: l.err, verdict: v}
		r.settle(&l.hold, f, 0, 0)
		return
	}
	defer l.resp.Body.Close()
	if !failed {
		// It answered, too late: the provider billed it, the caller is not.
		r.observe(&l.a, l.resp.StatusCode, l.resp.Header, nil)
		r.Metrics.Attempt(c.Group.ID, string(health.ClassCanceled), l.took)
		r.Pool.Release(&l.a)
		r.settle(&l.hold, &failure{verdict: health.Verdict{Class: health.ClassCanceled}}, 0, 0)
		return
	}
	secret := l.a.Key().Secret()
	f := readFailure(l.resp, l.a.Key(), secret)
	r.observe(&l.a, f.status, f.header, f.body)
	f.verdict = health.Classify(f.status, f.header, f.body, now)
	r.Metrics.Attempt(c.Group.ID, string(f.verdict.Class), l.took)
	r.Pool.Failed(&l.a, now, f.verdict)
	r.settle(&l.hold, f, 0, 0)
}
