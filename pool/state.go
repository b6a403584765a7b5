package pool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// probeLease bounds how long one half-open probe keeps a recovering key to
// itself. The relay reports every attempt, so the lease only matters if a
// report is lost; it then expires and the next request probes.
const probeLease = time.Minute

// forever marks a state disabled until an operator or a passing check
// resets it.
const forever = math.MaxInt64

// state is one cooldown state machine: healthy → cooling (blocked until a
// time) → half-open (exactly one probe is admitted) → healthy again on
// success, or the next, longer cooldown on failure → disabled after enough
// failures in a row. The key-wide state lives in Key, the key-and-model one
// in Slot. Reads on the request path are atomic loads; transitions, which
// only failures and the first success after them cause, take mu.
// A state must not be copied.
type state struct {
	blockedUntil atomic.Int64 // unix nanoseconds; forever when disabled
	cooling      atomic.Bool  // failed and not yet healed: after blockedUntil, probe once
	probeUntil   atomic.Int64 // a probe holds the state until then
	dirty        atomic.Bool  // changed since the store last saw it
	changedAt    atomic.Int64 // unix nanoseconds of the last transition, to order replicas' changes

	mu           sync.Mutex
	class        string // class of the last failure, "" when healthy
	streak       int    // failures of that class in a row
	retries      int    // probes that failed since the first error
	disabled     bool
	firstErrorAt time.Time
	lastErrorAt  time.Time
	lastError    string
}

// admit reports whether an attempt may use this state at now, and whether
// that attempt is the single half-open probe.
func (s *state) admit(now int64) (ok, probe bool) {
	if now < s.blockedUntil.Load() {
		return false, false
	}
	if !s.cooling.Load() {
		return true, false
	}
	p := s.probeUntil.Load()
	if now < p {
		return false, false
	}
	if s.probeUntil.CompareAndSwap(p, now+int64(probeLease)) {
		return true, true
	}
	return false, false
}

// releaseProbe gives a probe lease back without a verdict (the caller hung up).
func (s *state) releaseProbe() { s.probeUntil.Store(0) }

// heal returns the state to healthy after a success, and reports whether
// that changed anything.
func (s *state) heal(now time.Time) bool {
	if !s.cooling.Load() && s.blockedUntil.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disabled || (!s.cooling.Load() && s.blockedUntil.Load() == 0) {
		return false // only a reset or a passing check re-enables a disabled key
	}
	s.changedAt.Store(now.UnixNano())
	s.class, s.streak, s.retries = "", 0, 0
	s.firstErrorAt = time.Time{}
	s.cooling.Store(false)
	s.blockedUntil.Store(0)
	s.probeUntil.Store(0)
	s.dirty.Store(true)
	return true
}

// fail records a failure of class at now. Only the first failure and a
// failed probe step the backoff: requests that were already in flight when
// the key started cooling fail too, and must not multiply the cooldown or
// disable a key after one burst. It reports the transition it made:
// ChangeCooled, ChangeDisabled, or "" when the backoff did not step.
func (s *state) fail(now time.Time, class string, rule keygate.ClassPolicy, retryAfter time.Duration, reason string, probe bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErrorAt, s.lastError = now, reason
	if s.firstErrorAt.IsZero() {
		s.firstErrorAt = now
	}
	s.dirty.Store(true)
	if s.disabled || (s.cooling.Load() && !probe) {
		return ""
	}
	s.changedAt.Store(now.UnixNano())
	if probe {
		s.retries++
	}
	if class == s.class {
		s.streak++
	} else {
		s.class, s.streak = class, 1
	}
	s.cooling.Store(true)
	s.probeUntil.Store(0)
	if rule.DisableAfter > 0 && s.streak >= rule.DisableAfter {
		s.disabled = true
		s.blockedUntil.Store(forever)
		return ChangeDisabled
	}
	d := rule.Backoff(s.streak)
	if retryAfter > 0 && (class == "rate_limit_exceeded" || retryAfter > d) {
		// The provider said when to come back: a rate limit takes it as
		// is; other classes never come back sooner than their backoff.
		d = retryAfter
	}
	s.blockedUntil.Store(now.Add(d).UnixNano())
	return ChangeCooled
}

// reset clears every failure, including a disable, and reports whether
// there was any.
func (s *state) reset(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.class != "" || s.disabled || s.cooling.Load() || s.blockedUntil.Load() != 0
	if was {
		s.changedAt.Store(now.UnixNano())
	}
	s.class, s.streak, s.retries, s.disabled = "", 0, 0, false
	s.firstErrorAt, s.lastErrorAt, s.lastError = time.Time{}, time.Time{}, ""
	s.cooling.Store(false)
	s.blockedUntil.Store(0)
	s.probeUntil.Store(0)
	s.dirty.Store(true)
	return was
}

// StateView is a copy of one state for display and persistence.
type StateView struct {
	Class        string
	Streak       int
	Retries      int
	Disabled     bool
	Cooling      bool
	BlockedUntil time.Time // zero when not blocked
	FirstErrorAt time.Time
	LastErrorAt  time.Time
	LastError    string
}

func (s *state) view() StateView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := StateView{Class: s.class, Streak: s.streak, Retries: s.retries, Disabled: s.disabled,
		Cooling: s.cooling.Load(), FirstErrorAt: s.firstErrorAt, LastErrorAt: s.lastErrorAt, LastError: s.lastError}
	if b := s.blockedUntil.Load(); b != 0 && b != forever {
		v.BlockedUntil = time.Unix(0, b).UTC()
	}
	return v
}

// restore loads a persisted state (at start, with at 0) or another
// replica's (at the time it changed there).
func (s *state) restore(v StateView, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changedAt.Store(at)
	s.class, s.streak, s.retries, s.disabled = v.Class, v.Streak, v.Retries, v.Disabled
	s.firstErrorAt, s.lastErrorAt, s.lastError = v.FirstErrorAt, v.LastErrorAt, v.LastError
	s.cooling.Store(v.Cooling || v.Disabled)
	s.probeUntil.Store(0)
	switch {
	case v.Disabled:
		s.blockedUntil.Store(forever)
	case !v.BlockedUntil.IsZero():
		s.blockedUntil.Store(v.BlockedUntil.UnixNano())
	default:
		s.blockedUntil.Store(0)
	}
}

// recoversAt is when the state admits a request again: zero if it does now,
// forever-time if it is disabled.
func (s *state) recoversAt(now int64) int64 {
	b := s.blockedUntil.Load()
	if b == forever {
		return forever
	}
	if p := s.probeUntil.Load(); s.cooling.Load() && p > b {
		b = p
	}
	if b <= now {
		return 0
	}
	return b
}
