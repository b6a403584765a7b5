package pool

import (
	"sync/atomic"
	"time"
)

// Kinds of key state change (Change.Kind).
const (
	ChangeCooled           = "cooled"   // a cooldown started (or the next, longer one)
	ChangeDisabled         = "disabled" // failures disabled the key until a reset or a passing check
	ChangeHealed           = "healed"   // a success or a passing check ended the trouble
	ChangeReset            = "reset"    // an operator cleared the failures
	ChangeOperatorDisabled = "operator_disabled"
	ChangeOperatorEnabled  = "operator_enabled"
)

// Change is one transition of a key's health or of the operator's switch.
// The pool tells its watcher about every change it makes itself (not about
// those it is told with Apply), exactly once, so that other replicas, logs
// and metrics can follow.
type Change struct {
	KeyID string `json:"key_id"`
	Model string `json:"model,omitempty"` // "" for the key-wide state
	Kind  string `json:"kind"`
	// State is the state after the change (not for the operator kinds).
	State            StateView `json:"state"`
	OperatorDisabled bool      `json:"operator_disabled,omitempty"`
	At               time.Time `json:"at"` // orders the changes of several replicas
}

// hub hands changes to the pool's watcher. The watcher runs on the
// goroutine that made the change, so it must not block.
type hub struct {
	watch atomic.Pointer[func(Change)]
	clock atomic.Pointer[func() time.Time]
}

func (h *hub) now() time.Time {
	if h != nil {
		if f := h.clock.Load(); f != nil {
			return (*f)()
		}
	}
	return time.Now()
}

func (h *hub) emit(k *Key, s *Slot, kind string) {
	if h == nil {
		return
	}
	fn := h.watch.Load()
	if fn == nil {
		return
	}
	c := Change{KeyID: k.ID, Kind: kind, OperatorDisabled: k.opDisabled.Load()}
	st := &k.st
	if s != nil {
		c.Model, st = s.Model, &s.st
	}
	switch kind {
	case ChangeOperatorDisabled, ChangeOperatorEnabled:
		c.At = time.Unix(0, k.opAt.Load()).UTC()
	default:
		c.State = st.view()
		c.At = time.Unix(0, st.changedAt.Load()).UTC()
	}
	(*fn)(c)
}

func (p *Pool) emit(k *Key, s *Slot, kind string) { p.hub.emit(k, s, kind) }

// Watch makes fn the receiver of every state change this pool makes. fn
// runs on the goroutine that made the change (a request's, at times) and
// must not block: hand the change to a channel.
func (p *Pool) Watch(fn func(Change)) { p.hub.watch.Store(&fn) }

// SetClock sets the clock that stamps changes made without a time of their
// own (resets, operator switches); the default is the wall clock.
func (p *Pool) SetClock(now func() time.Time) { p.hub.clock.Store(&now) }

// Apply puts a change made by another replica in force here, unless this
// pool's own state changed later. It tells no watcher. A state that is
// cooling is applied with its half-open probe held back until holdProbe:
// the replica holding the probe lease probes, the others wait (HoldProbe
// moves the time). It reports whether anything changed.
func (p *Pool) Apply(c Change, holdProbe time.Time) bool {
	p.mu.Lock()
	k := p.keys[c.KeyID]
	var s *Slot
	if k != nil && c.Model != "" {
		s = p.slots[slotID{c.KeyID, c.Model}]
	}
	p.mu.Unlock()
	if k == nil || (c.Model != "" && s == nil) {
		return false
	}
	at := c.At.UnixNano()
	switch c.Kind {
	case ChangeOperatorDisabled, ChangeOperatorEnabled:
		if at <= k.opAt.Load() {
			return false
		}
		k.opAt.Store(at)
		if k.opDisabled.Swap(c.OperatorDisabled) != c.OperatorDisabled {
			k.statsDirty.Store(true)
		}
		return true
	}
	st := &k.st
	if s != nil {
		st = &s.st
	}
	if at <= st.changedAt.Load() {
		return false
	}
	st.restore(c.State, at)
	st.dirty.Store(true)
	if c.State.Cooling && !c.State.Disabled && !holdProbe.IsZero() {
		st.probeUntil.Store(holdProbe.UnixNano())
	}
	return true
}

// HoldProbe keeps this replica from probing the key (for model, or
// key-wide when model is "") until until; the zero time lets it probe as
// soon as the cooldown ends.
func (p *Pool) HoldProbe(keyID, model string, until time.Time) {
	p.mu.Lock()
	k := p.keys[keyID]
	var s *Slot
	if k != nil && model != "" {
		s = p.slots[slotID{keyID, model}]
	}
	p.mu.Unlock()
	if k == nil || (model != "" && s == nil) {
		return
	}
	st := &k.st
	if s != nil {
		st = &s.st
	}
	if !st.cooling.Load() {
		return
	}
	var v int64
	if !until.IsZero() {
		v = until.UnixNano()
	}
	st.probeUntil.Store(v)
}

// ChangesOf lists the present state of every key and slot as changes, for
// a replica that resynchronises after an outage: it offers them all and
// the newest of each wins everywhere.
func (p *Pool) ChangesOf() []Change {
	keys, slots := p.everything()
	var out []Change
	for _, k := range keys {
		if at := k.st.changedAt.Load(); at != 0 {
			out = append(out, Change{KeyID: k.ID, Kind: "state", State: k.st.view(), At: time.Unix(0, at).UTC()})
		}
		if at := k.opAt.Load(); at != 0 {
			kind := ChangeOperatorEnabled
			if k.opDisabled.Load() {
				kind = ChangeOperatorDisabled
			}
			out = append(out, Change{KeyID: k.ID, Kind: kind, OperatorDisabled: k.opDisabled.Load(), At: time.Unix(0, at).UTC()})
		}
	}
	for _, s := range slots {
		if at := s.st.changedAt.Load(); at != 0 {
			out = append(out, Change{KeyID: s.Key.ID, Model: s.Model, Kind: "state", State: s.st.view(), At: time.Unix(0, at).UTC()})
		}
	}
	return out
}

// everything lists every key and slot the pool ever knew, in service or not.
func (p *Pool) everything() ([]*Key, []*Slot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]*Key, 0, len(p.keys))
	for _, k := range p.keys {
		keys = append(keys, k)
	}
	slots := make([]*Slot, 0, len(p.slots))
	for _, s := range p.slots {
		slots = append(slots, s)
	}
	return keys, slots
}
