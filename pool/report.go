package pool

import (
	"time"

	"github.com/keygate/keygate/health"
)

// Succeeded records that the attempt got a good answer after latency. A
// recovering key is healed: its counters of failures are reset.
func (p *Pool) Succeeded(a *Attempt, now time.Time, latency time.Duration) {
	k := a.Slot.Key
	k.successes.Add(1)
	k.latencyMS.Add(latency.Milliseconds())
	k.touch(now)
	k.statsDirty.Store(true)
	k.st.heal()
	a.Slot.st.heal()
}

// Failed records a failed attempt. The verdict's scope decides what cools
// down: the key for every model (auth, quota), or only this key for this
// model (rate limit, server errors). Failures that are nobody's fault (the
// caller hung up, a bad request, a network error) change no state; a probe
// they interrupted is given back.
func (p *Pool) Failed(a *Attempt, now time.Time, v health.Verdict) {
	k := a.Slot.Key
	k.touch(now)
	var st *state
	probe := false
	switch v.Scope {
	case health.ScopeKey:
		st, probe = &k.st, a.probeKey
		if a.probeSlot {
			a.Slot.st.releaseProbe()
		}
	case health.ScopeKeyModel:
		st, probe = &a.Slot.st, a.probeSlot
		if a.probeKey {
			k.st.releaseProbe()
		}
	default:
		p.Release(a)
		return
	}
	k.failures.Add(1)
	k.statsDirty.Store(true)
	rule, _ := p.policy.Load().ForClass(string(v.Class))
	st.fail(now, string(v.Class), rule, v.RetryAfter, v.Reason, probe)
}

// Release gives back any probe the attempt held without a verdict.
func (p *Pool) Release(a *Attempt) {
	if a.probeKey {
		a.Slot.Key.st.releaseProbe()
	}
	if a.probeSlot {
		a.Slot.st.releaseProbe()
	}
}
