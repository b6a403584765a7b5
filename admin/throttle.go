package admin

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
)

// Login throttle (SPEC section 7): after repeated failures a username, and
// separately a source address, is locked out for a while that doubles with
// every further failure. A locked-out login answers 429 with Retry-After
// before any password is hashed, so a flood of bad logins costs almost
// nothing; and at most hashSlots passwords are hashed at once, so the
// logins that do get through cannot take every core from the relay.
const (
	userFailures = 5  // failures of one username before it is locked
	addrFailures = 10 // failures from one address before it is locked
	lockFirst    = 30 * time.Second
	lockMax      = 15 * time.Minute
	forgetAfter  = time.Hour // a quiet entry is dropped after this
)

// Throttle counts failed logins per username and per source address.
// Its zero value is not usable; see NewThrottle.
type Throttle struct {
	clock clockwork.Clock
	slots chan struct{} // one per password hash allowed at once

	mu      sync.Mutex
	entries map[string]*strikes
}

type strikes struct {
	fails       int
	lockedUntil time.Time
	last        time.Time
}

// NewThrottle returns a throttle on clock that lets half the cores (at
// least one) hash passwords at once.
func NewThrottle(clock clockwork.Clock) *Throttle {
	return &Throttle{clock: clock, slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), entries: map[string]*strikes{}}
}

func throttleKeys(username string, r *http.Request) (user, addr string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "u\x00" + username, "a\x00" + host
}

// wait reports how long the login of username from r must wait; zero when
// it may try now.
func (t *Throttle) wait(username string, r *http.Request) time.Duration {
	user, addr := throttleKeys(username, r)
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	for _, k := range []string{user, addr} {
		if e := t.entries[k]; e != nil && e.lockedUntil.After(now) {
			d = max(d, e.lockedUntil.Sub(now))
		}
	}
	return d
}

// failed records a failed login of username from r.
func (t *Throttle) failed(username string, r *http.Request) {
	user, addr := throttleKeys(username, r)
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) > 100_000 {
		for k, e := range t.entries {
			if now.Sub(e.last) > forgetAfter {
				delete(t.entries, k)
			}
		}
	}
	for _, s := range []struct {
		key   string
		after int
	}{{user, userFailures}, {addr, addrFailures}} {
		e := t.entries[s.key]
		if e == nil || now.Sub(e.last) > forgetAfter {
			e = &strikes{}
			t.entries[s.key] = e
		}
		e.fails++
		e.last = now
		if over := e.fails - s.after; over >= 0 {
			e.lockedUntil = now.Add(min(lockFirst<<min(over, 10), lockMax))
		}
	}
}

// succeeded forgets the failures of username and of r's address.
func (t *Throttle) succeeded(username string, r *http.Request) {
	user, addr := throttleKeys(username, r)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, user)
	delete(t.entries, addr)
}

// hash runs check in one of the hashing slots, waiting for one until ctx
// ends. A login whose username or address was locked out while it waited
// is not hashed: it answers wait > 0.
func (t *Throttle) hash(ctx context.Context, username string, r *http.Request, check func() bool) (ok bool, wait time.Duration, err error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return false, 0, keygate.Errorf(keygate.ERateLimit, "too many logins at once; retry")
	}
	defer func() { <-t.slots }()
	if wait := t.wait(username, r); wait > 0 {
		return false, wait, nil
	}
	return check(), 0, nil
}
