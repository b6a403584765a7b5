// Package server is keygate's HTTP surface: routes.go lists every route;
// the handlers authenticate, read and check the request, and hand it to the
// relay. Nothing here touches the store on the request path.
package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
)

// Pinger reports whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is what the server needs.
type Deps struct {
	Logger       *slog.Logger
	Clock        clockwork.Clock
	Pool         *pool.Pool
	Relay        *relay.Relay
	Auth         *Auth
	Store        Pinger
	MaxBodyBytes int64
	// Admin is what the operator routes use beyond the pool: the stores,
	// logins and the reload of models. Its Logger, Clock and Pool are taken
	// from these Deps. Without a store only the key health routes exist.
	Admin admin.Deps
}

// New returns the gateway's handler.
func New(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withRequestID(mux)
}
