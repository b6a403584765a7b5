package server

import "github.com/keygate/keygate/limit"

// UseShared shares every token's RPM/TPM and budget with the other
// replicas through b. Call it before SetTokens.
func (a *Auth) UseShared(b limit.Backend) { a.shared = b }

// share hands a token's limiters to the shared backend, under the token's
// hash: Redis never sees a token.
func (a *Auth) share(t *token) {
	if a.shared == nil {
		return
	}
	id := "token:" + t.spec.Hash[:32]
	t.rate.Share(a.shared, id)
	t.budget.Share(a.shared, id)
}
