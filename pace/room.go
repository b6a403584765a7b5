package pace

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Room is the headroom of one key under one model. Reads on the pick path
// (Ready, Score) are atomic loads; reservations, settlements and
// observations take the Room's own small lock, never a shared one.
// A Room must not be copied.
type Room struct {
	readyAt atomic.Int64 // unix ns before which the key has no room for one more request
	score   atomic.Int64 // room left as a share of the tightest limit, in millionths
	known   atomic.Bool  // some limit is known: headers came, or an rpm/tpm is configured

	mu sync.Mutex
	// What the provider's answers said: requests, tokens, input tokens,
	// output tokens; then the key's configured rpm and tpm.
	m        [dims]meter
	burnReq  burn
	burnTok  burn
	observed int64 // when an answer last said something, unix ns
	// Requests and tokens reserved so far, ever: an answer's remaining
	// counts is as of its own request, so what was sent after it is taken
	// off (Ticket.sent marks where that request stood).
	sent, sentTok  float64
	cfgRPM, cfgTPM int
}

const (
	dimReq = iota
	dimTok
	dimIn
	dimOut
	dimCfgReq
	dimCfgTok
	dims
)

// Cost is what a request is expected to take of a key.
type Cost struct {
	Input  int // prompt tokens, estimated
	Output int // completion tokens it may produce (max_tokens, or a default)
}

// Tokens is the whole estimate.
func (c Cost) Tokens() int { return c.Input + c.Output }

// Ticket is one reservation, to be settled or cancelled once.
type Ticket struct {
	Cost Cost
	At   time.Time
	// Wait is how long the request must wait before its key has room for
	// it (zero: it may go now).
	Wait time.Duration

	sent, sentTok float64 // the Room's counts before this reservation
	live          bool
}

// NewRoom returns a Room for a key with the configured rpm/tpm (0 = none).
func NewRoom(rpm, tpm int, now time.Time) *Room {
	r := &Room{}
	r.Configure(rpm, tpm, now)
	return r
}

// Configure sets the key's configured rpm/tpm; a changed limit starts full.
func (r *Room) Configure(rpm, tpm int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := now.UnixNano()
	r.cfgRPM, r.cfgTPM = rpm, tpm
	r.m[dimCfgReq].configure(n, rpm)
	r.m[dimCfgTok].configure(n, tpm)
	if rpm > 0 || tpm > 0 {
		r.known.Store(true)
	}
	r.publish(n)
}

// Absorb takes from the configured limits what other replicas used of
// the key since the last call. It is the seam for shared counters (several
// replicas behind one Redis): their sync loop calls it off the request
// path, so the replicas together stay under the key's rpm/tpm while each
// request still decides in memory.
func (r *Room) Absorb(now time.Time, requests, tokens int64) {
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range [...]int64{dimCfgReq: requests, dimCfgTok: tokens} {
		if m := &r.m[i]; m.on && v > 0 {
			m.advance(n)
			m.level -= float64(v)
		}
	}
	r.burnReq.add(n, float64(requests))
	r.burnTok.add(n, float64(tokens))
	r.publish(n)
}

// Ready reports whether the key has room for one more request at now.
func (r *Room) Ready(now int64) bool { return r == nil || now >= r.readyAt.Load() }

// ReadyAt is when the key has room for one more request (zero: now).
func (r *Room) ReadyAt() int64 { return r.readyAt.Load() }

// Score is the room left under the tightest limit, 0 (none) to 1e6 (all),
// as of the last change; 1e6 for a key nothing is known about.
func (r *Room) Score() int64 {
	if r == nil {
		return 1e6
	}
	return r.score.Load()
}

// Reserve takes one request and c's tokens from the key at now. The ticket
// says how long the request must wait for them; a caller that will not
// wait that long cancels it.
func (r *Room) Reserve(now time.Time, c Cost) Ticket {
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	tok := float64(c.Tokens())
	t := Ticket{Cost: c, At: now, sent: r.sent, sentTok: r.sentTok, live: true}
	r.sent++
	r.sentTok += tok
	for i := range r.m {
		need := r.need(i, c)
		if w := r.m[i].wait(n, need); w > t.Wait {
			t.Wait = w
		}
		r.m[i].level -= need
	}
	r.burnReq.add(n, 1)
	r.burnTok.add(n, tok)
	r.publish(n)
	return t
}

// need is what a request of cost c takes of limit i.
func (r *Room) need(i int, c Cost) float64 {
	switch i {
	case dimReq, dimCfgReq:
		return 1
	case dimIn:
		return float64(c.Input)
	case dimOut:
		return float64(c.Output)
	}
	return float64(c.Tokens())
}

// Cancel gives a reservation back whole: the request never reached the
// provider (it waited too long, or the connection failed before sending).
func (r *Room) Cancel(now time.Time, t Ticket) {
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.m {
		r.m[i].advance(n)
		if r.m[i].on {
			r.m[i].level = math.Min(r.m[i].limit, r.m[i].level+r.need(i, t.Cost))
		}
	}
	r.burnReq.add(n, -1)
	r.burnTok.add(n, -float64(t.Cost.Tokens()))
	r.sent--
	r.sentTok -= float64(t.Cost.Tokens())
	r.publish(n)
}

// Settle replaces a reservation's estimate with what the request used.
func (r *Room) Settle(now time.Time, t Ticket, input, output int) {
	n := now.UnixNano()
	used := Cost{Input: input, Output: output}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.m {
		if i == dimReq || i == dimCfgReq || !r.m[i].on {
			continue
		}
		r.m[i].advance(n)
		r.m[i].level = math.Min(r.m[i].limit, r.m[i].level+r.need(i, t.Cost)-r.need(i, used))
	}
	r.burnTok.add(n, float64(used.Tokens()-t.Cost.Tokens()))
	r.publish(n)
}

// Observe takes the limits an answer reported. t is the reservation of
// the request it answers, if it had one: what this Room reserved after it,
// the provider had not counted when it wrote its remaining counts.
func (r *Room) Observe(now time.Time, l Limits, t *Ticket) {
	if !l.Any() {
		return
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	var sinceReq, sinceTok float64
	if t != nil && t.live {
		sinceReq, sinceTok = max(r.sent-t.sent-1, 0), max(r.sentTok-t.sentTok-float64(t.Cost.Tokens()), 0)
	}
	for i, w := range [...]Window{l.Requests, l.Tokens, l.InputTokens, l.OutputTokens} {
		if !w.Set {
			continue
		}
		switch i {
		case dimReq:
			r.m[i].observe(n, w, sinceReq)
		case dimTok:
			r.m[i].observe(n, w, sinceTok)
		default:
			r.m[i].observe(n, w, 0)
		}
	}
	r.observed = n
	r.known.Store(true)
	r.publish(n)
}

// Known reports whether some limit of the key is known.
func (r *Room) Known() bool { return r != nil && r.known.Load() }

// Refused tells the room the provider refused the key with a rate limit
// until `until`: whatever it counted, it has no room before then.
func (r *Room) Refused(now, until time.Time) {
	if !until.After(now) {
		return
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &r.m[dimReq]
	if !m.on {
		*m = meter{on: true, limit: 1, rate: 1 / float64(until.Sub(now))}
	}
	m.advance(n)
	m.level = math.Min(m.level, 0)
	m.at = n
	r.known.Store(true)
	if m.fixed {
		m.reset = max(m.reset, until.UnixNano())
	} else if m.limit > 0 {
		// Room for one request comes back at until.
		m.rate = math.Min(m.rate, 1/float64(until.Sub(now)))
	}
	r.publish(n)
}

// publish refreshes what the pick path reads. Called with mu held.
func (r *Room) publish(now int64) {
	var wait time.Duration
	score := int64(1e6)
	for i := range r.m {
		m := &r.m[i]
		if !m.on {
			continue
		}
		need := 1.0
		if w := m.wait(now, need); w > wait {
			wait = w
		}
		if m.limit > 0 {
			s := int64(math.Max(m.level, 0) / m.limit * 1e6)
			score = min(score, s)
		}
	}
	if wait > 0 {
		r.readyAt.Store(now + int64(wait))
	} else {
		r.readyAt.Store(0)
	}
	r.score.Store(score)
}

// WaitFor is how long from now until the key has room for a request of
// cost c, without taking anything.
func (r *Room) WaitFor(now time.Time, c Cost) time.Duration {
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	var wait time.Duration
	for i := range r.m {
		if w := r.m[i].wait(n, r.need(i, c)); w > wait {
			wait = w
		}
	}
	return wait
}
