package pace

import (
	"math"
	"time"
)

// meter is one limit of one key under one model: how much room it has at
// a moment, and how that room comes back. Its level may go below zero: a
// request booked ahead of time takes its share now and goes when the level
// is back above zero. Its methods are called with the Room's lock held.
type meter struct {
	on    bool
	fixed bool    // comes back all at once at reset; else refills continuously
	limit float64 // the limit (for Azure, the most ever seen remaining)
	level float64 // room at `at`
	at    int64   // unix nanoseconds
	rate  float64 // refill per nanosecond, when continuous
	reset int64   // fixed: the end of the current window; continuous: when full, as last reported
	span  int64   // fixed: length of a window
}

// advance moves the meter to now, refilling what came back meanwhile.
func (m *meter) advance(now int64) {
	if !m.on || now <= m.at {
		return
	}
	if m.fixed {
		if m.reset > 0 && now >= m.reset && m.limit <= 0 {
			*m = meter{} // a new window of a limit never seen: nothing is known
			return
		}
		if m.reset > 0 && now >= m.reset {
			n := int64(1)
			if m.span > 0 {
				n += (now - m.reset) / m.span
			}
			m.level = math.Min(m.limit, m.level+float64(n)*m.limit)
			m.reset += n * max(m.span, 1)
		}
	} else if m.rate > 0 {
		m.level = math.Min(m.limit, m.level+m.rate*float64(now-m.at))
	}
	m.at = now
}

// wait is how long from now until the level reaches need (0 if it has).
// A need above the limit waits for a full meter, not forever.
func (m *meter) wait(now int64, need float64) time.Duration {
	m.advance(now)
	if !m.on || m.level >= need {
		return 0
	}
	if m.limit > 0 {
		need = math.Min(need, m.limit)
	}
	if m.level >= need {
		return 0
	}
	if m.fixed {
		if m.limit <= 0 {
			return time.Duration(max(m.reset-now, 0))
		}
		windows := math.Ceil((need - m.level) / m.limit)
		return time.Duration(max(m.reset-now, 0) + int64(windows-1)*m.span)
	}
	if m.rate <= 0 {
		return time.Minute
	}
	return time.Duration(math.Ceil((need - m.level) / m.rate))
}

// observe takes what an answer reported; since is what was taken after
// the answered request, which the provider's count does not hold yet. Within the same window, the
// meter keeps the lower of its own count and the provider's: its own counts
// requests in flight and booked that the provider has not seen yet, the
// provider's counts other users of the key. A new window trusts the provider.
func (m *meter) observe(now int64, w Window, since float64) {
	m.advance(now)
	rem := float64(w.Remaining)
	limit := float64(w.Limit)
	if limit <= 0 {
		limit = math.Max(m.limit, rem) // Azure: the largest remaining seen stands for the limit
	}
	reset := w.Reset.UnixNano()
	if w.Reset.IsZero() {
		reset = 0
	}
	sameWindow := m.on && m.fixed == w.Fixed && (!w.Fixed || reset <= m.reset+int64(time.Second))
	m.on, m.fixed, m.limit = true, w.Fixed, limit
	if w.Fixed {
		m.span = int64(w.Span)
		if reset > 0 {
			m.reset = reset
		}
	} else {
		if reset > now && limit > rem {
			// A bucket full again at reset refills (limit-remaining) in
			// (reset-now): that is its rate, whatever the window's length.
			m.rate = (limit - rem) / float64(reset-now)
		} else if m.rate == 0 {
			m.rate = limit / float64(time.Minute)
		}
		m.reset = reset
	}
	// What was sent after the answered request is not in its count.
	if sameWindow {
		m.level = math.Min(m.level, rem-since)
	} else {
		m.level = rem - since
	}
	m.at = now
}

// configure makes the meter a key's configured per-minute limit, a bucket
// that refills the limit over a minute. A changed limit starts full.
func (m *meter) configure(now int64, perMinute int) {
	if perMinute <= 0 {
		*m = meter{}
		return
	}
	l := float64(perMinute)
	if m.on && m.limit == l {
		return
	}
	*m = meter{on: true, limit: l, level: l, at: now, rate: l / float64(time.Minute)}
}

// fullAt is when the meter is full again (continuous) or its window resets (fixed).
func (m *meter) fullAt(now int64) int64 {
	if m.fixed {
		return m.reset
	}
	if m.level >= m.limit || m.rate <= 0 {
		return now
	}
	return now + int64((m.limit-m.level)/m.rate)
}

// exhaustsAt is when the meter runs dry at a burn of perNs units per
// nanosecond, or 0 when it does not (it refills as fast as it burns).
func (m *meter) exhaustsAt(now int64, perNs float64) int64 {
	if perNs <= 0 || !m.on {
		return 0
	}
	level := math.Max(m.level, 0)
	if !m.fixed {
		net := perNs - m.rate
		if net <= 0 {
			return 0
		}
		return now + int64(level/net)
	}
	if t := now + int64(level/perNs); m.reset <= 0 || t < m.reset {
		return t
	}
	// It lasts this window; the next one lasts limit/burn, if that is shorter than a window.
	if d := m.limit / perNs; m.span <= 0 || d < float64(m.span) {
		return m.reset + int64(d)
	}
	return 0
}

// burn is a bias-corrected exponentially weighted rate of units taken: a
// steady rate reads true from the first seconds on, and a key that stops
// being used reads near zero within a few time constants.
type burn struct {
	sum   float64
	last  int64
	first int64
}

const burnTau = 30 * time.Second

func (b *burn) decay(now int64) {
	if b.last != 0 && now > b.last {
		b.sum *= math.Exp(-float64(now-b.last) / float64(burnTau))
	}
	if now > b.last {
		b.last = now
	}
}

func (b *burn) add(now int64, n float64) {
	b.decay(now)
	b.sum = math.Max(b.sum+n, 0)
	if b.first == 0 {
		b.first = now
	}
}

// perNs is the rate in units per nanosecond; 0 before a second of history.
func (b *burn) perNs(now int64) float64 {
	b.decay(now)
	el := now - b.first
	if b.first == 0 || el < int64(time.Second) {
		return 0
	}
	corr := 1 - math.Exp(-float64(el)/float64(burnTau))
	return b.sum / (float64(burnTau) * corr)
}
