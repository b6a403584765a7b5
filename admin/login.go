package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/secret"
)

// Logins issues login tokens and tells whether one belongs to an admin.
type Logins struct {
	Users  keygate.UserStore
	Signer *secret.Signer
	// Throttle, if set, locks out repeated failures and caps concurrent
	// password hashing.
	Throttle *Throttle
}

// Admin checks a login token on an operator route: valid and unexpired
// (else 401), and of a user who still exists and is an admin (else 401 or
// 403). The user is read from the store on every call, so deleting a user
// ends their tokens at once; operator routes are not the hot path.
func (l *Logins) Admin(ctx context.Context, token string) error {
	c, err := l.Signer.Verify(token)
	if errors.Is(err, secret.ErrExpired) {
		return keygate.Errorf(keygate.EInvalidAPIKey, "login token expired; log in again")
	}
	if err != nil {
		return keygate.Errorf(keygate.EInvalidAPIKey, "invalid admin credential")
	}
	u, err := l.Users.FindUser(ctx, c.UserID)
	if keygate.ErrorCode(err) == keygate.ENotFound || (err == nil && u.Username != c.Username) {
		return keygate.Errorf(keygate.EInvalidAPIKey, "the user of this login token no longer exists")
	}
	if err != nil {
		return err
	}
	if u.Role != keygate.RoleAdmin {
		return keygate.Errorf(keygate.EForbidden, "user %q is not an admin", u.Username)
	}
	return nil
}

// HandleLogin answers {"token","expires_at"} for a right username and
// password: {"username","password"}.
func HandleLogin(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th := d.Logins.Throttle
		// A locked-out address is refused before its body is read or
		// decoded, with a precomputed answer, and reported once per lockout:
		// during a flood of bad logins this is nearly every request.
		if th != nil {
			if wait, first := th.AddrWait(r); wait > 0 {
				if first {
					d.Logger.Warn("login throttled: address locked out", "remote", sourceHost(r), "retry_after", wait.Round(time.Second))
					if d.AuditLogin != nil {
						d.AuditLogin(r, "", "login.throttled", http.StatusTooManyRequests)
					}
				}
				th.refuse(w, r, wait)
				return
			}
		}
		var b struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := decode(w, r, maxBody, &b); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		var problems []string
		if b.Username == "" {
			problems = append(problems, "username: required")
		}
		if b.Password == "" {
			problems = append(problems, "password: required")
		}
		if len(problems) > 0 {
			respond.Error(w, d.Logger, invalid("login", problems))
			return
		}
		audit := func(action string, status int) {
			if d.AuditLogin != nil {
				d.AuditLogin(r, b.Username, action, status)
			}
		}
		throttled := func(wait time.Duration, first bool) {
			if first { // once per lockout window, not per attempt
				audit("login.throttled", http.StatusTooManyRequests)
				d.Logger.Warn("login throttled", "user", b.Username, "remote", r.RemoteAddr)
			}
			th.refuse(w, r, wait)
		}
		if th != nil {
			if wait, first := th.wait(b.Username, r); wait > 0 {
				throttled(wait, first)
				return
			}
		}
		u, err := d.Logins.Users.FindUserByName(r.Context(), b.Username)
		if err != nil && keygate.ErrorCode(err) != keygate.ENotFound {
			respond.Error(w, d.Logger, err)
			return
		}
		hash := ""
		if u != nil {
			hash = u.PasswordHash
		}
		ok := true
		if th != nil {
			var wait time.Duration
			var first bool
			ok, wait, first, err = th.hash(r.Context(), b.Username, r, func() bool { return secret.CheckPassword(hash, b.Password) })
			if err != nil {
				respond.Error(w, d.Logger, err)
				return
			}
			if wait > 0 {
				throttled(wait, first)
				return
			}
		} else {
			ok = secret.CheckPassword(hash, b.Password)
		}
		if !ok {
			if th != nil {
				th.failed(b.Username, r)
			}
			d.Logger.Warn("login failed", "user", b.Username, "remote", r.RemoteAddr)
			audit("login.failed", http.StatusUnauthorized)
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidAPIKey, "invalid username or password"))
			return
		}
		if th != nil {
			th.succeeded(b.Username, r)
		}
		token, exp, err := d.Logins.Signer.Issue(u.ID, u.Username, u.Role)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("login", "user", u.Username, "role", u.Role)
		audit("login", http.StatusOK)
		respond.JSON(w, http.StatusOK, map[string]any{"token": token, "expires_at": exp.UTC().Format(time.RFC3339)})
	})
}
