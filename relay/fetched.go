package relay

import (
	"context"
	"time"

	"github.com/keygate/keygate/pool"
)

// replaceFetched handles a key-wide failure (revoked, out of quota, no
// permission) of a key fetched from a key source. That verdict is about
// this one credential, not the slot: the source is asked for a new one
// instead of the slot being cooled, and a new credential starts with clean
// health. The first time in a request it waits for the replacement and
// reports true when the request should be retried with it; after that (a
// second rejection) the key is set aside until the source installs
// another, asked for in the background, and the request fails over.
func (r *Relay) replaceFetched(ctx context.Context, c *Call, a *pool.Attempt, secret string) bool {
	k := a.Key()
	ref := k.Refresher()
	r.Pool.Release(a)
	if c.replaced {
		if k.Secret() == secret {
			k.Expire()
		}
		go func() {
			// Bounded: the source rate-limits its fetches, and a stuck
			// service must not keep this goroutine for long.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			ref.Rejected(bctx, secret)
		}()
		return false
	}
	c.replaced = true
	if err := ref.Rejected(ctx, secret); err != nil || k.Secret() == secret {
		k.Expire()
		r.Logger.Error("fetched key rejected and no replacement", "model", c.Group.ID, "key_id", k.ID, "err", err)
		return false
	}
	return true
}
