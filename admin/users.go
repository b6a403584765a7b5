package admin

import (
	"context"
	"net/http"
	"regexp"
	"strconv"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/secret"
)

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// minPassword is the shortest password accepted.
const minPassword = 8

// HandleCreateUser adds a user: {"username","password","role":"admin"|"user"}.
func HandleCreateUser(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Role     string `json:"role"`
			keygate.UserLimits
		}
		if err := decode(w, r, maxBody, &b); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if b.Role == "" {
			b.Role = keygate.RoleUser
		}
		var problems []string
		if !usernamePattern.MatchString(b.Username) {
			problems = append(problems, "username: required, 1 to 64 letters, digits or _ . @ - (starting with a letter or digit)")
		}
		switch {
		case len(b.Password) < minPassword:
			problems = append(problems, "password: at least 8 characters")
		case len(b.Password) > secret.MaxPasswordBytes:
			problems = append(problems, "password: at most 72 bytes")
		}
		if b.Role != keygate.RoleAdmin && b.Role != keygate.RoleUser {
			problems = append(problems, "role: must be admin or user")
		}
		if len(problems) > 0 {
			respond.Error(w, d.Logger, invalid("user", problems))
			return
		}
		// The limits are those of a gateway token, checked the same way.
		lim := keygate.TokenSpec{Name: b.Username, Models: b.Models, RPM: b.RPM, TPM: b.TPM, Budget: b.Budget}
		if err := validateToken(&lim, d.Clock.Now()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		hash, err := secret.HashPassword(b.Password)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		u := keygate.User{Username: b.Username, Role: b.Role, PasswordHash: hash, UserLimits: b.UserLimits}
		if err := d.Users.CreateUser(r.Context(), &u); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("user created", "user", u.Username, "role", u.Role)
		d.usersChanged(r.Context())
		respond.JSON(w, http.StatusCreated, u)
	})
}

// HandleListUsers lists users (never their password hashes).
func HandleListUsers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		users, err := d.Users.ListUsers(r.Context())
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if users == nil {
			users = []keygate.User{}
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": users})
	})
}

// HandleDeleteUser removes a user; their login tokens stop working at once.
func HandleDeleteUser(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.ENotFound, "no user with id %q (ids are numbers)", r.PathValue("id")))
			return
		}
		if err := d.mayRemoveCredential(r.Context()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := d.Users.DeleteUser(r.Context(), id); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("user deleted", "user_id", id)
		d.usersChanged(r.Context())
		respond.JSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	})
}

// usersChanged tells the request path, which checks login tokens against
// the users in memory, that the users changed.
func (d Deps) usersChanged(ctx context.Context) {
	if d.UsersChanged == nil {
		return
	}
	if err := d.UsersChanged(ctx); err != nil {
		d.Logger.Error("reloading users failed", "err", err)
	}
}
