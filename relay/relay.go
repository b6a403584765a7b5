// Package relay is keygate's provider-neutral attempt loop. For one caller
// request it chooses a key from the pool, has the deployment's provider
// adapter (package provider) build the upstream call, runs it, and decides
// once what the outcome means: deliver, answer the caller, or try another
// key. Every attempt ends in exactly one outcome, reported to the pool and
// published to the subscribers (metrics, logs, and whoever else listens).
//
// The loop knows no wire format: adding a provider adds an adapter and
// changes nothing here. Bodies are read only as far as the adapter must
// (gjson), never decoded and re-encoded whole.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/respond"
	"go.opentelemetry.io/otel/trace"
)

// Recorder takes usage records off the request path (see package usage).
type Recorder interface {
	Record(keygate.UsageRecord) error
}

// Relay forwards calls to providers.
type Relay struct {
	Pool *pool.Pool
	// Client's Transport carries the upstream calls. Redirects are never
	// followed: a redirect would carry the key to another address.
	Client   *http.Client
	Recorder Recorder
	Logger   *slog.Logger
	Clock    clockwork.Clock
	// MaxResponseBytes caps a non-streaming answer read into memory; a
	// larger one is a 502 for the caller and charged to no key.
	MaxResponseBytes int64
	// FetchWait bounds how long a request waits for a key service when no
	// key of its model is valid at all (default 30 s).
	FetchWait time.Duration
	// BodyTimeout bounds reading a non-streamed answer once its headers
	// arrived (default 2 min); past it the attempt fails over.
	BodyTimeout time.Duration
	// StreamIdle ends a stream whose provider sent nothing for this long
	// (default 2 min): before its first event it fails over, after it the
	// stream ends and the record says 504.
	StreamIdle time.Duration
	// Metrics, if set, observes every attempt and request.
	Metrics *metrics.Metrics
	// Tracer, if set, makes each upstream attempt a span, a child of the
	// request's span (package tracing); nil: traces are off.
	Tracer trace.Tracer
	// Subscribers get every attempt's outcome, on the request path: they
	// must not block (wrap a slow one in a Queue).
	Subscribers []Subscriber
	// Pacing keeps keys under their rate limits (pace.go).
	Pacing Pacing

	hedges    sync.Map  // model id → *pace.HedgeCap (hedge.go)
	deadlines sync.Pool // *deadline (deadline.go)

	subsOnce sync.Once
	subs     []Subscriber
	confirms confirmations
}

// Call is one client request, already authenticated and parsed.
type Call struct {
	provider.Request
	Group *pool.Group
	User  string
	Token string // the token's name
	Start time.Time
	// Cost is what the request is expected to take of a key's limits.
	Cost pace.Cost
	// NoHedge is set when the caller marked the request non-idempotent:
	// it is never sent twice.
	NoHedge bool
	// Admit, if set, is asked before the request moves to a fallback
	// model; false skips that model (its own limits refused).
	Admit func(g *pool.Group) bool

	waited    time.Duration // spent waiting on providers' answers, for the overhead metric
	refetched bool          // a rejected fetched key was replaced once already
	hold      held          // the reservation of the attempt in progress
	tried     *[]*pool.Key  // keys the request has tried, for a hedge's second key

	// Serve's working state lives in the Call, which is on the heap
	// already: as locals they escaped, four allocations a request.
	triedBuf [8]*pool.Key
	triedS   []*pool.Key
	pick     pool.Attempt
	at       attempt
}

// NewTransport returns the transport for upstream calls: many idle
// connections per provider, so a busy gateway reuses them instead of dialling.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = responseHeaderTimeout
	// The write buffer only gathers a request's headers (a body larger
	// than it goes straight to the socket), and every open stream holds
	// one: 1 KiB instead of 4 saves 30 MB at 10,000 streams.
	t.WriteBufferSize = 1 << 10
	return t
}

func (r *Relay) transport() http.RoundTripper {
	if r.Client != nil && r.Client.Transport != nil {
		return r.Client.Transport
	}
	return http.DefaultTransport
}

// Serve relays c and writes the answer to w. Each attempt goes to a key the
// request has not tried yet; a failure another key may not repeat moves on,
// up to max_retries further keys (network errors have a budget of their
// own), then to the model's fallbacks.
//
// It returns the record it wrote, so the caller can settle limits and
// budgets with the real usage.
func (r *Relay) Serve(w http.ResponseWriter, req *http.Request, c *Call) (rec keygate.UsageRecord) {
	ctx := req.Context()
	policy := r.Pool.Policy()
	rec = keygate.UsageRecord{
		RequestID: c.RequestID, User: c.User, Token: c.Token,
		Model: c.Group.ID, Stream: c.Stream,
	}
	defer func() {
		rec.Time = c.Start
		rec.LatencyMS = r.Clock.Since(c.Start).Milliseconds()
		r.Recorder.Record(rec)
		r.Metrics.Request(&rec, c.waited)
	}()

	c.triedS = c.triedBuf[:0]
	var last *failure
	var paced time.Duration // when room comes back, if pacing is why no key was left
	attempts := 0
	groups := r.groups(c.Group)
	c.tried = &c.triedS
	a := &c.pick
	for i, g := range groups {
		if i > 0 && c.Admit != nil && !c.Admit(g) {
			continue
		}
		keyFails, netFails := 0, 0
		waited := false
		for keyFails <= policy.MaxRetries && netFails <= policy.NetworkRetries {
			var ok bool
			*a, ok = g.Pick(c.triedS, r.Clock.Now().UnixNano())
			if !ok && !waited && attempts == 0 {
				waited = true
				if r.waitForFetchedKey(ctx, g) {
					*a, ok = g.Pick(c.triedS, r.Clock.Now().UnixNano())
				}
			}
			c.hold = held{}
			if !ok {
				var wait time.Duration
				*a, c.hold, wait, ok = r.waitForRoom(ctx, g, c.triedS, c)
				if wait > 0 && (paced == 0 || wait < paced) {
					paced = wait
				}
			}
			if !ok {
				break
			}
			if !c.hold.live {
				var wait time.Duration
				if *a, c.hold, wait, ok = r.reserveOrWait(ctx, g, c.triedS, c, *a); !ok {
					if wait > 0 && (paced == 0 || wait < paced) {
						paced = wait
					}
					break
				}
			}
			k := a.Key()
			c.triedS = append(c.triedS, k)
			var res result
			for {
				attempts++
				rec.Attempts, rec.KeyID, rec.UpstreamModel, rec.Model = attempts, k.ID, a.Deployment.Model.UpstreamName(), g.ID
				c.at = attempt{relay: r, call: c, a: a, n: attempts, group: g.ID}
				at := &c.at
				res = at.run(ctx, w, &rec)
				at.report(res.outcome) // no-op if the attempt reported already (a committed stream)
				// A hedge may have made it two attempts, and the second key's.
				attempts, rec.Attempts, rec.KeyID = at.n, at.n, a.Key().ID
				if !res.again {
					break
				}
			}
			if res.delivered {
				r.settleUsed(&c.hold, rec.PromptTokens, rec.CompletionTokens)
				return rec
			}
			f := res.fail
			r.settle(&c.hold, false, f.verdict)
			last = f
			switch {
			case f.verdict.Class == health.ClassCanceled:
				if errors.Is(context.Cause(ctx), ErrShutdown) {
					r.cutByShutdown(w, c, a, &rec)
					return rec
				}
				rec.Status = statusClientClosed
				return rec
			case f.stop || !f.verdict.Failover:
				rec.Status = f.status
				f.write(w)
				return rec
			case f.verdict.Class == health.ClassNetwork:
				netFails++
			default:
				keyFails++
			}
		}
	}
	if last != nil {
		rec.Status = last.status
		last.write(w)
		return rec
	}
	rec.Status = http.StatusServiceUnavailable
	r.noAvailableKey(w, c.Group, groups, paced)
	return rec
}

// groups is the model's group followed by its fallbacks that exist.
func (r *Relay) groups(g *pool.Group) []*pool.Group {
	if len(g.Fallbacks) == 0 {
		return []*pool.Group{g}
	}
	out := []*pool.Group{g}
	for _, name := range g.Fallbacks {
		if fb := r.Pool.Group(name); fb != nil && fb != g {
			out = append(out, fb)
		}
	}
	return out
}

// waitForFetchedKey waits, when no key of the group is usable, for a key
// service of the group to install a valid key. It is the only time a
// request waits for a fetch: with a valid key or a backup it never does.
func (r *Relay) waitForFetchedKey(ctx context.Context, g *pool.Group) bool {
	for _, d := range g.Deployments {
		if d.Fetched == nil {
			continue
		}
		if ref := d.Fetched.Key.Refresher(); ref != nil {
			wctx, cancel := context.WithTimeout(ctx, durationOr(r.FetchWait, 30*time.Second))
			err := ref.Wait(wctx)
			cancel()
			if err == nil {
				return true
			}
		}
	}
	return false
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// noAvailableKey answers 503 with Retry-After set to the soonest moment a
// key of the model (or of a fallback) comes back.
func (r *Relay) noAvailableKey(w http.ResponseWriter, g *pool.Group, groups []*pool.Group, paced time.Duration) {
	now := r.Clock.Now()
	var soonest time.Time
	for _, gr := range groups {
		if at, ok := gr.RecoversAt(now.UnixNano()); ok && (soonest.IsZero() || at.Before(soonest)) {
			soonest = at
		}
	}
	if paced > 0 && (soonest.IsZero() || !soonest.After(now)) {
		// Healthy keys, all out of room: room is what comes back first.
		w.Header().Set("Retry-After", respond.RetryAfterSeconds(paced))
		respond.Error(w, r.Logger, keygate.Errorf(keygate.ENoAvailableKey,
			"every key of model %s is at its provider's rate limit; room comes back in %s", g.ID, paced.Round(time.Millisecond)))
		return
	}
	if !soonest.IsZero() {
		w.Header().Set("Retry-After", respond.RetryAfterSeconds(soonest.Sub(now)))
	}
	respond.Error(w, r.Logger, keygate.Errorf(keygate.ENoAvailableKey, "every key of model %s is cooling down or disabled", g.ID))
}

// statusClientClosed is recorded when the caller hung up (nginx's 499).
const statusClientClosed = 499
