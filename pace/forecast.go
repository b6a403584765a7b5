package pace

import (
	"math"
	"time"
)

// Forecast is what a key has left under one model and when it runs out at
// its current burn rate. Nil fields are unknown (no headers, no configured
// limit) or, for ExhaustsAt, not expected: the key refills as fast as it
// is used.
type Forecast struct {
	RemainingRequests *int64     `json:"remaining_requests"`
	RemainingTokens   *int64     `json:"remaining_tokens"`
	ResetsAt          *time.Time `json:"resets_at"`
	ExhaustsAt        *time.Time `json:"exhausts_at"`
	RequestsPerMinute float64    `json:"requests_per_minute"` // burn rate
	TokensPerMinute   float64    `json:"tokens_per_minute"`
}

// Forecast reads the room at now.
func (r *Room) Forecast(now time.Time) Forecast {
	var f Forecast
	if r == nil {
		return f
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	reqRate, tokRate := r.burnReq.perNs(n), r.burnTok.perNs(n)
	f.RequestsPerMinute = reqRate * float64(time.Minute)
	f.TokensPerMinute = tokRate * float64(time.Minute)
	tightest := math.Inf(1)
	var resets, exhausts int64
	for i := range r.m {
		m := &r.m[i]
		if !m.on {
			continue
		}
		m.advance(n)
		left := int64(math.Max(math.Floor(m.level), 0))
		rate := tokRate
		if i == dimReq || i == dimCfgReq {
			rate = reqRate
			f.RemainingRequests = minPtr(f.RemainingRequests, left)
		} else {
			if i == dimIn || i == dimOut {
				rate = tokRate / 2 // a rough split of the whole burn
			}
			f.RemainingTokens = minPtr(f.RemainingTokens, left)
		}
		if m.limit > 0 {
			if share := m.level / m.limit; share < tightest {
				tightest, resets = share, m.fullAt(n)
			}
		}
		if t := m.exhaustsAt(n, rate); t != 0 && (exhausts == 0 || t < exhausts) {
			exhausts = t
		}
	}
	if resets != 0 {
		t := time.Unix(0, max(resets, n)).UTC()
		f.ResetsAt = &t
	}
	if exhausts != 0 {
		t := time.Unix(0, exhausts).UTC()
		f.ExhaustsAt = &t
	}
	return f
}

func minPtr(p *int64, v int64) *int64 {
	if p == nil || v < *p {
		return &v
	}
	return p
}

// RunningDryWithin is how soon a key must be forecast to run out to count
// as running dry: `keygate status` lists it, the metrics count it.
const RunningDryWithin = 10 * time.Minute

// RunningDry reports whether the forecast warns: the key runs out within
// `within` at its current burn rate.
func (f *Forecast) RunningDry(now time.Time, within time.Duration) bool {
	return f.ExhaustsAt != nil && f.ExhaustsAt.Sub(now) <= within
}
