package app

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/cluster"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/secret"
	"github.com/keygate/keygate/store"
)

// openCluster connects to Redis when redis_url is set (SPEC section 9),
// and refuses it with SQLite, which replicas cannot share.
func (a *App) openCluster(keyring *secret.Keyring) error {
	if a.cfg.RedisURL == "" {
		return nil
	}
	if a.store.Dialect() != store.DialectPostgres {
		return cluster.ErrSQLite
	}
	c, err := cluster.New(cluster.Options{URL: a.cfg.RedisURL, Logger: a.log, Clock: a.clock, Keyring: keyring})
	if err != nil {
		return err
	}
	a.cluster = c
	c.Attach(a.pool, cluster.Handlers{Reload: a.reloadShared, Lease: a.offerLeases})
	return nil
}

// watchStates logs every key state change once and hands it to the
// other replicas.
func (a *App) watchStates() {
	a.pool.Watch(func(ch pool.Change) {
		a.log.Info("key state changed", "key_id", ch.KeyID, "model", ch.Model, "change", ch.Kind, "class", ch.State.Class)
		if m := a.metrics.Load(); m != nil {
			m.KeyStateChanged(ch.Kind)
		}
		if a.cluster != nil {
			a.cluster.Changed(ch)
		}
		if w := a.states; w != nil {
			w.noteChange(ch)
		}
	})
}

// reloadShared puts in force what another replica changed in the store.
func (a *App) reloadShared(ctx context.Context, what string) error {
	switch what {
	case "models":
		return a.reload(ctx)
	case "tokens":
		return a.reloadTokens(ctx)
	case "users":
		return a.reloadUsers(ctx)
	case "all":
		if err := a.reload(ctx); err != nil {
			return err
		}
		// After an outage budgets learn again what every replica spent, from
		// the usage in the store: a Redis that lost its counters starts from that.
		a.tokensMu.Lock()
		a.seeded = nil
		a.tokensMu.Unlock()
		if err := a.reloadTokens(ctx); err != nil {
			return err
		}
		return a.reloadUsers(ctx)
	}
	return fmt.Errorf("unknown reload %q", what)
}

// announced wraps a reload the admin routes call: after putting the
// change in force here, the other replicas are told to reload it too.
func (a *App) announced(what string, reload func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := reload(ctx)
		if a.cluster != nil {
			a.cluster.Announce(context.WithoutCancel(ctx), what)
		}
		return err
	}
}

// offerLeases installs the keys other replicas fetched: for pool key id,
// or every fetched key when id is "".
func (a *App) offerLeases(id string) {
	a.srcMu.Lock()
	var srcs []*runningSource
	var ids []string
	for k, rs := range a.sources {
		if id == "" || k.ID == id {
			srcs, ids = append(srcs, rs), append(ids, k.ID)
		}
	}
	a.srcMu.Unlock()
	for i, rs := range srcs {
		if l, ok, err := a.cluster.StoredLease(context.Background(), ids[i]); err == nil && ok {
			rs.src.Offer(l)
		}
	}
}

// sharedLimits is the backend of shared limits, or nil (not a typed nil).
func (a *App) sharedLimits() limit.Backend {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// keySharer lets the key source of pool key id share its keys, or nil.
func (a *App) keySharer(id string) keysource.Sharer {
	if a.cluster == nil {
		return nil
	}
	return a.cluster.Sharer(id)
}
