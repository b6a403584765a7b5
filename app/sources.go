package app

import (
	"context"
	"net/http"
	"strings"

	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/pool"
)

// bindSources gives every key fed by a key service its keysource.Source:
// each new lease is installed in the pool's key, and the relay may ask the
// source for a replacement or wait on it. Sources run until ctx ends.
func (a *App) bindSources() error {
	for _, k := range a.pool.FetchedKeys() {
		if k.Refresher() != nil {
			continue
		}
		src, err := keysource.New(*k.Source(), keysource.Options{
			Client: &http.Client{Transport: http.DefaultTransport},
			Clock:  a.clock, Logger: a.log, Name: strings.Join(k.View(a.clock.Now()).Models, ","),
		})
		if err != nil {
			return err
		}
		src.OnChange(func(l keysource.Lease) { k.SetLease(l.Secret, l.ExpiresAt) })
		k.SetRefresher(refresher{src})
		a.sources = append(a.sources, src)
	}
	return nil
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
	return pool.SourceView{URL: v.URL, SceneCode: v.SceneCode, FetchedAt: v.FetchedAt, ExpiresAt: v.ExpiresAt,
		Fetches: v.Fetches, Failures: v.Failures, LastError: v.LastError}
}
