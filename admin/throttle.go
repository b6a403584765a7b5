package admin

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
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

// Tarpit: a throttled login's 429 is held before it is sent. A flood
// of bad logins is clients that do not honour Retry-After and ask again at
// once; however cheap each refusal is, thousands a second take cores from
// the relay. Held, each client gets one refusal per hold, and a held
// request is a parked goroutine on a timer, costing no CPU. Logins that
// are not throttled are never held.
const (
	TarpitHold    = 5 * time.Second // how long a refusal is held (at most the lockout left)
	TarpitMaxHeld = 1024            // refusals held at once; past it they go at once, closing the connection
)

// Throttle counts failed logins per username and per source address.
// Its zero value is not usable; see NewThrottle.
type Throttle struct {
	clock clockwork.Clock
	slots chan struct{} // one per password hash allowed at once

	// Hold and MaxHeld set the tarpit (default TarpitHold, TarpitMaxHeld);
	// set them before serving.
	Hold    time.Duration
	MaxHeld int64
	held    atomic.Int64
	release chan struct{} // closed by Release: held refusals go at once
	once    sync.Once

	mu    sync.Mutex
	users map[string]*strikes // by username
	addrs map[string]*strikes // by source address (host only)
}

type strikes struct {
	fails       int
	lockedUntil time.Time
	last        time.Time
	// told is the lockedUntil of the lockout already reported (audited
	// and logged): a flood of refused attempts is reported once per
	// lockout window, not once per attempt.
	told time.Time
}

// NewThrottle returns a throttle on clock that lets half the cores (at
// least one) hash passwords at once.
func NewThrottle(clock clockwork.Clock) *Throttle {
	return &Throttle{clock: clock, slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		Hold: TarpitHold, MaxHeld: TarpitMaxHeld, release: make(chan struct{}),
		users: map[string]*strikes{}, addrs: map[string]*strikes{}}
}

// Held is how many throttled logins' refusals are being held now.
func (t *Throttle) Held() int64 { return t.held.Load() }

// Release sends every held refusal at once and holds no more: call it when
// shutdown begins, so the tarpit does not keep the server from stopping.
func (t *Throttle) Release() { t.once.Do(func() { close(t.release) }) }

// refuse answers a throttled login that must wait wait, once Tarpit has
// held it.
func (t *Throttle) refuse(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	left, closeConn := t.Tarpit(r, wait)
	if closeConn {
		w.Header()["Connection"] = closeHeader
	}
	refuse(w, left)
}

// Tarpit holds a throttled sign-in that must wait wait before it is
// answered: min(wait, Hold), less if the caller leaves or Release is
// called; it returns what is left of wait when the refusal may go (its
// Retry-After). Past MaxHeld refusals held at once it holds nothing and
// says the answer must close the connection, so a client looping past the
// cap pays for a new connection each time.
func (t *Throttle) Tarpit(r *http.Request, wait time.Duration) (left time.Duration, closeConn bool) {
	if t.held.Add(1) > t.MaxHeld {
		t.held.Add(-1)
		return wait, true
	}
	start := t.clock.Now()
	timer := t.clock.NewTimer(min(wait, t.Hold))
	select {
	case <-timer.Chan():
	case <-r.Context().Done():
	case <-t.release:
	}
	timer.Stop()
	t.held.Add(-1)
	return wait - t.clock.Since(start), false
}

var closeHeader = []string{"close"}

// sourceHost is the host of r's remote address, without allocating.
func sourceHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// locked reports how long e is still locked out at now, and whether this
// lockout is reported for the first time (marking it reported). Call with
// t.mu held.
func (e *strikes) locked(now time.Time) (wait time.Duration, first bool) {
	if e == nil || !e.lockedUntil.After(now) {
		return 0, false
	}
	first = !e.told.Equal(e.lockedUntil)
	e.told = e.lockedUntil
	return e.lockedUntil.Sub(now), first
}

// AddrWait is the cheap check made before a login's body is read: how
// long r's source address is locked out, and whether this lockout is
// reported for the first time.
func (t *Throttle) AddrWait(r *http.Request) (time.Duration, bool) {
	host := sourceHost(r)
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addrs[host].locked(now)
}

// wait reports how long the login of username from r must wait (zero when
// it may try now), and whether the lockout is reported for the first time.
func (t *Throttle) wait(username string, r *http.Request) (time.Duration, bool) {
	host := sourceHost(r)
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	du, fu := t.users[username].locked(now)
	da, fa := t.addrs[host].locked(now)
	return max(du, da), fu || fa
}

// failed records a failed login of username from r.
func (t *Throttle) failed(username string, r *http.Request) {
	host := sourceHost(r)
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	strike(t.users, username, userFailures, now)
	strike(t.addrs, host, addrFailures, now)
}

// strike counts a failure of key in m, locking it out from the after-th on.
// Call with t.mu held.
func strike(m map[string]*strikes, key string, after int, now time.Time) {
	if len(m) > 50_000 {
		for k, e := range m {
			if now.Sub(e.last) > forgetAfter {
				delete(m, k)
			}
		}
	}
	e := m[key]
	if e == nil || now.Sub(e.last) > forgetAfter {
		e = &strikes{}
		m[key] = e
	}
	e.fails++
	e.last = now
	if over := e.fails - after; over >= 0 {
		e.lockedUntil = now.Add(min(lockFirst<<min(over, 10), lockMax))
	}
}

// A sign-in by a credential other than a password (the dashboard's admin
// token) has no username: only its source address is counted, in the same
// count as that address's password logins, so guessing either credential
// locks the address out (AddrWait, AddrFailed, AddrSucceeded).

// AddrFailed records a refused sign-in from r's source address.
func (t *Throttle) AddrFailed(r *http.Request) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	strike(t.addrs, sourceHost(r), addrFailures, now)
}

// AddrSucceeded forgets the failures of r's source address.
func (t *Throttle) AddrSucceeded(r *http.Request) {
	host := sourceHost(r)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.addrs, host)
}

// succeeded forgets the failures of username and of r's address.
func (t *Throttle) succeeded(username string, r *http.Request) {
	host := sourceHost(r)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.users, username)
	delete(t.addrs, host)
}

// hash runs check in one of the hashing slots, waiting for one until ctx
// ends. A login whose username or address was locked out while it waited
// is not hashed: it answers wait > 0.
func (t *Throttle) hash(ctx context.Context, username string, r *http.Request, check func() bool) (ok bool, wait time.Duration, first bool, err error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return false, 0, false, keygate.Errorf(keygate.ERateLimit, "too many logins at once; retry")
	}
	defer func() { <-t.slots }()
	if wait, first := t.wait(username, r); wait > 0 {
		return false, wait, first, nil
	}
	return check(), 0, false, nil
}

// throttledBody is the answer to a throttled login, built once: the
// throttled path must cost next to nothing, since a flood is all of it.
var throttledBody = []byte(`{"error":{"message":"too many failed logins; retry after the time in Retry-After","type":"rate_limit_error","code":"` + keygate.ERateLimit + `"}}` + "\n")

var (
	jsonType        = []string{"application/json"}
	throttledLength = []string{strconv.Itoa(len(throttledBody))}
)

// refuse writes the precomputed 429 with Retry-After in whole seconds.
func refuse(w http.ResponseWriter, wait time.Duration) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = throttledLength
	h["Retry-After"] = []string{respond.RetryAfterSeconds(wait)}
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(throttledBody)
}
