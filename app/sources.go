package app

import (
	"context"
	"net/http"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/pool"
)

// runningSource is a key service source bound to a pool key; stop is set
// once it runs.
type runningSource struct {
	src  *keysource.Source
	spec *keygate.KeySource // the spec it was built from: an edit restarts it
	stop context.CancelFunc
}

// bindSources gives every key fed by a key service its keysource.Source:
// each new lease is installed in the pool's key, and the relay may ask the
// source for a replacement or wait on it. Sources of keys no longer in
// service stop. Before Serve, sources wait for it; after, they start at once.
func (a *App) bindSources() error {
	a.srcMu.Lock()
	defer a.srcMu.Unlock()
	live := map[*pool.Key]bool{}
	for _, k := range a.pool.FetchedKeys() {
		live[k] = true
		if rs := a.sources[k]; rs != nil {
			if rs.spec == k.Source() {
				continue
			}
			// The model's key_source was edited: restart its source.
			if rs.stop != nil {
				rs.stop()
			}
			delete(a.sources, k)
			a.log.Info("key source edited: restarting it", "key_id", k.ID)
		}
		src, err := keysource.New(*k.Source(), keysource.Options{
			Client: &http.Client{Transport: http.DefaultTransport},
			Clock:  a.clock, Logger: a.log, Name: strings.Join(k.View(a.clock.Now()).Models, ","),
			// A rotated OAuth 2.0 refresh token is kept sealed in the store
			// under the key's id (a keyed hash of the source: no secret).
			Vault: a.store, VaultName: k.ID,
			Share: a.keySharer(k.ID),
		})
		if err != nil {
			return err
		}
		rs := &runningSource{src: src, spec: k.Source()}
		src.OnChange(func(l keysource.Lease) {
			a.srcMu.Lock()
			current := a.sources[k] == rs
			a.srcMu.Unlock()
			if current { // a source replaced by an edit installs nothing more
				k.SetLease(l.Secret, l.ExpiresAt)
			}
		})
		k.SetRefresher(refresher{src})
		a.sources[k] = rs
		if a.srcCtx != nil {
			a.startSource(rs)
		}
	}
	for k, rs := range a.sources {
		if !live[k] {
			if rs.stop != nil {
				rs.stop()
			}
			delete(a.sources, k)
		}
	}
	return nil
}

// startSources runs every bound source, and those bound later, until ctx ends.
func (a *App) startSources(ctx context.Context) {
	a.srcMu.Lock()
	defer a.srcMu.Unlock()
	a.srcCtx = ctx
	for _, rs := range a.sources {
		a.startSource(rs)
	}
}

// startSource runs one source. Called with srcMu held.
func (a *App) startSource(rs *runningSource) {
	ctx, cancel := context.WithCancel(a.srcCtx)
	rs.stop = cancel
	a.srcWG.Add(1)
	go func() {
		defer a.srcWG.Done()
		rs.src.Run(ctx)
	}()
}

// refresher adapts a keysource.Source to what the pool asks of it.
type refresher struct{ src *keysource.Source }

func (r refresher) Rejected(ctx context.Context, secret string) error {
	_, err := r.src.Rejected(ctx, secret)
	return err
}

func (r refresher) Wait(ctx context.Context) error {
	_, err := r.src.Wait(ctx)
	return err
}

func (r refresher) Describe() pool.SourceView {
	v := r.src.View()
	return pool.SourceView{Type: v.Type, Target: v.Target, State: v.State, URL: v.URL, SceneCode: v.SceneCode,
		FetchedAt: v.FetchedAt, ExpiresAt: v.ExpiresAt, Fetches: v.Fetches, Failures: v.Failures, LastError: v.LastError}
}
