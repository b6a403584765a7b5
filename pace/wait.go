package pace

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultMaxQueueWait is how long a request may wait, in all, for a key
// with room before it is answered 503 (max_queue_wait).
const DefaultMaxQueueWait = 5 * time.Second

// MayWait decides the wait-or-503 choice: a request that started at
// started may wait `wait` from now if that keeps it within maxWait of its
// start and before its caller's deadline, and its caller is still there.
func MayWait(ctx context.Context, started, now time.Time, wait, maxWait time.Duration) bool {
	if ctx.Err() != nil || wait > maxWait {
		return false
	}
	until := now.Add(wait)
	if until.After(started.Add(maxWait)) {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && until.After(dl) {
		return false
	}
	return true
}

// Sleep waits d on clock, and reports false if ctx ended first (the caller went away).
func Sleep(ctx context.Context, clock clockwork.Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
