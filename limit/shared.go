package limit

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Backend keeps limiters' counts for several replicas at once (see package
// cluster, on Redis). A shared limiter does not ask it for every request:
// it takes a lease of units ahead of use — a fair share of what is left —
// and spends it in memory, asking again in the background when half of it
// is gone. Only near exhaustion, when the shares shrink to one unit, does a
// request wait for the backend.
//
// The bound this gives: the backend grants units atomically and never more
// than the limit holds, and every admission spends one granted unit, so N
// replicas together admit at most the limit in a window (a budget overruns
// only by what requests cost beyond their reserved estimate). Units granted
// and not used are held by at most one replica each when near exhaustion
// (shares of one), and are given back when idle, so a caller under its
// limit is refused at most one request per replica early.
type Backend interface {
	// Take first books debt (units used beyond earlier grants) to c, then
	// grants at least need units or none: with need 0 it only books. It
	// returns what it granted and what is left after that.
	Take(ctx context.Context, c Counter, need, debt int64) (granted, left int64, err error)
	// Give returns units granted and not used.
	Give(ctx context.Context, bucket string, units int64) error
	// Up reports whether the backend is reachable; when it is not,
	// limiters count on their own (local limits).
	Up() bool
	// Track has the backend call s.Sweep now and then in the background,
	// to give back leases that went idle. A later s with the same id
	// replaces an earlier one.
	Track(id string, s Sweeper)
}

// Counter is one shared count: a bucket (a minute, a budget period), the
// previous bucket counted with a weight (the sliding window), the cap.
type Counter struct {
	Bucket string
	Prev   string // "" for none
	Weight float64
	Max    int64
	Seed   int64 // the count a bucket starts from when the backend has none (a budget's spending so far)
	TTL    time.Duration
}

// Sweeper gives back what it holds and no longer needs.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time)
}

// syncWait bounds how long a request waits for the backend near
// exhaustion; past it the limiter decides alone.
const syncWait = 500 * time.Millisecond

// idleLease is how long a lease may sit unused before it is given back.
const idleLease = 2 * time.Second

// lease is this replica's share of one shared counter.
type lease struct {
	mu        sync.Mutex
	bucket    string
	units     int64 // granted and not yet used
	debt      int64 // used beyond what was granted; booked at the next take
	grant     int64 // size of the last grant
	need      int64 // size of the last take
	left      int64 // what the backend said was left after it
	last      int64 // unix nanoseconds of the last use
	refilling bool
	landed    chan struct{} // closed when the top-up in flight lands
}

// take spends need units from the lease, asking the backend for more when
// it holds too few. ok false with a nil error is a refusal; an error means
// the backend failed and the caller should decide alone.
func (l *lease) take(b Backend, c Counter, now time.Time, need int64) (ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(b, c.Bucket)
	l.last, l.need = now.UnixNano(), need
	for l.units < need && l.refilling {
		// A top-up is on its way: wait for it rather than ask twice, so
		// units do not land here after the demand for them has gone.
		ch := l.landed
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
		l.roll(b, c.Bucket)
	}
	if l.units >= need {
		l.units -= need
		// Far from exhaustion (shares worth several requests), top up in
		// the background; near it, every request asks for itself, so no
		// replica sits on units another one is refused.
		if l.units < l.grant/2 && l.grant >= 4*need && l.left > 0 && !l.refilling {
			l.refilling, l.landed = true, make(chan struct{})
			go l.refill(b, c, need)
		}
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncWait)
	defer cancel()
	g, left, err := b.Take(ctx, c, need-l.units, l.debt)
	if err != nil {
		return false, err
	}
	l.debt, l.left = 0, left
	if g == 0 {
		return false, nil
	}
	l.units += g - need
	l.grant = g
	return true, nil
}

// refill tops the lease up in the background.
func (l *lease) refill(b Backend, c Counter, need int64) {
	ctx, cancel := context.WithTimeout(context.Background(), syncWait)
	defer cancel()
	l.mu.Lock()
	debt := l.debt
	l.debt = 0
	l.mu.Unlock()
	g, left, err := b.Take(ctx, c, need, debt)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refilling = false
	close(l.landed)
	if err != nil {
		l.debt += debt
		return
	}
	if l.bucket != c.Bucket {
		if g > 0 {
			go b.Give(context.Background(), c.Bucket, g)
		}
		return
	}
	l.units += g
	l.grant, l.left = g, left
}

// roll starts a new bucket, giving back what the old one still held.
// Called with l.mu held.
func (l *lease) roll(b Backend, bucket string) {
	if l.bucket == bucket {
		return
	}
	if l.units > 0 && l.bucket != "" {
		old, n := l.bucket, l.units
		go b.Give(context.Background(), old, n)
	}
	l.bucket, l.units, l.grant, l.left, l.debt = bucket, 0, 0, 0, 0
}

// settle corrects a take by delta units (negative: fewer were used than
// taken, and go back to the lease). Near exhaustion (grants of single
// requests) what comes back goes straight on to the backend, where any
// replica can use it, instead of waiting here for this replica's next request.
func (l *lease) settle(b Backend, bucket string, delta int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bucket != bucket || delta == 0 {
		return
	}
	l.units -= delta
	if l.units < 0 {
		l.debt += -l.units
		l.units = 0
	}
	if l.units > 0 && l.grant < 4*l.need && !l.refilling {
		n := l.units
		l.units = 0
		go b.Give(context.Background(), bucket, n)
	}
}

// sweep gives back an idle lease and books any debt.
func (l *lease) sweep(ctx context.Context, b Backend, now time.Time) {
	l.mu.Lock()
	bucket, units, debt := l.bucket, int64(0), l.debt
	if l.units > 0 && now.UnixNano()-l.last > int64(idleLease) {
		units, l.units, l.grant = l.units, 0, 0
	}
	l.debt = 0
	l.mu.Unlock()
	if units > 0 {
		if err := b.Give(ctx, bucket, units); err != nil {
			return
		}
	}
	if debt > 0 {
		if _, _, err := b.Take(ctx, Counter{Bucket: bucket, Max: math.MaxInt64}, 0, debt); err != nil {
			l.mu.Lock()
			l.debt += debt
			l.mu.Unlock()
		}
	}
}

// counterCache keeps the Counter of the current bucket, so the request
// path builds its names once a bucket, not once a request.
type counterCache struct{ p atomic.Pointer[cachedCounter] }

type cachedCounter struct {
	key int64
	c   Counter
}

func (cc *counterCache) get(key int64, mk func() Counter) Counter {
	if x := cc.p.Load(); x != nil && x.key == key {
		return x.c
	}
	c := mk()
	cc.p.Store(&cachedCounter{key, c})
	return c
}

// sharing is where a limiter's counts are shared, under which id.
type sharing struct {
	b  Backend
	id string
}

// rateShare is a Rate's shared half.
type rateShare struct {
	share      atomic.Pointer[sharing]
	req, tok   lease
	reqC, tokC counterCache
}

// Share makes the limiter count together with every replica that shares
// id through b. Without it, or while b is down, it counts alone.
func (r *Rate) Share(b Backend, id string) {
	if r == nil || b == nil {
		return
	}
	r.shared.share.Store(&sharing{b, id})
	b.Track("rate:"+id, r)
}

// minuteCounter is the shared counter of kind for the minute holding now:
// the minute's bucket and the previous one, weighted by how much of it the
// sliding window still covers.
func minuteCounter(cc *counterCache, id, kind string, now int64, max int64) Counter {
	m := now - now%int64(time.Minute)
	c := cc.get(m, func() Counter {
		return Counter{Bucket: id + ":" + kind + ":" + strconv.FormatInt(m/int64(time.Second), 10),
			Prev: id + ":" + kind + ":" + strconv.FormatInt((m-int64(time.Minute))/int64(time.Second), 10),
			Max:  max, TTL: 3 * time.Minute}
	})
	c.Weight = float64(int64(time.Minute)-(now-m)) / float64(time.Minute)
	return c
}

// allowShared is Allow through the backend. done false means the backend
// failed and the caller decides alone.
func (r *Rate) allowShared(s *sharing, now time.Time, tokens int) (ok bool, retryAfter time.Duration, done bool) {
	n := now.UnixNano()
	wait := time.Duration(int64(time.Minute) - n%int64(time.Minute))
	var rc, tc Counter
	if r.RPM > 0 {
		rc = minuteCounter(&r.shared.reqC, s.id, "req", n, int64(r.RPM))
		ok, err := r.shared.req.take(s.b, rc, now, 1)
		if err != nil {
			return false, 0, false
		}
		if !ok {
			return false, max(wait, time.Second), true
		}
	}
	if r.TPM > 0 {
		tc = minuteCounter(&r.shared.tokC, s.id, "tok", n, int64(r.TPM))
		ok, err := r.shared.tok.take(s.b, tc, now, int64(min(tokens, r.TPM)))
		if err != nil || !ok {
			if r.RPM > 0 {
				r.shared.req.settle(s.b, rc.Bucket, -1) // the request was not admitted
			}
			if err != nil {
				return false, 0, false
			}
			return false, max(wait, time.Second), true
		}
	}
	// Count here too, so that a fallback to local limits has the history.
	r.mu.Lock()
	r.req.roll(n)
	r.tok.roll(n)
	r.req.cur++
	r.tok.cur += int64(tokens)
	r.mu.Unlock()
	return true, 0, true
}

// settleShared corrects the shared token count; reserved is what Allow took.
func (r *Rate) settleShared(s *sharing, now time.Time, reserved, used int) {
	n := now.UnixNano()
	taken := min(reserved, r.TPM)
	r.shared.tok.settle(s.b, minuteCounter(&r.shared.tokC, s.id, "tok", n, int64(r.TPM)).Bucket, int64(used-taken))
}

// Sweep gives back idle leases (called by the backend).
func (r *Rate) Sweep(ctx context.Context, now time.Time) {
	s := r.shared.share.Load()
	if s == nil {
		return
	}
	r.shared.req.sweep(ctx, s.b, now)
	r.shared.tok.sweep(ctx, s.b, now)
}

// budgetShare is a Budget's shared half, counted in micro-USD.
type budgetShare struct {
	share atomic.Pointer[sharing]
	lease lease
	cc    counterCache
}

// Share makes the budget spent together by every replica that shares id
// through b. Without it, or while b is down, it is spent alone.
func (b *Budget) Share(be Backend, id string) {
	if b == nil || be == nil {
		return
	}
	b.shared.share.Store(&sharing{be, id})
	be.Track("budget:"+id, b)
}

func micros(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

func (b *Budget) counter(id string, now time.Time) Counter {
	start := PeriodStart(b.Period, now)
	return b.shared.cc.get(start.Unix(), func() Counter {
		c := Counter{Bucket: id + ":" + strconv.FormatInt(start.Unix(), 10), Max: micros(b.Amount)}
		switch b.Period {
		case Daily:
			c.TTL = 26 * time.Hour
		case Monthly:
			c.TTL = 32 * 24 * time.Hour
		}
		return c
	})
}

// reserveShared is Reserve through the backend; done false means decide alone.
func (b *Budget) reserveShared(s *sharing, now time.Time, estimate float64) (ok, done bool) {
	c := b.counter(s.id, now)
	b.mu.Lock()
	b.roll(now)
	c.Seed = micros(b.spent)
	b.mu.Unlock()
	ok, err := b.shared.lease.take(s.b, c, now, micros(estimate))
	if err != nil {
		return false, false
	}
	if ok {
		b.mu.Lock()
		b.reserved += estimate
		b.mu.Unlock()
	}
	return ok, true
}

// settleShared books the real cost against the shared budget.
func (b *Budget) settleShared(s *sharing, now time.Time, estimate, cost float64) {
	b.shared.lease.settle(s.b, b.counter(s.id, now).Bucket, micros(cost)-micros(estimate))
}

// Sweep gives back an idle lease and books debts (called by the backend).
func (b *Budget) Sweep(ctx context.Context, now time.Time) {
	if s := b.shared.share.Load(); s != nil {
		b.shared.lease.sweep(ctx, s.b, now)
	}
}
