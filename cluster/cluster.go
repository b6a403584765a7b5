// Package cluster shares state between several keygate replicas through
// Redis (SPEC section 9): key state changes, probe and check leases,
// admin changes, shared rate limits and budgets, and keys fetched from a
// key service. Nothing here is on the request path: the pool and the
// limiters work in memory and hand changes over through channels and
// leases; this package carries them to Redis and back in the background.
//
// When Redis is unreachable every replica keeps serving on its own state
// and limits; the package logs it once, reports it (Problem, metrics), and
// resynchronises when Redis answers again: it pushes the changes it made
// meanwhile, pulls everyone else's, and has the app reload what the store
// holds.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/secret"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Timings of the background work.
const (
	heartbeat   = 250 * time.Millisecond // Redis ping and replica heartbeat
	replicaTTL  = 3 * time.Second        // a replica not heard of for this long is gone
	opTimeout   = 500 * time.Millisecond // one Redis round trip from the background
	sweepEvery  = time.Second            // idle limiter leases are given back
	probeGrace  = 5 * time.Second        // how long the replica that cooled a key has to probe it first
	checkLease  = time.Minute            // one replica runs a key's background check
	fetchLease  = 30 * time.Second       // one replica fetches a key service's key
	changeQueue = 4096
)

// Options are a Cluster's dependencies.
type Options struct {
	URL     string          // redis://, rediss://, with master_name= for Sentinel, redis+cluster:// or several addr= for Cluster
	Logger  *slog.Logger    // default slog.Default()
	Clock   clockwork.Clock // default the real clock
	Keyring *secret.Keyring // seals fetched keys kept in Redis
	Prefix  string          // key and channel prefix, default "keygate:"
}

// Handlers are what the app does when another replica changed something.
type Handlers struct {
	// Reload puts what the store holds in force again: "models", "tokens",
	// "users", or "all" after an outage.
	Reload func(ctx context.Context, what string) error
	// Lease is told that another replica stored a new key for the key
	// service feeding pool key id.
	Lease func(id string)
}

// Cluster is one replica's link to the others.
type Cluster struct {
	rdb      redis.UniversalClient
	id       string
	log      *slog.Logger
	clock    clockwork.Clock
	keyring  *secret.Keyring
	prefix   string
	channel  string
	pool     *pool.Pool
	handlers Handlers

	up        atomic.Bool
	ready     chan struct{} // closed once the first contact with Redis succeeded or failed
	readyOnce sync.Once
	replicas  atomic.Int64
	changes   chan pool.Change
	overflow  atomic.Bool // a change was dropped: push every state at the next chance

	mu      sync.Mutex
	pending map[stateKey]pool.Change // made while Redis was down
	timers  map[stateKey]clockwork.Timer

	sweepers sync.Map // id → limit.Sweeper

	commands   prometheus.Counter
	outages    prometheus.Counter
	upGauge    prometheus.GaugeFunc
	roundTrips atomic.Int64
}

type stateKey struct{ key, model, kind string }

// ErrSQLite is the start refusing redis_url with a store replicas cannot share.
var ErrSQLite = errors.New("redis_url needs a shared PostgreSQL store: set KEYGATE_DATABASE_URL=postgres://… (replicas cannot share an embedded SQLite file)")

// ParseURL returns go-redis options for url: a plain redis:// or rediss://
// address; with master_name=NAME (and addr= for further sentinels) the
// Sentinel-managed master NAME; redis+cluster:// (or several addr= with no
// master_name) a Redis Cluster.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", redactErr(err))
	}
	q := u.Query()
	switch {
	case u.Scheme == "redis+cluster" || u.Scheme == "rediss+cluster" || (len(q["addr"]) > 0 && q.Get("master_name") == ""):
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis_url (cluster): %w", redactErr(err))
		}
		return &redis.UniversalOptions{Addrs: o.Addrs, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, IsClusterMode: true}, nil
	case q.Get("master_name") != "":
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis_url (sentinel): %w", redactErr(err))
		}
		return &redis.UniversalOptions{Addrs: o.SentinelAddrs, MasterName: o.MasterName,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig}, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", redactErr(err))
	}
	return &redis.UniversalOptions{Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password,
		DB: o.DB, TLSConfig: o.TLSConfig}, nil
}

// redactErr drops a URL (and its password) that url.Parse quotes.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// New connects to Redis (without waiting for it: an unreachable Redis at
// start is an outage like any other).
func New(opts Options) (*Cluster, error) {
	uo, err := ParseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	uo.DialTimeout, uo.ReadTimeout, uo.WriteTimeout = opTimeout, opTimeout, opTimeout
	uo.MaxRetries = -1 // a failed round trip is an outage signal, not something to hide
	uo.PoolTimeout = opTimeout
	uo.ContextTimeoutEnabled = true
	c := &Cluster{
		rdb: redis.NewUniversalClient(uo), log: opts.Logger, clock: opts.Clock, keyring: opts.Keyring,
		prefix: opts.Prefix, changes: make(chan pool.Change, changeQueue),
		pending: map[stateKey]pool.Change{}, timers: map[stateKey]clockwork.Timer{},
		ready: make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	if c.prefix == "" {
		c.prefix = "keygate:"
	}
	c.channel = c.prefix + "events"
	var b [8]byte
	rand.Read(b[:])
	c.id = hex.EncodeToString(b[:])
	c.replicas.Store(1)
	c.commands = prometheus.NewCounter(prometheus.CounterOpts{Name: "keygate_redis_commands_total",
		Help: "Round trips to Redis (a pipeline counts once)."})
	c.outages = prometheus.NewCounter(prometheus.CounterOpts{Name: "keygate_redis_outages_total",
		Help: "Times Redis became unreachable."})
	c.upGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keygate_redis_up",
		Help: "1 while Redis is reachable and this replica is in sync, else 0 (serving on local state)."},
		func() float64 {
			if c.up.Load() {
				return 1
			}
			return 0
		})
	c.rdb.AddHook(countHook{c})
	return c, nil
}

// Collectors are the cluster's metrics, to register with the others.
func (c *Cluster) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.commands, c.outages, c.upGauge}
}

// RoundTrips is how many round trips to Redis this replica made.
func (c *Cluster) RoundTrips() int64 { return c.roundTrips.Load() }

// ID is this replica's random id.
func (c *Cluster) ID() string { return c.id }

// settled waits (briefly) for the first contact with Redis, so that work
// starting with the replica — the first key fetch — knows whether to share.
func (c *Cluster) settled(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
	case <-c.clock.After(2 * time.Second):
	}
}

// Up reports whether Redis is reachable and this replica in sync.
func (c *Cluster) Up() bool { return c.up.Load() }

// Problem is what /readyz says about Redis: "" while it is reachable.
func (c *Cluster) Problem() string {
	if c.up.Load() {
		return ""
	}
	return "redis unreachable: serving on local state and limits"
}

// Replicas is how many replicas sent a heartbeat lately (at least 1).
func (c *Cluster) Replicas() int64 { return max(c.replicas.Load(), 1) }

// Attach applies the other replicas' key state changes to p and calls h on
// their other changes. Call it before Run; hand p's own changes to Changed.
func (c *Cluster) Attach(p *pool.Pool, h Handlers) { c.pool, c.handlers = p, h }

// Changed takes one of the pool's own state changes to share. It never
// blocks: when the queue is full every state is offered again later.
func (c *Cluster) Changed(ch pool.Change) {
	select {
	case c.changes <- ch:
	default:
		c.overflow.Store(true)
	}
}

// Run keeps the replica in touch with Redis until ctx ends.
func (c *Cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.subscribe(ctx) }()
	go func() { defer wg.Done(); c.publishChanges(ctx) }()
	go func() { defer wg.Done(); c.sweep(ctx) }()
	c.watch(ctx)
	wg.Wait()
	c.mu.Lock()
	for _, t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()
}

// Close closes the connections.
func (c *Cluster) Close() error { return c.rdb.Close() }

// watch pings Redis (as a heartbeat in the replicas set) and follows its
// reachability: the first failure is logged once and the replica serves on
// its own; the first success after resynchronises.
func (c *Cluster) watch(ctx context.Context) {
	t := c.clock.NewTicker(heartbeat)
	defer t.Stop()
	down := true
	first := true
	for {
		err := c.beat(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && (!down || first):
			c.up.Store(false)
			down, first = true, false
			c.outages.Inc()
			c.log.Error("redis unreachable: serving on local state and limits until it returns", "err", err)
		case err == nil && down:
			if rerr := c.resync(ctx); rerr != nil {
				if first {
					c.log.Error("redis unreachable: serving on local state and limits until it returns", "err", rerr)
					c.outages.Inc()
					first = false
				}
				break
			}
			if !first {
				c.log.Info("redis reachable again: replicas in sync")
			} else {
				c.log.Info("redis connected: sharing state with the other replicas", "replica", c.id)
			}
			down, first = false, false
			c.up.Store(true)
		}
		c.readyOnce.Do(func() { close(c.ready) })
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

func (c *Cluster) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	now := c.clock.Now()
	key := c.prefix + "replicas"
	var card *redis.IntCmd
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: c.id})
		p.ZRemRangeByScore(ctx, key, "-inf", fmt.Sprint(now.Add(-replicaTTL).UnixMilli()))
		card = p.ZCard(ctx, key)
		p.PExpire(ctx, key, 10*replicaTTL)
		return nil
	})
	if err != nil {
		return err
	}
	c.replicas.Store(card.Val())
	return nil
}

// markDown notes a failed round trip; the watcher confirms and logs it.
func (c *Cluster) markDown(err error) {
	if c.up.CompareAndSwap(true, false) {
		c.outages.Inc()
		c.log.Error("redis unreachable: serving on local state and limits until it returns", "err", err)
	}
}

// sweep gives idle limiter leases back.
func (c *Cluster) sweep(ctx context.Context) {
	t := c.clock.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		if !c.up.Load() {
			continue
		}
		now := c.clock.Now()
		c.sweepers.Range(func(_, v any) bool {
			sctx, cancel := context.WithTimeout(ctx, opTimeout)
			v.(limit.Sweeper).Sweep(sctx, now)
			cancel()
			return true
		})
	}
}

// countHook counts round trips, so a benchmark can show there are none on
// the request path.
type countHook struct{ c *Cluster }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.roundTrips.Add(1)
		h.c.commands.Inc()
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.roundTrips.Add(1)
		h.c.commands.Inc()
		return next(ctx, cmds)
	}
}
