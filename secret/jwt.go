package secret

import (
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Login tokens are HS256 JWTs: subject the user id, with the user name and
// role as claims, and an expiry.
const issuer = "keygate"

// Claims is what a valid login token says.
type Claims struct {
	UserID    int64
	Username  string
	Role      string
	ExpiresAt time.Time
}

type loginClaims struct {
	Name string `json:"name"`
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// ErrExpired is returned for a login token past its expiry.
var ErrExpired = errors.New("login token expired")

// ErrInvalidToken is returned for anything else that is not a valid login token.
var ErrInvalidToken = errors.New("invalid login token")

// Signer issues and verifies login tokens.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner signs with key; tokens live ttl; now tells the time (a test clock).
func NewSigner(key []byte, ttl time.Duration, now func() time.Time) *Signer {
	return &Signer{key: append([]byte(nil), key...), ttl: ttl, now: now}
}

// Issue returns a login token for the user.
func (s *Signer) Issue(userID int64, username, role string) (token string, expires time.Time, err error) {
	now := s.now()
	expires = now.Add(s.ttl).Truncate(time.Second)
	c := loginClaims{Name: username, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Subject: strconv.FormatInt(userID, 10),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(expires),
	}}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	return token, expires, err
}

// Verify checks a login token's signature, issuer and expiry.
func (s *Signer) Verify(token string) (Claims, error) {
	var c loginClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, ErrExpired
	}
	if err != nil {
		return Claims{}, ErrInvalidToken
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil {
		return Claims{}, ErrInvalidToken
	}
	return Claims{UserID: id, Username: c.Name, Role: c.Role, ExpiresAt: c.ExpiresAt.Time}, nil
}

// LooksLikeJWT reports whether s has the three dot-separated parts of a
// JWT, to tell a login token from an opaque API token before verifying it.
func LooksLikeJWT(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dots++
		}
	}
	return dots == 2 && len(s) > 20
}
