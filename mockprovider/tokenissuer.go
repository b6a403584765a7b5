package mockprovider

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// JWTBearerGrant is the grant type of a Google service account's signed
// assertion (RFC 7523).
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// TokenIssuer is a fake OAuth 2.0 token endpoint (RFC 6749 section 4.4 and
// 6, RFC 7523): the client-credentials grant (client authenticated by HTTP
// Basic or by client_id/client_secret in the form, as Entra ID takes it),
// the refresh-token grant (rotating the refresh token when Rotate is set, so
// a spent one answers invalid_grant), and Google's JWT-bearer grant, whose
// assertion it verifies: RS256 signature against the service account's
// public key, iss, scope, aud (its own URL) and exp. Access tokens live
// ttl on its clock; pair it with a Provider through Validator.
type TokenIssuer struct {
	keys   *KeyService // issues and judges the access tokens
	ttl    time.Duration
	opts   TokenIssuerOptions
	clock  clockwork.Clock
	down   atomic.Bool
	denied atomic.Bool // every refresh token answers invalid_grant

	mu       sync.Mutex
	refresh  map[string]bool // refresh tokens that still work
	calls    []TokenCall
	hold     chan struct{}
	audience string
}

// TokenIssuerOptions say whom the issuer trusts.
type TokenIssuerOptions struct {
	ClientID, ClientSecret string
	// Scope, if set, is the scope a client-credentials request must ask for.
	Scope string
	// RefreshTokens are the refresh tokens valid from the start.
	RefreshTokens []string
	// Rotate hands out a new refresh token with every refresh and retires the old.
	Rotate bool
	// Account and PublicKey are the service account whose assertions are accepted.
	Account   string
	PublicKey *rsa.PublicKey
	// Scopes is the scope an assertion must carry, space-separated.
	Scopes string
}

// TokenCall is one request the issuer answered.
type TokenCall struct {
	At    time.Time
	Grant string
	Error string // the OAuth 2.0 error answered, "" for a token
}

// NewTokenIssuer returns an issuer whose access tokens live ttl on clock.
func NewTokenIssuer(clock clockwork.Clock, ttl time.Duration, opts TokenIssuerOptions) *TokenIssuer {
	t := &TokenIssuer{keys: NewKeyService(clock, ttl), ttl: ttl, opts: opts, clock: clock, refresh: map[string]bool{}}
	for _, r := range opts.RefreshTokens {
		t.refresh[r] = true
	}
	return t
}

// SetAudience is the URL assertions must be addressed to (the key file's token_uri).
func (t *TokenIssuer) SetAudience(url string) {
	t.mu.Lock()
	t.audience = url
	t.mu.Unlock()
}

// SetDown makes every request answer 503.
func (t *TokenIssuer) SetDown(down bool) { t.down.Store(down) }

// DenyRefresh makes every refresh token answer invalid_grant (revoked).
func (t *TokenIssuer) DenyRefresh(deny bool) { t.denied.Store(deny) }

// Hold makes requests wait (a slow endpoint) until release is called or
// the client gives up.
func (t *TokenIssuer) Hold() (release func()) {
	ch := make(chan struct{})
	t.mu.Lock()
	t.hold = ch
	t.mu.Unlock()
	return sync.OnceFunc(func() {
		t.mu.Lock()
		t.hold = nil
		t.mu.Unlock()
		close(ch)
	})
}

// Calls returns the requests answered, oldest first.
func (t *TokenIssuer) Calls() []TokenCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TokenCall(nil), t.calls...)
}

// Issued counts the access tokens handed out.
func (t *TokenIssuer) Issued() int {
	n := 0
	for _, c := range t.Calls() {
		if c.Error == "" {
			n++
		}
	}
	return n
}

// RefreshTokenValid reports whether r would still be accepted.
func (t *TokenIssuer) RefreshTokenValid(r string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refresh[r]
}

// Valid reports whether an access token was issued here and is still good.
func (t *TokenIssuer) Valid(token string) bool { return t.keys.Valid(token) }

// Revoke makes an access token invalid before its expiry.
func (t *TokenIssuer) Revoke(token string) { t.keys.Revoke(token) }

// Validator is for Options.Validate, as KeyService.Validator.
func (t *TokenIssuer) Validator() func(string) (Behavior, bool) { return t.keys.Validator() }

func (t *TokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	hold := t.hold
	t.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	grant := r.PostFormValue("grant_type")
	answer := func(status int, code, desc string) {
		t.mu.Lock()
		t.calls = append(t.calls, TokenCall{At: t.clock.Now(), Grant: grant, Error: code})
		t.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	switch {
	case t.down.Load():
		answer(http.StatusServiceUnavailable, "temporarily_unavailable", "the token service is down")
		return
	case r.Method != http.MethodPost:
		answer(http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}

	var next string // a rotated refresh token to hand out
	switch grant {
	case "client_credentials", "refresh_token":
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		if id != t.opts.ClientID || secret != t.opts.ClientSecret {
			answer(http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		if grant == "client_credentials" {
			if t.opts.Scope != "" && r.PostFormValue("scope") != t.opts.Scope {
				answer(http.StatusBadRequest, "invalid_scope", "scope must be "+t.opts.Scope)
				return
			}
			break
		}
		rt := r.PostFormValue("refresh_token")
		t.mu.Lock()
		ok := t.refresh[rt] && !t.denied.Load()
		if ok && t.opts.Rotate {
			delete(t.refresh, rt)
			next = "rt-" + random()
			t.refresh[next] = true
		}
		t.mu.Unlock()
		if !ok {
			answer(http.StatusBadRequest, "invalid_grant", "the refresh token is expired or revoked")
			return
		}
	case JWTBearerGrant:
		if why := t.checkAssertion(r.PostFormValue("assertion")); why != "" {
			answer(http.StatusBadRequest, "invalid_grant", why)
			return
		}
	default:
		answer(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+grant+" is not supported")
		return
	}

	out := map[string]any{"access_token": t.keys.issue(), "token_type": "Bearer", "expires_in": int(t.ttl / time.Second)}
	if next != "" {
		out["refresh_token"] = next
	}
	t.mu.Lock()
	t.calls = append(t.calls, TokenCall{At: t.clock.Now(), Grant: grant})
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// checkAssertion verifies a service account's JWT as Google's token
// endpoint does and says what is wrong with it, or "".
func (t *TokenIssuer) checkAssertion(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 || t.opts.PublicKey == nil {
		return "assertion is not a signed JWT"
	}
	var header struct{ Alg, Typ string }
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return "assertion is not a well-formed JWT"
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	t.mu.Lock()
	aud := t.audience
	t.mu.Unlock()
	// exp and iat are on the real clock: the signer (x/oauth2) uses it.
	now := time.Now().Unix()
	switch {
	case header.Alg != "RS256":
		return "alg must be RS256"
	case rsa.VerifyPKCS1v15(t.opts.PublicKey, crypto.SHA256, digest[:], sig) != nil:
		return "invalid JWT signature"
	case claims.Iss != t.opts.Account:
		return "iss is not the service account"
	case claims.Scope != t.opts.Scopes:
		return "scope is " + claims.Scope + ", want " + t.opts.Scopes
	case aud == "" || claims.Aud != aud:
		return "aud is " + claims.Aud + ", want " + aud
	case claims.Exp <= now || claims.Exp-claims.Iat > 3600 || claims.Iat > now+60:
		return "invalid JWT: exp and iat must be within an hour of now"
	}
	return ""
}

func random() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
