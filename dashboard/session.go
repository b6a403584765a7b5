package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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

// session is one signed-in browser. It holds the credential the operator
// signed in with (the admin token or an admin's login token), in memory
// only, so every call made with the cookie is checked exactly as the same
// call with that credential as a bearer token would be.
type session struct {
	credential string
	who        string // shown in the header: a username or "admin token"
	csrf       string
	expires    time.Time
}

// Sessions keeps the signed-in browsers of this process. Sessions live in
// memory: a restart signs everyone out, and each replica has its own.
// The cookie's value is looked up by its SHA-256, so the map holds no
// value a stolen memory dump could replay as a cookie.
type Sessions struct {
	clock clockwork.Clock
	mu    sync.Mutex
	m     map[[32]byte]*session
}

// NewSessions returns an empty session store.
func NewSessions(clock clockwork.Clock) *Sessions {
	return &Sessions{clock: clock, m: map[[32]byte]*session{}}
}

// start opens a session for credential and answers the cookie value and
// the session's CSRF token.
func (s *Sessions) start(credential, who string) (cookie string, csrf string) {
	cookie, csrf = randomToken(), randomToken()
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // few sessions: sweeping on sign-in keeps the map small
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[sha256.Sum256([]byte(cookie))] = &session{credential: credential, who: who, csrf: csrf, expires: now.Add(SessionTTL)}
	return cookie, csrf
}

// end closes the session of cookie, if any.
func (s *Sessions) end(cookie string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(cookie)))
	s.mu.Unlock()
}

// lookup answers the live session of r's cookie, or nil.
func (s *Sessions) lookup(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[key]
	if v == nil {
		return nil
	}
	if !s.clock.Now().Before(v.expires) {
		delete(s.m, key)
		return nil
	}
	cp := *v
	return &cp
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
