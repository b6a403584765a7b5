// Package pool holds the provider keys behind each model, chooses one for
// every attempt, and keeps each key's health: cooldowns, backoff, half-open
// probes and statistics. The request path only reads: a Pool is an
// immutable snapshot behind an atomic pointer, selection is a few atomic
// operations, and nothing here takes a global lock or touches the store.
package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pace"
)

// Key is one provider key. The same key string used by several models is
// one *Key (found by its id), so key-wide health — a revoked key, an empty
// balance — is shared between them. A Key must not be copied.
type Key struct {
	// What every pick reads comes first, so it shares one cache line: at
	// 100,000 keys a pick is bound by memory, not by work.
	opDisabled atomic.Bool  // switched off by the operator
	validUntil atomic.Int64 // unix nanoseconds; 0 = no expiry (a static key)
	st         state        // key-wide health

	ID       string // keyed hash of the secret (or of the key source); safe to log and store
	Weight   int
	idHeader []string     // ID as a header value, made once
	hub      *hub         // the pool's watchers of state changes
	opAt     atomic.Int64 // unix nanoseconds of the operator's last switch

	secret      atomic.Pointer[string]
	masked      atomic.Pointer[string]
	source      atomic.Pointer[keygate.KeySource] // set for a key fetched from a key source; replaced when its spec is edited
	refresher   atomic.Pointer[refresherBox]
	inflight    atomic.Int64
	requests    atomic.Int64
	successes   atomic.Int64
	failures    atomic.Int64
	latencyMS   atomic.Int64 // sum over successes
	lastUsed    atomic.Int64 // unix nanoseconds
	promptTok   atomic.Int64
	complTok    atomic.Int64
	costMicros  atomic.Int64 // USD × 1e6
	statsDirty  atomic.Bool
	slotsMu     sync.Mutex
	slots       []*Slot // every model slot using this key
	modelsCache atomic.Pointer[[]string]
}

func (k *Key) setSecret(s string) {
	m := keygate.Mask(s)
	k.secret.Store(&s)
	k.masked.Store(&m)
}

// Secret returns the key in clear, for the Authorization header only.
func (k *Key) Secret() string { return *k.secret.Load() }

// Masked is the key as people may see it: sk-a…wxyz.
func (k *Key) Masked() string { return *k.masked.Load() }

// Source is the key service a fetched key comes from, or nil for a static key.
func (k *Key) Source() *keygate.KeySource { return k.source.Load() }

// Bearer reports whether the key goes upstream as "Authorization: Bearer"
// whatever the provider (an OAuth 2.0 or Google access token).
func (k *Key) Bearer() bool { s := k.source.Load(); return s != nil && s.Bearer() }

// SetLease installs a freshly fetched secret valid until expiresAt. A new
// secret is a new credential: the failures of the one before (its quota,
// its revocation) say nothing about it, so its health starts clean.
func (k *Key) SetLease(secret string, expiresAt time.Time) {
	if p := k.secret.Load(); p == nil || *p != secret {
		k.Reset()
	}
	k.setSecret(secret)
	k.validUntil.Store(expiresAt.UnixNano())
	k.statsDirty.Store(true)
}

// Expire makes a fetched key unusable until the next lease (the provider
// rejected it, or no fetch succeeded).
func (k *Key) Expire() { k.validUntil.Store(1) }

// ValidUntil is when a fetched key expires; zero for a static key.
func (k *Key) ValidUntil() time.Time {
	if v := k.validUntil.Load(); v > 1 {
		return time.Unix(0, v).UTC()
	}
	return time.Time{}
}

// Refresher renews a key fetched from a key service. The relay asks it for
// a new key when the provider rejects the current one, and waits on it when
// no key of a model is valid at all.
type Refresher interface {
	// Rejected fetches a replacement for secret (once, however many ask).
	Rejected(ctx context.Context, secret string) error
	// Wait returns when a valid key is installed, or ctx ends.
	Wait(ctx context.Context) error
	// Describe tells operators where the key comes from.
	Describe() SourceView
}

type refresherBox struct{ r Refresher }

// SetRefresher binds the key to the machinery that renews it.
func (k *Key) SetRefresher(r Refresher) { k.refresher.Store(&refresherBox{r}) }

// Refresher returns the key's refresher, or nil for a static key.
func (k *Key) Refresher() Refresher {
	if b := k.refresher.Load(); b != nil {
		return b.r
	}
	return nil
}

// OperatorDisabled reports whether an operator switched the key off.
func (k *Key) OperatorDisabled() bool { return k.opDisabled.Load() }

// SetDisabled switches the key off or on by an operator's decision.
func (k *Key) SetDisabled(v bool) {
	if k.opDisabled.Swap(v) != v {
		k.statsDirty.Store(true)
		k.opAt.Store(k.hub.now().UnixNano())
		kind := ChangeOperatorEnabled
		if v {
			kind = ChangeOperatorDisabled
		}
		k.hub.emit(k, nil, kind)
	}
}

// Reset clears every failure of the key, for every model, including a
// disable caused by failures (not an operator's).
func (k *Key) Reset() {
	now := k.hub.now()
	if k.st.reset(now) {
		k.hub.emit(k, nil, ChangeReset)
	}
	for _, s := range k.Slots() {
		if s.st.reset(now) {
			k.hub.emit(k, s, ChangeReset)
		}
	}
}

// Requests is how many attempts were started with this key.
func (k *Key) Requests() int64 { return k.requests.Load() }

// AddUsage adds a served request's tokens and cost to the key's totals.
func (k *Key) AddUsage(prompt, completion int, cost float64) {
	k.promptTok.Add(int64(prompt))
	k.complTok.Add(int64(completion))
	k.costMicros.Add(int64(cost * 1e6))
	k.statsDirty.Store(true)
}

// Slot is a key as used by one model: the scope of failures that are about
// the model (a rate limit, a server error), not about the key itself.
// A Slot must not be copied.
type Slot struct {
	Key       *Key
	Model     string
	st        state
	netStreak atomic.Int32                 // network failures in a row
	netSince  atomic.Int64                 // the deployment's success count when that streak began
	room      atomic.Pointer[pace.Room]    // nil while nothing limits the key (pace.go)
	unpaced   atomic.Bool                  // pacing is off: picks ignore room
	ttfb      atomic.Pointer[pace.Latency] // made by the first hedged model's call
}

// admit reports whether an attempt may use the slot at now. A recovering
// key-wide or slot state admits one probe; both are tracked in the Attempt.
func (s *Slot) admit(now int64, a *Attempt) bool {
	k := s.Key
	if k.opDisabled.Load() {
		return false
	}
	if v := k.validUntil.Load(); v != 0 && now >= v {
		return false // a fetched key that expired, or was never fetched
	}
	okKey, probeKey := k.st.admit(now)
	if !okKey {
		return false
	}
	okSlot, probeSlot := s.st.admit(now)
	if !okSlot {
		if probeKey {
			k.st.releaseProbe()
		}
		return false
	}
	a.probeKey, a.probeSlot = probeKey, probeSlot
	return true
}

// keepSlots drops the slots of models that no longer use the key.
func (k *Key) keepSlots(used map[*Slot]bool) {
	k.slotsMu.Lock()
	defer k.slotsMu.Unlock()
	kept := k.slots[:0]
	for _, s := range k.slots {
		if used[s] {
			kept = append(kept, s)
		}
	}
	clear(k.slots[len(kept):])
	k.slots = kept
	models := make([]string, 0, len(kept))
	for _, x := range kept {
		models = appendUnique(models, x.Model)
	}
	k.modelsCache.Store(&models)
}

func (k *Key) addSlot(s *Slot) {
	k.slotsMu.Lock()
	defer k.slotsMu.Unlock()
	for _, old := range k.slots {
		if old == s {
			return
		}
	}
	k.slots = append(k.slots, s)
	models := make([]string, 0, len(k.slots))
	for _, x := range k.slots {
		models = appendUnique(models, x.Model)
	}
	k.modelsCache.Store(&models)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func (k *Key) touch(now time.Time) { k.lastUsed.Store(now.UnixNano()) }

// Acquire marks the start of an attempt with k; call the returned func when it ends.
func (k *Key) Acquire() (release func()) {
	k.requests.Add(1)
	k.inflight.Add(1)
	k.statsDirty.Store(true)
	return func() { k.inflight.Add(-1) }
}

// IDHeader is the key's ID as a header's value slice, made once for every
// answer the key serves. It is shared: set it, never change it.
func (k *Key) IDHeader() []string {
	if k.idHeader == nil {
		return []string{k.ID} // a Key made outside a Pool
	}
	return k.idHeader
}
