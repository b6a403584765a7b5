// Package limit holds the gateway's own caps: requests and tokens per
// minute (per gateway token and per model) and spending budgets per token.
// Every check is in memory with a small lock per limiter, never a global
// one; time comes from the caller so tests control it.
package limit

import (
	"sync"
	"time"
)

// window counts in a sliding one-minute window, approximated by the
// current and the previous fixed minute, the previous weighted by how much
// of it still overlaps the window. Exact enough for RPM/TPM, O(1) memory.
type window struct {
	start int64 // the current minute, unix nanoseconds
	cur   int64
	prev  int64
}

// adjust adds delta, never going below zero, to the minute at fell in,
// while the window still holds it (the current minute or the one before).
func (w *window) adjust(at time.Time, delta int64) {
	switch at.UnixNano() - at.UnixNano()%int64(time.Minute) {
	case w.start:
		w.cur = max(w.cur+delta, 0)
	case w.start - int64(time.Minute):
		w.prev = max(w.prev+delta, 0)
	}
}

func (w *window) roll(now int64) {
	m := now - now%int64(time.Minute)
	switch {
	case m == w.start:
	case m-w.start == int64(time.Minute):
		w.prev, w.cur, w.start = w.cur, 0, m
	default:
		w.prev, w.cur, w.start = 0, 0, m
	}
}

func (w *window) count(now int64) int64 {
	w.roll(now)
	overlap := float64(int64(time.Minute)-(now-w.start)) / float64(time.Minute)
	return w.cur + int64(float64(w.prev)*overlap)
}

// wait is how long until count drops enough for n more, at most a minute.
func (w *window) wait(now int64, limit, n int64) time.Duration {
	for d := time.Second; d < time.Minute; d += time.Second {
		if w.countAt(now+int64(d))+n <= limit {
			return d
		}
	}
	return time.Minute
}

func (w *window) countAt(t int64) int64 {
	c := *w
	return c.count(t)
}

// Rate caps requests and tokens per minute. Zero means no cap.
type Rate struct {
	RPM, TPM int
	mu       sync.Mutex
	req, tok window
	shared   rateShare // counts shared with other replicas, if Share was called
}

// NewRate returns a limiter for rpm requests and tpm tokens per minute.
func NewRate(rpm, tpm int) *Rate { return &Rate{RPM: rpm, TPM: tpm} }

// Allow takes one request that is expected to use tokens, or says how long
// to wait. Tokens are reserved now and corrected by Settle.
func (r *Rate) Allow(now time.Time, tokens int) (ok bool, retryAfter time.Duration) {
	if r == nil || (r.RPM <= 0 && r.TPM <= 0) {
		return true, 0
	}
	if s := r.shared.share.Load(); s != nil && s.b.Up() {
		if ok, wait, done := r.allowShared(s, now, tokens); done {
			return ok, wait
		}
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.RPM > 0 && r.req.count(n)+1 > int64(r.RPM) {
		return false, r.req.wait(n, int64(r.RPM), 1)
	}
	if r.TPM > 0 && r.tok.count(n) > 0 && r.tok.count(n)+int64(tokens) > int64(r.TPM) {
		return false, r.tok.wait(n, int64(r.TPM), int64(min(tokens, r.TPM)))
	}
	r.req.cur++
	r.tok.cur += int64(tokens)
	return true, 0
}

// Settle replaces a request's reserved tokens with what it really used,
// as if reserved at now.
func (r *Rate) Settle(now time.Time, reserved, used int) { r.settleAt(now, now, reserved, used) }

// settleAt corrects the minute the reservation was made in (at): a
// reservation of the previous minute is corrected there, not taken from
// the current one; one older than the window no longer counts either way.
func (r *Rate) settleAt(at, now time.Time, reserved, used int) {
	if r == nil || r.TPM <= 0 || reserved == used {
		return
	}
	if s := r.shared.share.Load(); s != nil {
		r.settleShared(s, now, reserved, used)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tok.roll(now.UnixNano())
	r.tok.adjust(at, int64(used-reserved))
}

// release gives back a reservation of one request and tokens made at at,
// for a request another limit refused.
func (r *Rate) release(at time.Time, tokens int) {
	if s := r.shared.share.Load(); s != nil {
		if r.RPM > 0 {
			r.shared.req.settle(s.b, minuteCounter(&r.shared.reqC, s.id, "req", at.UnixNano(), int64(r.RPM)).Bucket, -1)
		}
		if r.TPM > 0 {
			r.settleShared(s, at, tokens, 0)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.req.adjust(at, -1)
	r.tok.adjust(at, -int64(tokens))
}

// Budget periods (SPEC section 6).
const (
	Daily   = "daily"
	Monthly = "monthly"
	Total   = "total"
)

// PeriodStart is the start of the budget period holding now (UTC): the
// day, the month, or the zero time for a total budget.
func PeriodStart(period string, now time.Time) time.Time {
	now = now.UTC()
	switch period {
	case Daily:
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	case Monthly:
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Budget caps spending in USD over a period. A request reserves its
// estimated cost before the call and settles the real cost after, so
// concurrent requests cannot all pass a check that only one fits.
type Budget struct {
	Amount float64
	Period string

	mu       sync.Mutex
	start    time.Time
	spent    float64
	reserved float64
	shared   budgetShare // spent together with other replicas, if Share was called
}

// NewBudget returns a budget of amount USD per period.
func NewBudget(amount float64, period string) *Budget {
	return &Budget{Amount: amount, Period: period}
}

func (b *Budget) roll(now time.Time) {
	if s := PeriodStart(b.Period, now); !s.Equal(b.start) {
		b.start, b.spent = s, 0
	}
}

// Seed sets what was already spent in the period holding now (at start,
// from the store).
func (b *Budget) Seed(now time.Time, spent float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	b.spent = spent
}

// Reserve takes estimate from the budget, or reports false when it does not fit.
func (b *Budget) Reserve(now time.Time, estimate float64) bool {
	if b == nil {
		return true
	}
	if s := b.shared.share.Load(); s != nil && s.b.Up() {
		if ok, done := b.reserveShared(s, now, estimate); done {
			return ok
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if b.spent+b.reserved+estimate > b.Amount {
		return false
	}
	b.reserved += estimate
	return true
}

// Settle releases a reservation and books the real cost.
func (b *Budget) Settle(now time.Time, estimate, cost float64) {
	if b == nil {
		return
	}
	if s := b.shared.share.Load(); s != nil {
		b.settleShared(s, now, estimate, cost)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	b.reserved -= estimate
	if b.reserved < 0 {
		b.reserved = 0
	}
	b.spent += cost
}

// Spent is what the current period has spent at now.
func (b *Budget) Spent(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	return b.spent
}
