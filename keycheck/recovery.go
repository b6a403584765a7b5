package keycheck

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/keygate/keygate/pool"
)

// Rule is the recovery schedule of one failure class: the first check an
// Interval after the failure, each further one twice as long after the
// last, at most MaxAttempts checks.
type Rule struct {
	Interval    time.Duration
	MaxAttempts int
}

// DefaultSchedule is the schedule of reference/4-smart-key-status.md.
// Authentication failures are left out: a revoked key does not come back,
// and checking it only spends requests (Recovery.CheckAuth turns it on).
func DefaultSchedule() map[string]Rule {
	return map[string]Rule{
		"rate_limit_exceeded":  {5 * time.Minute, 10},
		"service_unavailable":  {10 * time.Minute, 8},
		"internal_error":       {15 * time.Minute, 3},
		"insufficient_quota":   {time.Hour, 3},
		"permission_denied":    {time.Hour, 3},
		"unknown_error":        {30 * time.Minute, 2},
		"authentication_error": {6 * time.Hour, 3},
	}
}

// maxGap caps the time between two checks of a key.
const maxGap = 24 * time.Hour

// Recovery re-checks cooling and disabled keys on the schedule of their
// class, so a key whose quota returns comes back by itself without live
// traffic being its probe. A key is never checked more often than its
// schedule, and each key's checks are offset by a hash of its id so a
// thousand keys that failed together are not checked together.
type Recovery struct {
	Checker   *Checker
	Schedule  map[string]Rule
	CheckAuth bool          // also re-check keys disabled for authentication
	Tick      time.Duration // how often to look for due checks (default 10 s)
	// Claim, if set, must grant a key's check before it runs: with several
	// replicas, one at a time checks a given key (see package cluster).
	Claim func(ctx context.Context, keyID string) bool

	mu    sync.Mutex
	plans map[string]*plan
}

type plan struct {
	class    string
	since    time.Time // the failure the plan is for
	attempts int
	next     time.Time
}

// Run looks for due checks every Tick until ctx ends.
func (r *Recovery) Run(ctx context.Context) {
	tick := r.Tick
	if tick == 0 {
		tick = 10 * time.Second
	}
	t := r.Checker.Clock.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			r.RunOnce(ctx)
		}
	}
}

// RunOnce checks the keys that are due now and reports how many it checked.
func (r *Recovery) RunOnce(ctx context.Context) int {
	now := r.Checker.Clock.Now()
	r.mu.Lock()
	if r.plans == nil {
		r.plans = map[string]*plan{}
	}
	var due []*pool.Key
	var models []string
	seen := map[string]bool{}
	for _, k := range r.Checker.Pool.Keys() {
		seen[k.ID] = true
		v := k.View(now)
		rule, ok := r.Schedule[v.ErrorClass]
		// A key with an error class has not healed since it failed, whether
		// its cooldown is still running or it waits for a probe.
		if v.OperatorDisabled || v.ErrorClass == "" || !ok ||
			(v.ErrorClass == "authentication_error" && !r.CheckAuth) || v.FirstErrorAt == nil || len(v.Models) == 0 {
			delete(r.plans, k.ID)
			continue
		}
		p := r.plans[k.ID]
		if p == nil || p.class != v.ErrorClass || !p.since.Equal(*v.FirstErrorAt) {
			p = &plan{class: v.ErrorClass, since: *v.FirstErrorAt, next: v.FirstErrorAt.Add(rule.Interval + jitter(k.ID, rule.Interval))}
			r.plans[k.ID] = p
		}
		if p.attempts >= rule.MaxAttempts || now.Before(p.next) {
			continue
		}
		p.attempts++
		// The next check keeps to the schedule, not to when this one ran.
		gap := min(rule.Interval<<p.attempts, maxGap)
		if p.next = p.next.Add(gap); p.next.Before(now) {
			p.next = now.Add(gap) // after a long pause, no burst of overdue checks
		}
		due = append(due, k)
		models = append(models, v.Models[0])
	}
	for id := range r.plans {
		if !seen[id] {
			delete(r.plans, id)
		}
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, k := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if r.Claim != nil && !r.Claim(ctx, k.ID) {
				return // another replica checks it
			}
			r.Checker.Check(ctx, k, models[i])
		}()
	}
	wg.Wait()
	return len(due)
}

// jitter spreads keys over a tenth of the interval, the same for a key
// every time.
func jitter(id string, interval time.Duration) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(id))
	spread := interval / 10
	if spread <= 0 {
		return 0
	}
	return time.Duration(float64(h.Sum32()) / (1 << 32) * float64(spread))
}
