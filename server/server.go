// Package server is keygate's HTTP surface: routes.go lists every route;
// the handlers authenticate, read and check the request, and hand it to the
// relay. Nothing here touches the store on the request path.
package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jonboulle/clockwork"
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
}

// New returns the gateway's handler.
func New(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withRequestID(mux)
}
