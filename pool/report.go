package pool

import (
	"time"

	"github.com/keygate/keygate"
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
	if k.st.heal(now) {
		p.emit(k, nil, ChangeHealed)
	}
	if a.Slot.st.heal(now) {
		p.emit(k, a.Slot, ChangeHealed)
	}
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
	var slot *Slot // nil: the key-wide state
	probe := false
	switch v.Scope {
	case health.ScopeKey:
		st, probe = &k.st, a.probeKey
		if a.probeSlot {
			a.Slot.st.releaseProbe()
		}
	case health.ScopeKeyModel:
		st, probe, slot = &a.Slot.st, a.probeSlot, a.Slot
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
	if kind := st.fail(now, string(v.Class), rule, v.RetryAfter, v.Reason, probe); kind != "" {
		p.emit(k, slot, kind)
	}
}

// failWith charges a key-and-model failure under an explicit rule.
func (p *Pool) failWith(a *Attempt, now time.Time, v health.Verdict, rule keygate.ClassPolicy) {
	k := a.Slot.Key
	k.touch(now)
	if a.probeKey {
		k.st.releaseProbe()
	}
	k.failures.Add(1)
	k.statsDirty.Store(true)
	if kind := a.Slot.st.fail(now, string(v.Class), rule, v.RetryAfter, v.Reason, a.probeSlot); kind != "" {
		p.emit(k, a.Slot, kind)
	}
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

// Checked records the result of a health check of the key in slot s, made
// outside live traffic: a failure (v non-nil) counts like a failed probe and
// takes the next step of backoff; a pass clears the key's failure state,
// including a disable, and heals the checked model.
func (p *Pool) Checked(s *Slot, now time.Time, v *health.Verdict) {
	if v == nil {
		// A model-list call that passes proves the key authenticates, and
		// nothing more (SPEC section 4): it lifts an authentication failure.
		// A quota, permission, rate-limit or server state recovers only on
		// its schedule, so its backoff keeps doubling.
		if c := s.Key.st.view().Class; (c == "" || c == string(health.ClassAuthentication)) && s.Key.st.reset(now) {
			p.emit(s.Key, nil, ChangeHealed)
		}
		return
	}
	a := Attempt{Slot: s, probeKey: true, probeSlot: true}
	p.Failed(&a, now, *v)
}

// Proved records that a real minimal call (one token of a completion)
// with the key in slot s passed: the key serves, so every state of the
// key and of this model heals, quota and rate limit included.
func (p *Pool) Proved(s *Slot, now time.Time) {
	if s.Key.st.reset(now) {
		p.emit(s.Key, nil, ChangeHealed)
	}
	if s.st.heal(now) {
		p.emit(s.Key, s, ChangeHealed)
	}
}

// NeedsRealCall reports whether only a real call can prove the key in s
// healthy: its key-wide or model state is other than an authentication
// failure (a model-list call proves only that the key authenticates).
func (s *Slot) NeedsRealCall() bool {
	k, m := s.Key.st.view().Class, s.st.view().Class
	return (k != "" && k != string(health.ClassAuthentication)) || m != ""
}

// Slots lists the key's slots, one per model it serves.
func (k *Key) Slots() []*Slot {
	k.slotsMu.Lock()
	defer k.slotsMu.Unlock()
	return append([]*Slot(nil), k.slots...)
}

// Deployment returns a deployment in service that uses the key for model,
// to check the key against its provider; nil if none does.
func (p *Pool) Deployment(k *Key, model string) *Deployment {
	g := p.Group(model)
	if g == nil {
		return nil
	}
	for _, d := range g.Deployments {
		for _, s := range d.all() {
			if s.Key == k {
				return d
			}
		}
	}
	return nil
}
