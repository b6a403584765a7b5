package pool

import (
	"time"

	"github.com/keygate/keygate/pace"
)

// Pacing (SPEC section 4a): each slot (a key under a model) may have a
// pace.Room, made when an answer first reports the key's rate limits or
// when the key has a configured rpm/tpm. A pick skips slots without room
// and prefers the one with the most; a slot nothing is known about costs
// the pick one nil check.

// Room returns the slot's headroom, or nil while nothing limits it.
func (s *Slot) Room() *pace.Room { return s.room.Load() }

// EnsureRoom returns the slot's headroom, making it on first use.
func (s *Slot) EnsureRoom(now time.Time) *pace.Room {
	if r := s.room.Load(); r != nil {
		return r
	}
	s.room.CompareAndSwap(nil, pace.NewRoom(0, 0, now))
	return s.room.Load()
}

// SetPacing turns pacing on (the default) or off. Off, picks ignore
// headroom; rooms are still kept, for the forecast.
func (p *Pool) SetPacing(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noPacing.Store(!on)
	for _, s := range p.slots {
		s.unpaced.Store(!on)
	}
}

// Pacing reports whether pacing is on.
func (p *Pool) Pacing() bool { return !p.noPacing.Load() }

// configureRooms applies the keys' configured rpm/tpm. Called by Load with p.mu held.
func configureRooms(s *Slot, rpm, tpm int, now time.Time) {
	if rpm <= 0 && tpm <= 0 {
		if r := s.room.Load(); r != nil {
			r.Configure(0, 0, now)
		}
		return
	}
	s.EnsureRoom(now).Configure(rpm, tpm, now)
}

// hasRoom reports whether a slot's headroom admits one more request at now.
func (s *Slot) hasRoom(now int64) bool {
	if s.unpaced.Load() {
		return true
	}
	return s.room.Load().Ready(now)
}

// healthy reports, without taking a probe, whether the slot's health
// admits a request at now: the check of a scan that then admits one slot.
func (s *Slot) healthy(now int64) bool {
	k := s.Key
	if k.opDisabled.Load() {
		return false
	}
	if v := k.validUntil.Load(); v != 0 && now >= v {
		return false
	}
	return now >= k.st.blockedUntil.Load() && !k.st.cooling.Load() &&
		now >= s.st.blockedUntil.Load() && !s.st.cooling.Load()
}

// roomScan is how many slots a pick compares by room.
const roomScan = 16

// roomiest returns, of up to roomScan slots from start, the healthy one
// with room that has the most, or nil when the slot at start has no room
// (nothing is known about the deployment's rooms, or pacing is off) or none qualifies.
func roomiest(slots []*Slot, start int, tried []*Key, now int64) *Slot {
	first := slots[start]
	if first.unpaced.Load() || !first.room.Load().Known() {
		return nil
	}
	var best *Slot
	bestScore := int64(-1)
	n := len(slots)
	for i := 0; i < n && i < roomScan; i++ {
		idx := start + i
		if idx >= n {
			idx -= n
		}
		s := slots[idx]
		if wasTried(s.Key, tried) || !s.healthy(now) || !s.hasRoom(now) {
			continue
		}
		r := s.room.Load()
		if !r.Known() {
			continue // unknown room is not more room: round robin reaches it
		}
		if sc := r.Score(); sc > bestScore {
			best, bestScore = s, sc
		}
	}
	return best
}

func wasTried(k *Key, tried []*Key) bool {
	for _, t := range tried {
		if t == k {
			return true
		}
	}
	return false
}

// PickWaiting chooses, when no key has room now, the key whose room comes
// back soonest for a request of cost c, among those whose health admits
// it, and returns it with that wait. ok is false when no key's health
// admits one (the pool has nothing to wait for).
func (g *Group) PickWaiting(tried []*Key, now time.Time, c pace.Cost) (a Attempt, wait time.Duration, ok bool) {
	n := now.UnixNano()
	var best *Slot
	var bestD *Deployment
	for _, d := range g.Deployments {
		for _, s := range d.all() {
			if wasTried(s.Key, tried) || !s.healthy(n) {
				continue
			}
			r := s.room.Load()
			if !r.Known() || s.unpaced.Load() {
				continue // without a known limit it would have been picked
			}
			if w := r.WaitFor(now, c); best == nil || w < wait {
				best, bestD, wait = s, d, w
			}
		}
	}
	if best == nil || !best.admit(n, &a) {
		return Attempt{}, 0, false
	}
	a.Deployment, a.Slot = bestD, best
	return a, wait, true
}

// Forecast is the key's forecast: for each model, what is left and when it runs out.
func (k *Key) Forecast(now time.Time) pace.Forecast {
	var out pace.Forecast
	for _, s := range k.Slots() {
		r := s.room.Load()
		if r == nil {
			continue
		}
		f := r.Forecast(now)
		out = mergeForecast(out, f)
	}
	return out
}

// mergeForecast keeps the tighter of two models' forecasts of one key.
func mergeForecast(a, b pace.Forecast) pace.Forecast {
	lower := func(x, y *int64) *int64 {
		if x == nil || (y != nil && *y < *x) {
			return y
		}
		return x
	}
	sooner := func(x, y *time.Time) *time.Time {
		if x == nil || (y != nil && y.Before(*x)) {
			return y
		}
		return x
	}
	later := func(x, y *time.Time) *time.Time {
		if x == nil || (y != nil && y.After(*x)) {
			return y
		}
		return x
	}
	a.RemainingRequests = lower(a.RemainingRequests, b.RemainingRequests)
	a.RemainingTokens = lower(a.RemainingTokens, b.RemainingTokens)
	a.ResetsAt = later(a.ResetsAt, b.ResetsAt)
	a.ExhaustsAt = sooner(a.ExhaustsAt, b.ExhaustsAt)
	a.RequestsPerMinute += b.RequestsPerMinute
	a.TokensPerMinute += b.TokensPerMinute
	return a
}

// TTFB is the slot's recent times to first byte, for hedging after the p95.
func (s *Slot) TTFB() *pace.Latency {
	if l := s.ttfb.Load(); l != nil {
		return l
	}
	s.ttfb.CompareAndSwap(nil, new(pace.Latency))
	return s.ttfb.Load()
}
