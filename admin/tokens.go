package admin

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/respond"
)

// TokenDeps is what the token routes use.
type TokenDeps struct {
	Deps
	Tokens keygate.TokenStore
	// Reload puts the stored tokens in force on the request path.
	Reload func(r *http.Request) error
	// Spent tells what a token's budget has spent in its current period.
	Spent func(name string) (float64, bool)
	Hash  func(secret string) string
}

type tokenView struct {
	keygate.TokenSpec
	Spent *float64 `json:"spent,omitempty"`
}

// HandleCreateToken creates a gateway token and shows it once.
func HandleCreateToken(d TokenDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in keygate.TokenSpec
		if err := decode(w, r, maxBody, &in); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := validateToken(&in, d.Clock.Now()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		secret, err := newTokenSecret()
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		in.Hash, in.Token, in.CreatedAt = d.Hash(secret), "", d.Clock.Now().UTC()
		if err := d.Tokens.CreateToken(r.Context(), &in); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := d.Reload(r); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("token created", "token", in.Name, "user", in.User)
		in.Token = secret // shown this once; only the hash is kept
		respond.JSON(w, http.StatusCreated, in)
	})
}

// HandleListTokens lists tokens without their secrets.
func HandleListTokens(d TokenDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := d.Tokens.ListTokens(r.Context())
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		out := make([]tokenView, 0, len(list))
		for _, t := range list {
			v := tokenView{TokenSpec: t}
			if spent, ok := d.Spent(t.Name); ok {
				v.Spent = &spent
			}
			out = append(out, v)
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": out})
	})
}

// HandleDeleteToken revokes a token at once.
func HandleDeleteToken(d TokenDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.ENotFound, "no token with id %q", r.PathValue("id")))
			return
		}
		if err := d.mayRemoveCredential(r.Context()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := d.Tokens.DeleteToken(r.Context(), id); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := d.Reload(r); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("token revoked", "token_id", id)
		w.WriteHeader(http.StatusNoContent)
	})
}

// validateToken names every problem by field.
func validateToken(t *keygate.TokenSpec, now time.Time) error {
	var problems []string
	if strings.TrimSpace(t.Name) == "" {
		problems = append(problems, "name: required")
	}
	if t.RPM < 0 {
		problems = append(problems, "rpm: must not be negative")
	}
	if t.TPM < 0 {
		problems = append(problems, "tpm: must not be negative")
	}
	if b := t.Budget; b != nil {
		if b.Amount <= 0 {
			problems = append(problems, "budget.amount: must be more than 0")
		}
		if b.Period != limit.Daily && b.Period != limit.Monthly && b.Period != limit.Total {
			problems = append(problems, "budget.period: must be daily, monthly or total")
		}
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(now) {
		problems = append(problems, "expires_at: must be in the future")
	}
	if len(t.Models) == 0 {
		t.Models = []string{"*"}
	}
	if len(problems) > 0 {
		return invalid("token", problems)
	}
	return nil
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newTokenSecret returns "kg-" and 40 random characters (about 238 bits).
func newTokenSecret() (string, error) {
	b := make([]byte, 40)
	n := big.NewInt(int64(len(tokenAlphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b[i] = tokenAlphabet[x.Int64()]
	}
	return "kg-" + string(b), nil
}
