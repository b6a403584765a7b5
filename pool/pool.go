package pool

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// Deployment is one models: entry: a base URL, an upstream model name and
// the keys that may call it.
type Deployment struct {
	Model keygate.Model // as configured; Model.APIKeys holds secrets and must never be shown
	// Fetched is the slot of the key from the model's key service, if it
	// has one: it serves while valid, and the api_keys are its backups.
	Fetched  *Slot
	Slots    []*Slot
	selector *selector
	// successes counts the successes of every key here: a key failing at
	// the network level while its peers succeed is the one to blame.
	successes atomic.Int64
}

// Group is every deployment that answers to one model_id.
type Group struct {
	ID          string
	Deployments []*Deployment
	Fallbacks   []string
	next        atomic.Uint64
}

// Attempt is one chosen key for one try of a request. It is a value so a
// pick allocates nothing.
type Attempt struct {
	Deployment *Deployment
	Slot       *Slot
	probeKey   bool // this attempt is the half-open probe of the key-wide state
	probeSlot  bool // … of the key-and-model state
}

// Key is the attempt's key.
func (a *Attempt) Key() *Key { return a.Slot.Key }

// Pick chooses a deployment and a key for the next attempt at now (unix
// nanoseconds), skipping keys in tried and keys that are cooling down or
// disabled. ok is false when nothing is left. Deployments take turns;
// within one, its key_usage_mode decides.
func (g *Group) Pick(tried []*Key, now int64) (a Attempt, ok bool) {
	n := uint64(len(g.Deployments))
	if n == 0 {
		return a, false
	}
	start := uint64(0)
	if n > 1 {
		start = g.next.Add(1) - 1
	}
	for i := uint64(0); i < n; i++ {
		d := g.Deployments[(start+i)%n]
		if d.Fetched != nil && usable(d.Fetched, tried, now, &a) {
			a.Deployment, a.Slot = d, d.Fetched
			return a, true
		}
		if s := d.selector.pick(d.Slots, tried, now, &a); s != nil {
			a.Deployment, a.Slot = d, s
			return a, true
		}
	}
	return a, false
}

// RecoversAt is the soonest time a key of the group admits requests again,
// for Retry-After; zero when one does now, and ok false when every key is
// disabled and none will come back by itself.
func (g *Group) RecoversAt(now int64) (t time.Time, ok bool) {
	soonest := int64(forever)
	for _, d := range g.Deployments {
		for _, s := range d.all() {
			if s.Key.opDisabled.Load() {
				continue
			}
			at := max(s.Key.st.recoversAt(now), s.st.recoversAt(now))
			if at < soonest {
				soonest = at
			}
		}
	}
	switch soonest {
	case forever:
		return time.Time{}, false
	case 0:
		return time.Time{}, true
	}
	return time.Unix(0, soonest), true
}

// Pool is the set of model groups. Reads are lock-free: Load builds a new
// snapshot and swaps it in, so requests in flight keep the one they started with.
type Pool struct {
	hasher keygate.KeyHasher
	policy atomic.Pointer[keygate.KeyPolicy]
	snap   atomic.Pointer[snapshot]
	mu     sync.Mutex // serialises Load; never taken on the request path
	keys   map[string]*Key
	slots  map[slotID]*Slot
	// New keys and slots of a Load come from contiguous arrays in the
	// order of the models' api_keys: round_robin then walks memory in
	// order, which the CPU prefetches, instead of jumping between heap
	// objects (at 100,000 keys a pick was two cache misses).
	keySlab  slab[Key]
	slotSlab slab[Slot]
	hint     int // keys and slots this Load may still create
	hub      hub
	noPacing atomic.Bool
}

// slab hands out zero values from arrays allocated many at a time, each
// twice the last (so a Load adding one key to a big pool allocates little),
// at most what is left to create. An array lives while any of its elements
// is in use.
type slab[T any] struct {
	free []T
	last int
}

// next returns a fresh *T; hint is how many more may be asked for.
func (s *slab[T]) next(hint int) *T {
	if len(s.free) == 0 {
		s.last = max(1, min(max(2*s.last, 16), hint))
		s.free = make([]T, s.last)
	}
	x := &s.free[0]
	s.free = s.free[1:]
	return x
}

type slotID struct{ key, model string }

type snapshot struct {
	groups map[string]*Group
	keys   map[string]*Key
	ids    []string
}

// New returns an empty pool whose key ids are derived with hasher.
func New(hasher keygate.KeyHasher, policy keygate.KeyPolicy) *Pool {
	p := &Pool{hasher: hasher, keys: map[string]*Key{}, slots: map[slotID]*Slot{}}
	p.policy.Store(&policy)
	p.snap.Store(&snapshot{groups: map[string]*Group{}, keys: map[string]*Key{}})
	return p
}

// KeyID returns the id a key string has in this pool.
func (p *Pool) KeyID(secret string) string { return p.hasher.ID(secret) }

// Policy is the key policy in force.
func (p *Pool) Policy() keygate.KeyPolicy { return *p.policy.Load() }

// Load replaces the models the pool serves. A key or a key-and-model slot
// already known keeps its object, and with it its health and counters.
func (p *Pool) Load(models []keygate.Model) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := &snapshot{groups: map[string]*Group{}, keys: map[string]*Key{}}
	p.hint = 0
	for i := range models {
		p.hint += len(models[i].APIKeys) + 1
	}
	defer func() { p.keySlab, p.slotSlab = slab[Key]{}, slab[Slot]{} }()
	for i := range models {
		m := models[i]
		if m.Status == keygate.StatusDisabled {
			continue
		}
		sel, err := newSelector(m.KeyUsageMode)
		if err != nil {
			return fmt.Errorf("model %s: %w", m.ModelID, err)
		}
		d := &Deployment{Model: m, selector: sel}
		if m.KeySource != nil {
			k := p.fetchedKeyFor(m.KeySource)
			next.keys[k.ID] = k
			d.Fetched = p.slotFor(k, m.ModelID)
		}
		for _, spec := range m.APIKeys {
			if spec.Key == "" {
				continue
			}
			k := p.keyFor(spec.Key, spec.Weight)
			k.SetDisabled(spec.Status == keygate.StatusDisabled)
			next.keys[k.ID] = k
			s := p.slotFor(k, m.ModelID)
			configureRooms(s, spec.RPM, spec.TPM, p.clock())
			d.Slots = append(d.Slots, s)
		}
		sel.prepare(d.Slots)
		g := next.groups[m.ModelID]
		if g == nil {
			g = &Group{ID: m.ModelID}
			next.groups[m.ModelID] = g
			next.ids = append(next.ids, m.ModelID)
		}
		for _, fb := range m.Fallbacks {
			g.Fallbacks = appendUnique(g.Fallbacks, fb)
		}
		g.Deployments = append(g.Deployments, d)
	}
	sort.Strings(next.ids)
	p.snap.Store(next)
	p.forget(next)
	return nil
}

// clock is SetClock's clock (events.go), which configured limits start from too.
func (p *Pool) clock() time.Time {
	if f := p.hub.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// forget drops what the new snapshot no longer uses: a deleted key leaves
// memory at once, its secret with it (requests in flight hold their own
// copy), and a key's view stops listing models that dropped it. Called
// with p.mu held.
func (p *Pool) forget(next *snapshot) {
	used := map[*Slot]bool{}
	for _, g := range next.groups {
		for _, d := range g.Deployments {
			for _, s := range d.all() {
				used[s] = true
			}
		}
	}
	for id, s := range p.slots {
		if !used[s] {
			delete(p.slots, id)
		}
	}
	for id, k := range p.keys {
		if next.keys[id] == nil {
			delete(p.keys, id)
			k.setSecret("")
			k.keepSlots(nil)
			continue
		}
		k.keepSlots(used)
	}
}

// keyFor returns the one *Key for a secret. Called with p.mu held.
func (p *Pool) keyFor(secret string, weight int) *Key {
	id := p.hasher.ID(secret)
	k := p.keys[id]
	if k == nil {
		k = p.newKey(id, secret, weight)
		p.keys[id] = k
	}
	k.Weight = weight
	return k
}

// newKey makes a key. Called with p.mu held.
func (p *Pool) newKey(id, secret string, weight int) *Key {
	k := p.keySlab.next(p.hint)
	p.hint--
	k.ID, k.Weight, k.hub = id, weight, &p.hub
	k.idHeader = []string{id}
	k.setSecret(secret)
	return k
}

// fetchedKeyFor returns the one *Key fed by a key source (the same
// Identity is one source: a key service's URL and scene code, a command's
// argv, an OAuth 2.0 client, a service account). Its id comes from the source, since its
// secret changes with every fetch; until the first fetch it is unusable.
// Called with p.mu held.
func (p *Pool) fetchedKeyFor(src *keygate.KeySource) *Key {
	id := p.hasher.ID(src.Identity())
	k := p.keys[id]
	if k == nil {
		k = p.newKey(id, "", 0)
		k.source.Store(src)
		k.Expire()
		p.keys[id] = k
	} else if old := k.source.Load(); !reflect.DeepEqual(old, src) {
		k.source.Store(src) // edited (headers, method, …): the app restarts its source
	}
	return k
}

// slotFor returns the one *Slot for a key under a model. Called with p.mu held.
func (p *Pool) slotFor(k *Key, model string) *Slot {
	id := slotID{k.ID, model}
	s := p.slots[id]
	if s == nil {
		s = p.slotSlab.next(p.hint)
		s.Key, s.Model = k, model
		p.slots[id] = s
	}
	s.unpaced.Store(p.noPacing.Load())
	k.addSlot(s)
	return s
}

// all is every slot of the deployment, the fetched key first.
func (d *Deployment) all() []*Slot {
	if d.Fetched == nil {
		return d.Slots
	}
	return append([]*Slot{d.Fetched}, d.Slots...)
}

// FetchedKeys lists the keys fed by a key service.
func (p *Pool) FetchedKeys() []*Key {
	var out []*Key
	for _, k := range p.Keys() {
		if k.source.Load() != nil {
			out = append(out, k)
		}
	}
	return out
}

// Group returns the group serving modelID, or nil.
func (p *Pool) Group(modelID string) *Group { return p.snap.Load().groups[modelID] }

// ModelIDs lists the model ids served, sorted.
func (p *Pool) ModelIDs() []string { return p.snap.Load().ids }

// Keys lists every key in service, ordered by id.
func (p *Pool) Keys() []*Key {
	s := p.snap.Load()
	out := make([]*Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Key returns the key in service with id, or nil.
func (p *Pool) Key(id string) *Key { return p.snap.Load().keys[id] }

// Usable reports whether at least one model has a key that admits requests
// now. It does not take a probe.
func (p *Pool) Usable(now int64) bool {
	for _, g := range p.snap.Load().groups {
		if at, ok := g.RecoversAt(now); ok && at.IsZero() {
			return true
		}
	}
	return false
}
