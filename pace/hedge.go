package pace

import (
	"slices"
	"sync"
	"time"
)

// HedgeCap bounds hedged calls: extra calls may be at most a percentage of
// a model's requests over a sliding minute (counted in 5 s slices), so a
// slow provider is not answered with twice its load. Safe for concurrent use.
type HedgeCap struct {
	mu      sync.Mutex
	percent float64
	slices  [hedgeSlices]hedgeSlice
}

const (
	hedgeSlices = 12
	sliceLen    = time.Minute / hedgeSlices
)

type hedgeSlice struct {
	start           int64
	requests, extra int64
}

// NewHedgeCap allows extra calls up to percent of requests.
func NewHedgeCap(percent float64) *HedgeCap { return &HedgeCap{percent: percent} }

// SetPercent changes the cap (a model edited through the API).
func (h *HedgeCap) SetPercent(p float64) {
	h.mu.Lock()
	h.percent = p
	h.mu.Unlock()
}

func (h *HedgeCap) slice(now int64) *hedgeSlice {
	start := now - now%int64(sliceLen)
	s := &h.slices[(start/int64(sliceLen))%hedgeSlices]
	if s.start != start {
		*s = hedgeSlice{start: start}
	}
	return s
}

func (h *HedgeCap) totals(now int64) (requests, extra int64) {
	for i := range h.slices {
		if s := &h.slices[i]; now-s.start < int64(time.Minute) {
			requests += s.requests
			extra += s.extra
		}
	}
	return requests, extra
}

// Request counts one request of the model.
func (h *HedgeCap) Request(now time.Time) {
	h.mu.Lock()
	h.slice(now.UnixNano()).requests++
	h.mu.Unlock()
}

// TryExtra takes one extra call if the cap allows it at now.
func (h *HedgeCap) TryExtra(now time.Time) bool {
	n := now.UnixNano()
	h.mu.Lock()
	defer h.mu.Unlock()
	req, extra := h.totals(n)
	if float64(extra+1) > h.percent/100*float64(req) {
		return false
	}
	h.slice(n).extra++
	return true
}

// Counts are the model's requests and extra calls over the last minute.
func (h *HedgeCap) Counts(now time.Time) (requests, extra int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.totals(now.UnixNano())
}

// Latency keeps a key's recent times to first byte and their 95th
// percentile, for hedging with after_ms 0. Safe for concurrent use.
type Latency struct {
	mu   sync.Mutex
	ring [latencySamples]time.Duration
	n    int // samples taken, ever
	p95  time.Duration
}

const latencySamples = 64

// minSamples is how many samples the tracker wants before it names a p95.
const minSamples = 20

// Add records one time to first byte.
func (l *Latency) Add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.n%latencySamples] = d
	l.n++
	// The percentile is worked out every 8 samples, not on every read.
	if l.n >= minSamples && (l.n%8 == 0 || l.p95 == 0) {
		k := min(l.n, latencySamples)
		s := slices.Clone(l.ring[:k])
		slices.Sort(s)
		l.p95 = s[(k*95+99)/100-1]
	}
}

// P95 is the 95th percentile of recent samples, 0 until there are enough.
func (l *Latency) P95() time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p95
}
