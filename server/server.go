// Package server is keygate's HTTP surface: routes.go lists every route;
// the handlers authenticate, read and check the request, and hand it to the
// relay. Nothing here touches the store on the request path.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/dashboard"
	"github.com/keygate/keygate/keycheck"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"go.opentelemetry.io/otel/trace"
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
	// RequestReadTimeout bounds reading a request body (default 60 s).
	RequestReadTimeout time.Duration
	Tokens             keygate.TokenStore
	Usage              keygate.UsageReader
	Checker            *keycheck.Checker
	Metrics            http.Handler // GET /metrics, behind the admin credential; nil: no route
	// ReloadTokens puts the stored tokens in force (after a change).
	ReloadTokens func(ctx context.Context) error
	// SharedLimits, if set, shares models' RPM/TPM with other replicas
	// (tokens' limits are shared through Auth.UseShared).
	SharedLimits limit.Backend
	// Ready lists further readiness checks: each says what is wrong, or "".
	Ready []func() string
	// Admin is what the operator routes use beyond the pool: the stores,
	// logins and the reload of models. Its Logger, Clock and Pool are taken
	// from these Deps. Without a store only the key health routes exist.
	Admin admin.Deps
	// UsageSeries answers GET /api/v1/usage/series; nil: no route.
	UsageSeries keygate.UsageSeriesReader
	// Sessions are the dashboard's signed-in browsers; nil: no dashboard.
	// The same store must be given to Auth.UseSessions.
	Sessions *dashboard.Sessions
	// Audit, if set, records every admin change, login and failed login;
	// AuditStore answers GET /api/v1/audit.
	Audit      Auditor
	AuditStore keygate.AuditStore

	// Tracer, if set, makes each relayed request a span (package tracing).
	Tracer trace.Tracer

	modelRates *modelRates
}

// modelRates holds each model's own RPM/TPM limiter (SPEC "per-model
// rpm/tpm cap the gateway's own traffic to that model").
type modelRates struct {
	m      sync.Map
	shared limit.Backend
}

// get returns the limiter of g, renewed when its configured caps change.
func (m *modelRates) get(g *pool.Group) *limit.Rate {
	rpm, tpm := 0, 0
	if len(g.Deployments) > 0 {
		rpm, tpm = g.Deployments[0].Model.RPM, g.Deployments[0].Model.TPM
	}
	if rpm == 0 && tpm == 0 {
		return nil
	}
	if v, ok := m.m.Load(g.ID); ok {
		if r := v.(*limit.Rate); r.RPM == rpm && r.TPM == tpm {
			return r
		}
	}
	r := limit.NewRate(rpm, tpm)
	r.Share(m.shared, "model:"+g.ID)
	m.m.Store(g.ID, r)
	return r
}

// limit is g's own RPM/TPM as a limit to reserve from.
func (m *modelRates) limit(g *pool.Group) limit.Limit {
	return limit.Limit{Name: "model " + g.ID, Rate: m.get(g)}
}

// New returns the gateway's handler.
func New(d Deps) http.Handler {
	d.modelRates = &modelRates{shared: d.SharedLimits}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withRequestID(mux)
}
