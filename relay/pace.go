package relay

import (
	"context"
	"net/http"
	"time"

	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
)

// Pacing configures how the relay keeps keys under their limits (SPEC
// section 4a). The zero value paces, with the default max_queue_wait.
type Pacing struct {
	Off bool
	// MaxQueueWait is how long a request may wait, in all, for a key with
	// room (default pace.DefaultMaxQueueWait).
	MaxQueueWait time.Duration
}

func (p Pacing) maxWait() time.Duration { return durationOr(p.MaxQueueWait, pace.DefaultMaxQueueWait) }

// held is the reservation of the attempt in progress.
type held struct {
	room   *pace.Room
	ticket pace.Ticket
	live   bool
}

// reserve takes the attempt's share of its key's room, unless a wait for
// room took it already.
func (r *Relay) reserve(a *pool.Attempt, c *Call) held {
	// Even before anything is known of the key, its room counts what is
	// sent: the first answer's remaining counts must be read against it.
	now := r.Clock.Now()
	room := a.Slot.EnsureRoom(now)
	return held{room: room, ticket: room.Reserve(now, c.Cost), live: true}
}

// reserveOrWait reserves room for the picked attempt. A concurrent request
// may have taken the last of it since the pick: then the request waits for
// it as waitForRoom would, or gives it up for the key whose room comes back
// first, or (ok false) for a 503.
func (r *Relay) reserveOrWait(ctx context.Context, g *pool.Group, tried []*pool.Key, c *Call, a pool.Attempt) (pool.Attempt, held, time.Duration, bool) {
	h := r.reserve(&a, c)
	if !h.live || h.ticket.Wait <= 0 || r.Pacing.Off {
		return a, h, 0, true
	}
	now := r.Clock.Now()
	if pace.MayWait(ctx, c.Start, now, h.ticket.Wait, r.Pacing.maxWait()) {
		if pace.Sleep(ctx, r.Clock, h.ticket.Wait) {
			return a, h, 0, true
		}
		h.room.Cancel(r.Clock.Now(), h.ticket)
		r.Pool.Release(&a)
		return a, held{}, 0, false
	}
	h.room.Cancel(now, h.ticket)
	r.Pool.Release(&a)
	return r.waitForRoom(ctx, g, tried, c)
}

// settle ends a reservation with what the attempt came to: on success the
// tokens it used (settleUsed); on failure nothing back for a call the
// network lost, the prompt for one the provider saw, and for a rate limit
// no room until the provider's retry time.
func (r *Relay) settle(h *held, delivered bool, v health.Verdict) {
	if !h.live || delivered {
		return
	}
	h.live = false
	now := r.Clock.Now()
	switch {
	case v.Class == health.ClassNetwork:
		h.room.Cancel(now, h.ticket)
	case v.Class == health.ClassRateLimit:
		h.room.Settle(now, h.ticket, h.ticket.Cost.Input, 0)
		wait := v.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		h.room.Refused(now, now.Add(wait))
	default:
		h.room.Settle(now, h.ticket, h.ticket.Cost.Input, 0)
	}
}

// settleUsed ends the reservation of a delivered answer with its usage.
func (r *Relay) settleUsed(h *held, prompt, completion int) {
	if h.live {
		h.live = false
		h.room.Settle(r.Clock.Now(), h.ticket, prompt, completion)
	}
}

// observe reads an answer's rate-limit information into the key's room.
func (r *Relay) observe(a *pool.Attempt, h *held, status int, header http.Header, body []byte) {
	now := r.Clock.Now()
	l := pace.Parse(a.Deployment.Model.Provider, status, header, body, now)
	if !l.Any() {
		return
	}
	var t *pace.Ticket
	if h.live && h.room == a.Slot.Room() {
		t = &h.ticket
	}
	a.Slot.EnsureRoom(now).Observe(now, l, t)
}

// waitForRoom is the wait-or-503 choice, when every key whose health
// admits the request is out of room: it books the key whose room comes
// back first and waits for it, if that fits in max_queue_wait from the
// request's start and the caller is still there. Otherwise ok is false and
// retryAfter says when room comes back, for the 503.
func (r *Relay) waitForRoom(ctx context.Context, g *pool.Group, tried []*pool.Key, c *Call) (a pool.Attempt, h held, retryAfter time.Duration, ok bool) {
	if r.Pacing.Off {
		return a, h, 0, false
	}
	now := r.Clock.Now()
	a, wait, ok := g.PickWaiting(tried, now, c.Cost)
	if !ok {
		return a, h, 0, false
	}
	room := a.Slot.Room()
	t := room.Reserve(now, c.Cost)
	wait = max(wait, t.Wait)
	if !pace.MayWait(ctx, c.Start, now, wait, r.Pacing.maxWait()) {
		room.Cancel(now, t)
		r.Pool.Release(&a)
		return pool.Attempt{}, h, wait, false
	}
	if !pace.Sleep(ctx, r.Clock, wait) {
		room.Cancel(r.Clock.Now(), t)
		r.Pool.Release(&a)
		return pool.Attempt{}, h, 0, false
	}
	return a, held{room: room, ticket: t, live: true}, 0, true
}
