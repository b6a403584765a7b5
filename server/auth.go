package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/secret"
)

// Caller is who is calling the relay, with the caps of its token.
type Caller struct {
	Name   string // the token's name ("anonymous" in open mode, "admin" for the admin token)
	User   string
	models []string
	rate   *limit.Rate   // nil: no RPM/TPM cap
	budget *limit.Budget // nil: no budget
	limit  string        // "token NAME", the name its refusals give
}

// limits are every limit a request of the caller passes: its token's, and
// the model's (given), written into buf (a caller's array, so that the
// request allocates no slice).
func (c *Caller) limits(buf *[2]limit.Limit, model limit.Limit) []limit.Limit {
	name := c.limit
	if name == "" {
		name = "token " + c.Name
	}
	buf[0], buf[1] = limit.Limit{Name: name, Rate: c.rate, Budget: c.budget}, model
	return buf[:]
}

// AllowsModel reports whether the caller may use modelID.
func (c *Caller) AllowsModel(modelID string) bool {
	t := keygate.TokenSpec{Models: c.models}
	return t.AllowsModel(modelID)
}

// token is a gateway token as the request path sees it. Its limiter and
// budget live as long as the token, across reloads of the token list.
type token struct {
	spec   keygate.TokenSpec
	rate   *limit.Rate
	budget *limit.Budget
	caller *Caller
}

// Auth checks gateway tokens and the admin token. Tokens are looked up by
// their SHA-256 in an in-memory snapshot, so the request path never reaches
// the store and no comparison runs over a secret.
type Auth struct {
	tokens atomic.Pointer[map[[32]byte]*token]
	mu     sync.Mutex // serialises SetTokens
	admin  [32]byte
	hasAdm bool
	now    func() time.Time
	logins LoginChecker
	signer *secret.Signer                       // verifies login tokens on the client API
	users  atomic.Pointer[map[int64]*loginUser] // the users that exist, by id
	// open is decided once, at start (DecideOpen), and only ever cleared:
	// revoking the last token at runtime locks the door, never opens it.
	open   atomic.Bool
	shared limit.Backend // tokens' limits and budgets shared with other replicas; nil: alone
	// sessions are the dashboard's signed-in browsers (nil: no dashboard).
	sessions SessionCredentials
}

// SessionCredentials turns a dashboard session cookie into the credential
// it stands for; see dashboard.Sessions.
type SessionCredentials interface {
	Credential(r *http.Request) (credential string, present bool, err error)
}

// UseSessions lets dashboard session cookies open operator routes. Call it
// before serving.
func (a *Auth) UseSessions(s SessionCredentials) { a.sessions = s }

// LoginChecker tells whether a login token (a JWT from POST
// /api/v1/auth/login) is an admin's; see admin.Logins.
type LoginChecker interface {
	Admin(ctx context.Context, token string) error
}

// UseLogins lets admins' login tokens open operator routes. Call it before
// serving.
func (a *Auth) UseLogins(l LoginChecker) { a.logins = l }

// UseClientLogins lets users call the client API with their login token
// (SPEC section 2). Tokens are checked in memory: the signature, the expiry,
// and that the user still exists (see SetUsers).
func (a *Auth) UseClientLogins(s *secret.Signer) { a.signer = s }

// renewLimits keeps a limiter and a budget whose caps did not change (and
// with them their windows and spending), and makes new ones for those that did.
func renewLimits(rate *limit.Rate, budget *limit.Budget, rpm, tpm int, b *keygate.Budget) (*limit.Rate, *limit.Budget) {
	if rate == nil || rate.RPM != rpm || rate.TPM != tpm {
		rate = limit.NewRate(rpm, tpm)
	}
	switch {
	case b == nil:
		budget = nil
	case budget == nil || budget.Amount != b.Amount || budget.Period != b.Period:
		budget = limit.NewBudget(b.Amount, b.Period)
	}
	return rate, budget
}

// loginUser is a user as the client API sees their login token: their
// name and limits. The limiters live as long as the user, across reloads.
type loginUser struct {
	name   string
	models []string
	rate   *limit.Rate
	budget *limit.Budget
}

// SetUsers replaces the users whose login tokens are honoured, with their
// limits (SPEC section 3).
func (a *Auth) SetUsers(users []keygate.User) {
	old := map[int64]*loginUser{}
	if p := a.users.Load(); p != nil {
		old = *p
	}
	m := make(map[int64]*loginUser, len(users))
	for _, u := range users {
		lu := &loginUser{name: u.Username, models: u.Models}
		if prev := old[u.ID]; prev != nil && prev.name == u.Username {
			lu.rate, lu.budget = prev.rate, prev.budget
		}
		lu.rate, lu.budget = renewLimits(lu.rate, lu.budget, u.RPM, u.TPM, u.Budget)
		m[u.ID] = lu
	}
	a.users.Store(&m)
	if len(m) > 0 {
		a.open.Store(false)
	}
}

// loginCaller checks a login token on the client API.
func (a *Auth) loginCaller(token string) (*Caller, error) {
	c, err := a.signer.Verify(token)
	if errors.Is(err, secret.ErrExpired) {
		return nil, keygate.Errorf(keygate.EInvalidAPIKey, "login token expired; log in again")
	}
	if err != nil {
		return nil, keygate.Errorf(keygate.EInvalidAPIKey, "invalid or unknown token")
	}
	var u *loginUser
	if users := a.users.Load(); users != nil {
		u = (*users)[c.UserID]
	}
	if u == nil || u.name != c.Username {
		return nil, keygate.Errorf(keygate.EInvalidAPIKey, "the user of this login token no longer exists")
	}
	return &Caller{Name: loginTokenName(c.Username), User: c.Username, models: u.models, rate: u.rate, budget: u.budget}, nil
}

// NewAuth builds the authenticator from the admin token; now tells the time
// for token expiry.
func NewAuth(adminToken string, now func() time.Time) *Auth {
	a := &Auth{now: now}
	a.tokens.Store(&map[[32]byte]*token{})
	if adminToken != "" {
		a.admin, a.hasAdm = sha256.Sum256([]byte(adminToken)), true
	}
	return a
}

// HashToken is the hex SHA-256 under which a token is stored.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SetTokens replaces the tokens in force. Each needs Hash (or Token, from
// which the hash is taken). A token that stays keeps its rate window and
// its budget's spending.
func (a *Auth) SetTokens(specs []keygate.TokenSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := *a.tokens.Load()
	next := make(map[[32]byte]*token, len(specs))
	for _, s := range specs {
		if s.Hash == "" {
			s.Hash = HashToken(s.Token)
		}
		s.Token = ""
		var sum [32]byte
		if b, err := hex.DecodeString(s.Hash); err != nil || len(b) != 32 {
			continue
		} else {
			copy(sum[:], b)
		}
		t := &token{spec: s}
		if prev := old[sum]; prev != nil {
			t.rate, t.budget = prev.rate, prev.budget
		}
		t.rate, t.budget = renewLimits(t.rate, t.budget, s.RPM, s.TPM, s.Budget)
		a.share(t)
		// One Caller per token, shared by its requests, which only read it.
		t.caller = &Caller{Name: s.Name, User: s.User, models: s.Models, rate: t.rate, budget: t.budget, limit: "token " + s.Name}
		next[sum] = t
	}
	a.tokens.Store(&next)
	if len(next) > 0 {
		a.open.Store(false)
	}
}

// Budgets returns the budget of every token that has one, by token name.
func (a *Auth) Budgets() map[string]*limit.Budget {
	out := map[string]*limit.Budget{}
	for _, t := range *a.tokens.Load() {
		if t.budget != nil {
			out[t.spec.Name] = t.budget
		}
	}
	return out
}

// UserBudgets returns the budget of every user that has one, by the name
// their login token's requests are recorded under ("user:" + username).
func (a *Auth) UserBudgets() map[string]*limit.Budget {
	out := map[string]*limit.Budget{}
	if users := a.users.Load(); users != nil {
		for _, u := range *users {
			if u.budget != nil {
				out[loginTokenName(u.name)] = u.budget
			}
		}
	}
	return out
}

// loginTokenName is the token name a user's login token calls the client
// API as: the name its usage records carry.
func loginTokenName(username string) string { return "user:" + username }

// Open reports whether the gateway runs in open mode: no credential was
// configured at start (allowed only on a loopback address), and none has
// been added since. Every caller is then accepted.
func (a *Auth) Open() bool { return a.open.Load() }

// DecideOpen fixes, once at start, whether the gateway is open: no admin
// token, no gateway token and no user. Adding any credential later ends
// open mode for good; removing credentials never brings it back.
func (a *Auth) DecideOpen() bool {
	open := a.Credentials() == 0
	a.open.Store(open)
	return open
}

// Credentials counts what can authenticate a caller: the admin token,
// gateway tokens and users.
func (a *Auth) Credentials() int {
	n := len(*a.tokens.Load())
	if a.hasAdm {
		n++
	}
	if users := a.users.Load(); users != nil {
		n += len(*users)
	}
	return n
}

// Client authenticates a caller of the client API.
func (a *Auth) Client(r *http.Request) (*Caller, error) {
	if a.Open() {
		return &Caller{Name: "anonymous"}, nil
	}
	token, ok := bearer(r)
	if !ok {
		return nil, keygate.Errorf(keygate.EInvalidAPIKey, "missing bearer token in the Authorization header")
	}
	sum := sha256.Sum256([]byte(token))
	if t := (*a.tokens.Load())[sum]; t != nil {
		if e := t.spec.ExpiresAt; e != nil && !a.now().Before(*e) {
			return nil, keygate.Errorf(keygate.EInvalidAPIKey, "token %s expired at %s", t.spec.Name, e.UTC().Format(time.RFC3339))
		}
		return t.caller, nil
	}
	if a.hasAdm && subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
		return &Caller{Name: "admin", User: "admin"}, nil
	}
	if a.signer != nil && secret.LooksLikeJWT(token) {
		return a.loginCaller(token)
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
	token, ok, err := a.operatorCredential(r)
	if err != nil {
		return err
	}
	if a.Open() {
		return nil
	}
	if !ok {
		return keygate.Errorf(keygate.EInvalidAPIKey, "missing bearer token in the Authorization header")
	}
	return a.AdminToken(r.Context(), token)
}

// operatorCredential is what an operator request authenticates with: its
// bearer token, or else the credential its dashboard session stands for,
// checked afresh on every call (a change needs its CSRF token).
func (a *Auth) operatorCredential(r *http.Request) (string, bool, error) {
	token, ok := bearer(r)
	if !ok && a.sessions != nil {
		return a.sessions.Credential(r)
	}
	return token, ok, nil
}

// AdminToken checks one admin credential: the admin token, or an admin's
// login token. A gateway token is refused with 403.
func (a *Auth) AdminToken(ctx context.Context, token string) error {
	sum := sha256.Sum256([]byte(token))
	if a.hasAdm && subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
		return nil
	}
	if (*a.tokens.Load())[sum] != nil {
		return keygate.Errorf(keygate.EForbidden, "a gateway token is not an admin credential")
	}
	if a.logins != nil {
		return a.logins.Admin(ctx, token)
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
		audited(d, r, w, next)
	})
}
