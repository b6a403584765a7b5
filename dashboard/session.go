package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
)

// Cookie and header names of a dashboard session.
const (
	CookieName = "kg_session"
	CSRFHeader = "X-CSRF-Token"
)

// SessionTTL is how long a sign-in lasts; a login token that expires
// sooner ends the session sooner (it is checked on every call).
const SessionTTL = 12 * time.Hour

// SessionRecheck bounds how long a replica trusts a session it has seen
// without asking the database again: a sign-out on one replica ends the
// session on every other within this long.
const SessionRecheck = time.Second

// session is one signed-in browser. It holds the credential the operator
// signed in with (the admin token or an admin's login token), so every call
// made with the cookie is checked exactly as the same call with that
// credential as a bearer token would be.
type session struct {
	credential string
	who        string // shown in the header: a username or "admin token"
	csrf       string
	expires    time.Time
	checked    time.Time // when the store last confirmed it
}

// Sessions keeps the signed-in browsers. With a store (UseStore) sessions
// live in the database, shared by every replica, and each replica keeps
// the ones it has seen in memory, confirming each with the store at most
// SessionRecheck after it last did; without one they live in this process
// only. Sessions are found by the SHA-256 of the cookie's value, so neither
// the memory nor the database holds a value that replays as a cookie, and
// the CSRF token is derived from the cookie, so every replica knows it.
type Sessions struct {
	clock clockwork.Clock
	store keygate.SessionStore
	mu    sync.Mutex
	m     map[[32]byte]*session
}

// NewSessions returns an empty session store in memory.
func NewSessions(clock clockwork.Clock) *Sessions {
	return &Sessions{clock: clock, m: map[[32]byte]*session{}}
}

// UseStore keeps sessions in store. Call it before serving.
func (s *Sessions) UseStore(store keygate.SessionStore) { s.store = store }

// start opens a session for credential and answers the cookie value and
// the session's CSRF token.
func (s *Sessions) start(ctx context.Context, credential, who string) (cookie string, csrf string, err error) {
	cookie = randomToken()
	now := s.clock.Now()
	key := sha256.Sum256([]byte(cookie))
	v := &session{credential: credential, who: who, csrf: csrfOf(cookie), expires: now.Add(SessionTTL), checked: now}
	if s.store != nil {
		if err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
			return "", "", err
		}
		err := s.store.CreateSession(ctx, keygate.DashboardSession{ID: hex.EncodeToString(key[:]), Credential: credential, Who: who, Expires: v.expires})
		if err != nil {
			return "", "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // few sessions: sweeping on sign-in keeps the map small
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[key] = v
	return cookie, v.csrf, nil
}

// end closes the session of cookie, if any, on every replica.
func (s *Sessions) end(ctx context.Context, cookie string) error {
	key := sha256.Sum256([]byte(cookie))
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	if s.store != nil {
		return s.store.DeleteSession(ctx, hex.EncodeToString(key[:]))
	}
	return nil
}

// lookup answers the live session of r's cookie, or nil.
func (s *Sessions) lookup(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	now := s.clock.Now()
	s.mu.Lock()
	v := s.m[key]
	if v != nil && !now.Before(v.expires) {
		delete(s.m, key)
		v = nil
	}
	if v != nil && (s.store == nil || now.Sub(v.checked) < SessionRecheck) {
		cp := *v
		s.mu.Unlock()
		return &cp
	}
	s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	// Unknown here, or not confirmed for a while: the store decides.
	stored, err := s.store.FindSession(r.Context(), hex.EncodeToString(key[:]))
	if err != nil || !now.Before(stored.Expires) {
		s.mu.Lock()
		delete(s.m, key)
		s.mu.Unlock()
		return nil
	}
	v = &session{credential: stored.Credential, who: stored.Who, csrf: csrfOf(c.Value), expires: stored.Expires, checked: now}
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
	cp := *v
	return &cp
}

// csrfOf is the CSRF token of a session: a hash of its cookie under
// another label than the session's id, so neither gives the other away.
func csrfOf(cookie string) string {
	sum := sha256.Sum256([]byte("keygate dashboard csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Credential is how the admin API honours the cookie. present is false
// when r carries no session cookie at all (the caller then needs a bearer
// token). For a cookie it answers the session's credential, or an error:
// 401 for a session that is unknown, expired or signed out; 403 for a
// change (any method but GET, HEAD, OPTIONS) without the session's CSRF
// token in X-CSRF-Token, or sent from another origin. SameSite alone is
// not taken as proof of intent.
func (s *Sessions) Credential(r *http.Request) (credential string, present bool, err error) {
	if c, err := r.Cookie(CookieName); err != nil || c.Value == "" {
		return "", false, nil
	}
	v := s.lookup(r)
	if v == nil {
		return "", true, keygate.Errorf(keygate.EInvalidAPIKey, "dashboard session expired or signed out; sign in again")
	}
	if !safeMethod(r.Method) {
		if err := checkIntent(r, v.csrf, r.Header.Get(CSRFHeader)); err != nil {
			return "", true, err
		}
	}
	return v.credential, true, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkIntent is the CSRF rule for a change: the right token, and no sign
// that the request comes from another site.
func checkIntent(r *http.Request, want, got string) error {
	if got == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return keygate.Errorf(keygate.EForbidden, "missing or wrong CSRF token (%s); reload the page", CSRFHeader)
	}
	if !sameOrigin(r) {
		return keygate.Errorf(keygate.EForbidden, "cross-origin request refused")
	}
	return nil
}

// sameOrigin reports whether the browser says r comes from this site. A
// request with neither Origin nor Sec-Fetch-Site (an old browser, a
// script) passes: the CSRF token is the proof then.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
