package pool

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync/atomic"

	"github.com/keygate/keygate"
)

// selector chooses one slot for an attempt according to a key_usage_mode.
// It is a concrete type switched on the mode rather than an interface so
// that nothing on the pick path escapes to the heap.
type selector struct {
	mode  string
	cumul []int // weighted: running sum of weights
	_     [40]byte
	next  atomic.Uint64 // round-robin position, on its own cache line
	_     [56]byte
}

func newSelector(mode string) (*selector, error) {
	switch mode {
	case "":
		mode = keygate.ModeRoundRobin
	case keygate.ModeSingle, keygate.ModeRoundRobin, keygate.ModeLeastUsed, keygate.ModeWeighted:
	default:
		return nil, fmt.Errorf("key_usage_mode %q is not supported", mode)
	}
	return &selector{mode: mode}, nil
}

// prepare precomputes what a mode needs from the slot list.
func (s *selector) prepare(slots []*Slot) {
	if s.mode != keygate.ModeWeighted {
		return
	}
	s.cumul = make([]int, len(slots))
	sum := 0
	for i, sl := range slots {
		w := sl.Key.Weight
		if w <= 0 {
			w = 1
		}
		sum += w
		s.cumul[i] = sum
	}
}

// usable reports whether a slot may serve this attempt: its key not
// already tried by the same request, and admitted by its health.
func usable(s *Slot, tried []*Key, now int64, a *Attempt) bool {
	return !wasTried(s.Key, tried) && s.hasRoom(now) && s.admit(now, a)
}

// pick returns a usable slot, or nil when none is.
func (s *selector) pick(slots []*Slot, tried []*Key, now int64, a *Attempt) *Slot {
	n := len(slots)
	switch {
	case n == 0:
		return nil
	case n == 1:
		if usable(slots[0], tried, now, a) {
			return slots[0]
		}
		return nil
	}
	if len(tried) > 0 {
		// After a failure, a key that has served before is a better bet
		// than one never tried: a fresh pool may hold several bad keys.
		for _, sl := range slots {
			if sl.Key.successes.Load() > 0 && usable(sl, tried, now, a) {
				return sl
			}
		}
	}
	var start int
	switch s.mode {
	case keygate.ModeSingle:
		start = 0 // the first usable key serves; the others stand by
	case keygate.ModeLeastUsed:
		start = s.leastUsed(slots)
	case keygate.ModeWeighted:
		r := rand.IntN(s.cumul[n-1])
		start = sort.SearchInts(s.cumul, r+1)
	default:
		// One atomic counter spreads attempts evenly.
		start = int((s.next.Add(1) - 1) % uint64(n))
	}
	if s.mode != keygate.ModeSingle {
		// With pacing, the key with the most room left goes first.
		if sl := roomiest(slots, start, tried, now); sl != nil && sl.admit(now, a) {
			return sl
		}
	}
	// An unusable slot at start is stepped over, so a pick stays O(1) while
	// most keys are healthy.
	for i := 0; i < n; i++ {
		idx := start + i
		if idx >= n {
			idx -= n
		}
		if sl := slots[idx]; usable(sl, tried, now, a) {
			return sl
		}
	}
	return nil
}

// leastUsed returns the index of a key with the fewest requests in flight:
// a full scan of a small pool (ties go round-robin), and for a large one
// the power of two choices, which stays O(1) and nearly as balanced.
func (s *selector) leastUsed(slots []*Slot) int {
	n := len(slots)
	if n > 16 {
		i, j := rand.IntN(n), rand.IntN(n)
		if slots[j].Key.inflight.Load() < slots[i].Key.inflight.Load() {
			i = j
		}
		return i
	}
	off := int(s.next.Add(1) % uint64(n))
	best, bestLoad := off, slots[off].Key.inflight.Load()
	for i := 1; i < n; i++ {
		idx := (off + i) % n
		if l := slots[idx].Key.inflight.Load(); l < bestLoad {
			best, bestLoad = idx, l
		}
	}
	return best
}
