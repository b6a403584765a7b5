// Package app wires keygate together: config in, a running gateway out.
// `keygate serve`, `keygate demo` and the end-to-end tests all start it here.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/audit"
	"github.com/keygate/keygate/cluster"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/dashboard"
	"github.com/keygate/keygate/keycheck"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/secret"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/tokenizer"
	"github.com/keygate/keygate/tracing"
	"github.com/keygate/keygate/usage"
	"github.com/prometheus/client_golang/prometheus"
)

// loginTTL is how long a login token lasts.
const loginTTL = 24 * time.Hour

// Options are the parts tests replace.
type Options struct {
	Logger *slog.Logger
	Clock  clockwork.Clock
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after the context ends (default: the config's shutdown_timeout).
	ShutdownTimeout time.Duration
}

// App is a configured gateway, ready to serve.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	clock    clockwork.Clock
	store    *store.DB
	pool     *pool.Pool
	recorder *usage.Recorder
	audit    *audit.Log
	states   *stateWriter
	checker  *keycheck.Checker
	recovery *keycheck.Recovery
	cluster  *cluster.Cluster // nil without redis_url
	tracing  *tracing.Tracing
	metrics  atomic.Pointer[metrics.Metrics]
	auth     *server.Auth
	throttle *admin.Throttle // login throttle and tarpit
	seedMu   sync.Mutex
	seeded   map[*limit.Budget]bool // budgets already given their period's spending
	tokensMu sync.Mutex
	handler  http.Handler
	shutdown time.Duration
	reloadMu sync.Mutex // serialises reload

	srcMu   sync.Mutex
	sources map[*pool.Key]*runningSource
	srcCtx  context.Context // set by Serve: sources bound later start at once
	srcWG   sync.WaitGroup
}

// New opens the store, builds the key pool and the handler. It refuses a
// non-loopback listen address when no credential is configured.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	a := &App{cfg: cfg, log: opts.Logger, clock: opts.Clock, shutdown: opts.ShutdownTimeout, sources: map[*pool.Key]*runningSource{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.clock == nil {
		a.clock = clockwork.NewRealClock()
	}
	if a.shutdown == 0 {
		a.shutdown = cmp.Or(cfg.ShutdownTimeout, 60*time.Second)
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a.store = db

	a.auth = server.NewAuth(cfg.AdminToken, a.clock.Now)
	for _, t := range cfg.Tokens {
		t.Hash = server.HashToken(t.Token)
		if err := db.UpsertToken(ctx, &t); err != nil {
			db.Close()
			return nil, fmt.Errorf("save token %s from the config: %w", t.Name, err)
		}
	}
	if err := a.reloadTokens(ctx); err != nil {
		db.Close()
		return nil, err
	}
	keyring, jwtKey, err := openSecrets(ctx, cfg, db, a.log)
	if err != nil {
		db.Close()
		return nil, err
	}
	// Key ids are keyed by the master key, so they are stable across restarts
	// and say nothing about the key to anyone without it.
	hasher := keygate.NewKeyHasher(keyring.Derive(secret.LabelKeyID))
	db.UseKeyring(keyring, hasher)
	if err := a.configModels(ctx); err != nil {
		db.Close()
		return nil, err
	}
	models, err := db.ListModels(ctx, keygate.ModelFilter{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load models: %w", err)
	}
	if len(models) == 0 {
		a.log.Warn("no models configured: every request will answer model_not_found until one is added (keygate models add)")
	}
	a.pool = pool.New(hasher, cfg.KeyPolicy)
	a.pool.SetClock(a.clock.Now)
	a.pool.SetPacing(!cfg.Pacing.Disabled)
	if err := a.pool.Load(models); err != nil {
		db.Close()
		return nil, err
	}
	states, err := db.LoadKeyStates(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load key states: %w", err)
	}
	a.pool.Restore(states)
	if err := a.openCluster(keyring); err != nil {
		db.Close()
		return nil, err
	}
	// Before watchStates: the watcher hands disables to the writer.
	a.states = &stateWriter{pool: a.pool, store: db, clock: a.clock, log: a.log, interval: time.Second,
		totals: db, others: a.cluster != nil, urgent: make(chan struct{}, 1)}
	a.states.prime()
	a.watchStates()
	for _, k := range a.pool.Keys() {
		a.log.Debug("key loaded", "key_id", k.ID, "key", k.Masked(), "status", k.View(a.clock.Now()).Status)
	}
	if err := a.bindSources(); err != nil {
		db.Close()
		return nil, err
	}

	a.recorder = usage.NewRecorder(db, a.log, usage.Options{Clock: a.clock})
	m := metrics.New(a.pool, a.clock)
	a.metrics.Store(m)
	go tokenizer.Warm() // off the request path: the first request needing it must not pay the load
	upstream, err := relay.NewUpstream(cfg.UpstreamClient, cfg.UpstreamTimeout)
	if err != nil {
		db.Close()
		return nil, err
	}
	if ft, ok := upstream.(*relay.FastTransport); ok && ft.Proxied() {
		a.log.Warn("upstream_client fasthttp does not use proxies: calls the proxy variables send to a proxy go through net/http")
	}
	rl := &relay.Relay{
		StreamIdle:       cfg.StreamIdleTimeout,
		BodyTimeout:      cfg.StreamIdleTimeout,
		Metrics:          m,
		Pool:             a.pool,
		Client:           &http.Client{Transport: upstream},
		Recorder:         a.recorder,
		Logger:           a.log,
		Clock:            a.clock,
		MaxResponseBytes: 64 << 20,
		Pacing:           relay.Pacing{Off: cfg.Pacing.Disabled, MaxQueueWait: cfg.Pacing.MaxQueueWait},
	}
	a.checker = &keycheck.Checker{Pool: a.pool, Client: &http.Client{Transport: relay.NewTransport(30 * time.Second), Timeout: 30 * time.Second},
		Clock: a.clock, Logger: a.log}
	a.recovery = &keycheck.Recovery{Checker: a.checker, Schedule: keycheck.DefaultSchedule()}
	var ready []func() string
	if a.cluster != nil {
		a.recovery.Claim = a.cluster.Claim
		a.auth.UseShared(a.cluster)
		if err := a.reloadTokens(ctx); err != nil { // share the limiters made before
			db.Close()
			return nil, err
		}
		m.Register(a.cluster.Collectors()...)
		ready = append(ready, a.cluster.Problem)
	}
	a.throttle = admin.NewThrottle(a.clock)
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keygate_login_refusals_held",
		Help: "Throttled logins whose 429 is being held (the login tarpit)."}, func() float64 { return float64(a.throttle.Held()) }))
	logins := &admin.Logins{Users: db, Signer: secret.NewSigner(jwtKey, loginTTL, a.clock.Now), Throttle: a.throttle}
	a.auth.UseLogins(logins)
	a.auth.UseClientLogins(logins.Signer)
	if err := a.reloadUsers(ctx); err != nil {
		db.Close()
		return nil, err
	}
	sessions := dashboard.NewSessions(a.clock)
	sessions.UseStore(db) // shared by the replicas of the database: sign-out ends a session on all
	a.auth.UseSessions(sessions)
	// Open mode is decided here, once: nothing at runtime can enter it.
	if a.auth.DecideOpen() {
		if !config.IsLoopback(cfg.Listen) {
			db.Close()
			return nil, fmt.Errorf("refusing to listen on %s with no authentication: set KEYGATE_ADMIN_TOKEN or declare tokens", cfg.Listen)
		}
		a.log.Warn("no token configured: accepting every caller on the loopback address", "listen", cfg.Listen)
	}
	// Last, so that no failure above leaves an exporter running.
	if a.tracing, err = tracing.New(ctx, cfg.OTelEndpoint); err != nil {
		db.Close()
		return nil, err
	}
	rl.Tracer = a.tracing.Tracer()
	a.audit = audit.New(db, a.log)
	a.handler = server.New(server.Deps{Tracer: rl.Tracer,
		Audit: a.audit, AuditStore: db,
		Logger: a.log, Clock: a.clock, Pool: a.pool, Relay: rl, Auth: a.auth,
		Store: db, MaxBodyBytes: cfg.MaxBodyBytes, RequestReadTimeout: cfg.RequestReadTimeout, Tokens: db, Usage: db, ReloadTokens: a.announced("tokens", a.reloadTokens), Checker: a.checker,
		Metrics: m.Handler(), SharedLimits: a.sharedLimits(), Ready: ready, UsageSeries: db, Sessions: sessions,
		Admin: admin.Deps{Models: db, Keys: db, Users: db, Logins: logins,
			Reload: a.announced("models", a.reload), UsersChanged: a.announced("users", a.reloadUsers),
			RemovingCredential: a.removingCredential},
	})
	return a, nil
}

// removingCredential refuses, on a non-loopback address, to remove the
// last credential (gateway token or user) when there is no admin token:
// the gateway would be left with no way in for anyone, its operator
// included.
func (a *App) removingCredential(ctx context.Context) error {
	if config.IsLoopback(a.cfg.Listen) || a.auth.Credentials() > 1 {
		return nil
	}
	return keygate.Errorf(keygate.EConflict, "refusing to remove the last credential of a gateway listening on %s: create another token or user first, or set KEYGATE_ADMIN_TOKEN", a.cfg.Listen)
}

// reloadTokens puts the stored tokens in force. A budget seen for the
// first time is seeded with what its token already spent this period, so a
// restart does not hand out a fresh budget.
func (a *App) reloadTokens(ctx context.Context) error {
	a.tokensMu.Lock()
	defer a.tokensMu.Unlock()
	list, err := a.store.ListTokens(ctx)
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	a.auth.SetTokens(list)
	return a.seedBudgets(ctx, a.auth.Budgets())
}

// seedBudgets gives each budget seen for the first time what its token
// (by the name usage records carry) already spent in the budget's period,
// read from the stored usage: a restart does not hand out a fresh budget.
func (a *App) seedBudgets(ctx context.Context, budgets map[string]*limit.Budget) error {
	a.seedMu.Lock()
	defer a.seedMu.Unlock()
	if a.seeded == nil {
		a.seeded = map[*limit.Budget]bool{}
	}
	now := a.clock.Now()
	for name, b := range budgets {
		if a.seeded[b] {
			continue
		}
		totals, err := a.store.SumUsage(ctx, keygate.UsageQuery{From: limit.PeriodStart(b.Period, now), Token: name})
		if err != nil {
			return fmt.Errorf("load spending of %s: %w", name, err)
		}
		if len(totals) == 1 {
			b.Seed(now, totals[0].Cost)
		}
		a.seeded[b] = true
	}
	return nil
}

// reloadUsers puts the stored users in force for login tokens on the
// client API, so a deleted user's tokens stop working at once. A user's
// budget seen for the first time is seeded like a token's.
func (a *App) reloadUsers(ctx context.Context) error {
	users, err := a.store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	a.auth.SetUsers(users)
	return a.seedBudgets(ctx, a.auth.UserBudgets())
}

// Handler is the gateway's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Pool is the live key pool.
func (a *App) Pool() *pool.Pool { return a.pool }

// Store is the open store.
func (a *App) Store() *store.DB { return a.store }

// Serve answers on ln until ctx ends, then stops taking connections, lets
// requests in flight finish, flushes every usage record and closes the store.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// Requests run under base: when shutdown has waited shutdown_timeout,
	// it is cancelled with relay.ErrShutdown, and the streams still running
	// end with an error event and are recorded as cut.
	base, cut := context.WithCancelCause(context.Background())
	defer cut(nil)
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	srv.RegisterOnShutdown(a.throttle.Release) // held login refusals must not hold up the drain
	var wg sync.WaitGroup
	recCtx, stopRec := context.WithCancel(context.Background())
	defer stopRec()
	wg.Add(4)
	go func() { defer wg.Done(); a.recorder.Run(recCtx) }()
	go func() { defer wg.Done(); a.states.run(recCtx) }()
	go func() { defer wg.Done(); a.audit.Run(recCtx) }()
	go func() { defer wg.Done(); a.recovery.Run(recCtx) }()
	if a.cluster != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.cluster.Run(recCtx) }()
	}
	a.startSources(recCtx)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("keygate listening", "addr", ln.Addr().String(), "models", len(a.pool.ModelIDs()), "keys", len(a.pool.Keys()))

	var serveErr error
	select {
	case err := <-errc:
		serveErr = err
	case <-ctx.Done():
		a.log.Info("shutting down: draining requests in flight", "shutdown_timeout", a.shutdown.String())
		sctx, cancel := context.WithTimeout(context.Background(), a.shutdown)
		err := srv.Shutdown(sctx)
		cancel()
		if err != nil {
			a.log.Warn("shutdown: ending the requests still in flight", "shutdown_timeout", a.shutdown.String())
			cut(relay.ErrShutdown)
			// They end at once now; give them a moment to write their
			// last event and their records.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := srv.Shutdown(sctx); err != nil {
				a.log.Error("shutdown: requests still in flight were cut off", "err", err)
				srv.Close()
			}
			cancel()
		}
	}

	fctx, cancel := context.WithTimeout(context.Background(), max(a.shutdown, 10*time.Second))
	defer cancel()
	if err := a.recorder.Close(fctx); err != nil {
		a.log.Error("shutdown: usage records not written", "err", err)
		serveErr = errors.Join(serveErr, err)
	}
	stopRec()
	wg.Wait()
	a.srcWG.Wait()
	if err := a.states.flush(fctx); err != nil {
		a.log.Error("shutdown: key states not saved", "err", err)
		serveErr = errors.Join(serveErr, err)
	}
	if err := a.store.Close(); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if a.cluster != nil {
		a.cluster.Close()
	}
	if err := a.tracing.Shutdown(fctx); err != nil { // the last spans go out
		a.log.Warn("shutdown: spans not exported", "err", err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	a.log.Info("keygate stopped")
	return serveErr
}
