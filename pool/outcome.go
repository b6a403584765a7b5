package pool

import (
	"time"

	"github.com/keygate/keygate/health"
)

// Outcome is how one attempt ended. The relay reports exactly one per
// attempt, with Report; everything the pool learns about live traffic
// comes through it.
type Outcome struct {
	Time time.Time
	// Latency is the time to the answer's headers (or a stream's first
	// event), for the key's average latency.
	Latency time.Duration
	// Failed is false for a success.
	Failed bool
	// Verdict classifies a failure. Its Scope is what is charged: the key,
	// the key for the model, or nothing (ScopeNone: the caller's fault, a
	// hang-up, a replaced fetched key, a network error).
	Verdict health.Verdict
}

// Report records one attempt's outcome: a success heals the key, a charged
// failure takes a step of backoff, anything else gives back the probe the
// attempt held. Network errors are charged to nobody, except that a key
// whose calls fail at the network level NetworkStreak times in a row while
// another key of its deployment succeeds takes a short cooldown: its
// connection, not the provider, is the problem.
func (p *Pool) Report(a *Attempt, o Outcome) {
	if !o.Failed {
		a.Slot.netStreak.Store(0)
		a.Deployment.successes.Add(1)
		p.Succeeded(a, o.Time, o.Latency)
		return
	}
	if o.Verdict.Class == health.ClassNetwork && o.Verdict.Scope == health.ScopeNone && p.networkStreak(a, o.Time) {
		v := o.Verdict
		v.Scope = health.ScopeKeyModel
		p.failWith(a, o.Time, v, p.policy.Load().Network)
		return
	}
	p.Failed(a, o.Time, o.Verdict)
}

// networkStreak counts a network failure of the attempt's slot and
// reports whether it is time to cool the slot down.
func (p *Pool) networkStreak(a *Attempt, now time.Time) bool {
	s := a.Slot
	n := s.netStreak.Add(1)
	if n == 1 {
		s.netSince.Store(a.Deployment.successes.Load())
	}
	limit := int32(p.policy.Load().NetworkStreak)
	return limit > 0 && n >= limit && a.Deployment.successes.Load() > s.netSince.Load()
}
