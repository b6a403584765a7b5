package secret

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt cost of new password hashes. Tests lower it;
// nothing else should.
var PasswordCost = bcrypt.DefaultCost

// MaxPasswordBytes is the longest password bcrypt takes whole.
const MaxPasswordBytes = 72

// HashPassword returns the bcrypt hash of password.
func HashPassword(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// dummyHash is compared against when a user does not exist, so a login
// takes as long for an unknown name as for a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("keygate/no-such-user"), PasswordCost)
	return h
})

// CheckPassword reports whether password matches hash. An empty hash (no
// such user) is checked against a dummy so the answer takes the same time.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
