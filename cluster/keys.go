package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/keygate/keygate/keysource"
	"github.com/redis/go-redis/v9"
)

// sealedLease is a fetched key as Redis keeps it: sealed with the master
// key, bound to its place.
type sealedLease struct {
	Secret    string    `json:"secret"`
	FetchedAt time.Time `json:"fetched_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (c *Cluster) leaseKey(id string) string { return c.prefix + "lease:" + id }

// Sharer returns what lets the key source feeding pool key id share its
// keys with the other replicas.
func (c *Cluster) Sharer(id string) keysource.Sharer { return keySharer{c, id} }

type keySharer struct {
	c  *Cluster
	id string
}

// Fetch takes the key another replica stored if it is fresher than stale;
// else one replica (the one that takes the fetch lease) calls the key
// service and stores the key, and the others wait for it. Whenever Redis
// fails, the replica fetches for itself.
func (s keySharer) Fetch(ctx context.Context, stale keysource.Lease, fetch func(context.Context) (keysource.Lease, error)) (keysource.Lease, error) {
	c := s.c
	lock := c.prefix + "fetch:" + s.id
	c.settled(ctx)
	for {
		if !c.up.Load() {
			return fetch(ctx)
		}
		l, ok, err := c.StoredLease(ctx, s.id)
		if err != nil {
			return fetch(ctx)
		}
		if ok && l.Secret != stale.Secret && l.FetchedAt.After(stale.FetchedAt) && l.Valid(c.clock.Now()) {
			return l, nil
		}
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		won, err := c.rdb.SetNX(lctx, lock, c.id, fetchLease).Result()
		cancel()
		if err != nil {
			return fetch(ctx)
		}
		if won {
			l, err := fetch(ctx)
			if err == nil {
				c.storeLease(ctx, s.id, l)
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			c.rdb.Del(dctx, lock)
			cancel()
			return l, err
		}
		select {
		case <-ctx.Done():
			return keysource.Lease{}, ctx.Err()
		case <-c.clock.After(100 * time.Millisecond):
		}
	}
}

// StoredLease is the key Redis holds for pool key id, if any.
func (c *Cluster) StoredLease(ctx context.Context, id string) (keysource.Lease, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b, err := c.rdb.Get(ctx, c.leaseKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return keysource.Lease{}, false, nil
	}
	if err != nil {
		c.markDown(err)
		return keysource.Lease{}, false, err
	}
	plain, err := c.keyring.Open(b, []byte(c.leaseKey(id)))
	if err != nil {
		return keysource.Lease{}, false, nil // another master key: not ours to use
	}
	var sl sealedLease
	if json.Unmarshal(plain, &sl) != nil {
		return keysource.Lease{}, false, nil
	}
	return keysource.Lease{Secret: sl.Secret, FetchedAt: sl.FetchedAt, ExpiresAt: sl.ExpiresAt}, true, nil
}

// storeLease keeps a freshly fetched key, sealed, until it expires, and
// tells the other replicas.
func (c *Cluster) storeLease(ctx context.Context, id string, l keysource.Lease) {
	plain, err := json.Marshal(sealedLease{l.Secret, l.FetchedAt, l.ExpiresAt})
	if err != nil {
		return
	}
	sealed, err := c.keyring.Seal(plain, []byte(c.leaseKey(id)))
	if err != nil {
		return
	}
	ttl := l.ExpiresAt.Sub(c.clock.Now())
	if ttl <= 0 {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	if err := c.rdb.Set(sctx, c.leaseKey(id), sealed, ttl).Err(); err != nil {
		c.markDown(err)
		return
	}
	c.publish(sctx, message{Type: "lease", What: id})
}
