package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
)

// Caller is who is calling the relay.
type Caller struct {
	Name   string // the token's name ("anonymous" in open mode, "admin" for the admin token)
	User   string
	models []string
}

// AllowsModel reports whether the caller may use modelID.
func (c *Caller) AllowsModel(modelID string) bool {
	t := keygate.TokenSpec{Models: c.models}
	return t.AllowsModel(modelID)
}

// Auth checks gateway tokens and the admin token. Tokens are looked up by
// their SHA-256, so no comparison ever runs over the secret itself.
type Auth struct {
	tokens map[[32]byte]*keygate.TokenSpec
	admin  [32]byte
	hasAdm bool
	now    func() time.Time
	logins LoginChecker
}

// LoginChecker tells whether a login token (a JWT from POST
// /api/v1/auth/login) is an admin's; see admin.Logins.
type LoginChecker interface {
	Admin(ctx context.Context, token string) error
}

// UseLogins lets admins' login tokens open operator routes. Call it before
// serving.
func (a *Auth) UseLogins(l LoginChecker) { a.logins = l }

// NewAuth builds the authenticator from declared tokens and the admin token.
// now tells the time for token expiry.
func NewAuth(tokens []keygate.TokenSpec, adminToken string, now func() time.Time) *Auth {
	a := &Auth{tokens: map[[32]byte]*keygate.TokenSpec{}, now: now}
	for i := range tokens {
		t := tokens[i]
		a.tokens[sha256.Sum256([]byte(t.Token))] = &t
	}
	if adminToken != "" {
		a.admin, a.hasAdm = sha256.Sum256([]byte(adminToken)), true
	}
	return a
}

// Open reports whether no credential is configured at all, in which case
// every caller is accepted (allowed only on a loopback address).
func (a *Auth) Open() bool { return len(a.tokens) == 0 && !a.hasAdm }

// Client authenticates a caller of the client API.
func (a *Auth) Client(r *http.Request) (*Caller, error) {
	if a.Open() {
		return &Caller{Name: "anonymous"}, nil
	}
	secret, ok := bearer(r)
	if !ok {
		return nil, keygate.Errorf(keygate.EInvalidAPIKey, "missing bearer token in the Authorization header")
	}
	sum := sha256.Sum256([]byte(secret))
	if t := a.tokens[sum]; t != nil {
		if t.ExpiresAt != nil && !a.now().Before(*t.ExpiresAt) {
			return nil, keygate.Errorf(keygate.EInvalidAPIKey, "token %s expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return &Caller{Name: t.Name, User: t.User, models: t.Models}, nil
	}
	if a.hasAdm && subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
		return &Caller{Name: "admin", User: "admin"}, nil
	}
	return nil, keygate.Errorf(keygate.EInvalidAPIKey, "invalid or unknown token")
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// Admin checks the admin credential of an operator route: the admin token,
// or an admin's login token. In open mode (no credential configured,
// loopback only) every caller is an admin.
func (a *Auth) Admin(r *http.Request) error {
	if a.Open() {
		return nil
	}
	secret, ok := bearer(r)
	if !ok {
		return keygate.Errorf(keygate.EInvalidAPIKey, "missing bearer token in the Authorization header")
	}
	sum := sha256.Sum256([]byte(secret))
	if a.hasAdm && subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
		return nil
	}
	if a.tokens[sum] != nil {
		return keygate.Errorf(keygate.EForbidden, "a gateway token is not an admin credential")
	}
	if a.logins != nil {
		return a.logins.Admin(r.Context(), secret)
	}
	return keygate.Errorf(keygate.EInvalidAPIKey, "invalid admin credential")
}

// requireAdmin wraps an operator route.
func requireAdmin(d Deps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.Auth.Admin(r); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
