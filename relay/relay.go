// Package relay forwards a client's request to a provider over a key from
// the pool, moves on to another key when one fails, and streams the answer
// back. It reads the body only as far as it must (gjson for usage, sjson to
// rename the model) and never decodes and re-encodes it whole.
package relay

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Recorder takes usage records off the request path (see package usage).
type Recorder interface {
	Record(keygate.UsageRecord) error
}

// Relay forwards calls to providers.
type Relay struct {
	Pool     *pool.Pool
	Client   *http.Client
	Recorder Recorder
	Logger   *slog.Logger
	Clock    clockwork.Clock
	// MaxResponseBytes caps a non-streaming answer read into memory.
	MaxResponseBytes int64
	// FetchWait bounds how long a request waits for a key service when no
	// key of its model is valid at all (default 30 s).
	FetchWait time.Duration
	// Metrics, if set, observes every attempt and request.
	Metrics *metrics.Metrics
}

// Endpoints, appended to a deployment's base URL.
const (
	EndpointChat       = "chat/completions"
	EndpointEmbeddings = "embeddings"
)

// Call is one client request, already authenticated and parsed.
type Call struct {
	Endpoint  string // "chat/completions" or "embeddings", appended to the base URL
	Group     *pool.Group
	Body      []byte
	Stream    bool
	RequestID string
	User      string
	Token     string // the token's name
	Start     time.Time
	// Admit, if set, is asked before the request moves to a fallback
	// model; false skips that model (its own limits refused).
	Admit func(g *pool.Group) bool

	hideUsage bool          // usage was asked for on the caller's behalf: strip that chunk
	replaced  bool          // a fetched key was replaced for this request already
	waited    time.Duration // spent waiting on providers' answers, for the overhead metric
}

// NewTransport returns the transport for upstream calls: many idle
// connections per provider, so a busy gateway reuses them instead of dialling.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = responseHeaderTimeout
	return t
}

// Serve relays c and writes the answer to w. Each attempt goes to a key the
// request has not tried yet; a failure the verdict says another key may not
// repeat moves on, up to max_retries further keys (network errors have a
// budget of their own), then to the model's fallbacks. Every outcome is
// reported to the pool and recorded.
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
	if c.Stream && c.Endpoint == EndpointChat && !gjson.GetBytes(c.Body, "stream_options.include_usage").Bool() {
		// Ask the provider for usage so the stream is billed; the extra
		// chunk is kept from this caller, who did not ask for it.
		if b, err := sjson.SetBytes(c.Body, "stream_options.include_usage", true); err == nil {
			c.Body, c.hideUsage = b, true
		}
	}

	var triedBuf [8]*pool.Key
	tried := triedBuf[:0]
	var last *failure
	attempts := 0
	groups := r.groups(c.Group)
	for i, g := range groups {
		if i > 0 && c.Admit != nil && !c.Admit(g) {
			continue
		}
		keyFails, netFails := 0, 0
		waited := false
		for keyFails <= policy.MaxRetries && netFails <= policy.NetworkRetries {
			a, ok := g.Pick(tried, r.Clock.Now().UnixNano())
			if !ok && !waited && attempts == 0 {
				waited = true
				if r.waitForFetchedKey(ctx, g) {
					a, ok = g.Pick(tried, r.Clock.Now().UnixNano())
				}
			}
			if !ok {
				break
			}
			k := a.Key()
			tried = append(tried, k)
			attempts++
			rec.Attempts, rec.KeyID, rec.UpstreamModel, rec.Model = attempts, k.ID, a.Deployment.Model.UpstreamName(), g.ID

			f, done := r.attempt(ctx, w, req, c, &a, &attempts, &rec)
			if done {
				return rec
			}
			last = f
			switch {
			case f.verdict.Class == health.ClassCanceled:
				rec.Status = statusClientClosed
				return rec
			case !f.verdict.Failover:
				rec.Status = f.status
				f.write(w, attempts)
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
		last.write(w, attempts)
		return rec
	}
	rec.Status = http.StatusServiceUnavailable
	r.noAvailableKey(w, c.Group, groups)
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

// attempt makes one try with one key. done is true when the answer was
// delivered to the caller; otherwise the failure says what went wrong.
// The secret is read once: a request keeps the key it started with even if
// a key service replaces it meanwhile.
func (r *Relay) attempt(ctx context.Context, w http.ResponseWriter, req *http.Request, c *Call, a *pool.Attempt, n *int, rec *keygate.UsageRecord) (*failure, bool) {
	k := a.Key()
	secret := k.Secret()
	started := r.Clock.Now()
	resp, err := r.send(ctx, req, c, a.Deployment, k, secret)
	took := r.Clock.Since(started)
	c.waited += took
	if err != nil {
		v := health.ClassifyErr(err, ctx.Err() != nil)
		r.Metrics.Attempt(c.Group.ID, string(v.Class), took)
		v.Reason = keygate.MaskIn(v.Reason, secret)
		r.Pool.Failed(a, r.Clock.Now(), v)
		if v.Class != health.ClassCanceled {
			r.Logger.Warn("upstream call failed", "request_id", c.RequestID, "model", c.Group.ID,
				"key_id", k.ID, "attempt", *n, "class", v.Class, "err", keygate.MaskIn(err.Error(), secret))
		}
		return &failure{status: http.StatusBadGateway, key: k, verdict: v,
			err: keygate.Errorf(keygate.EUpstream, "provider unreachable: %s", keygate.MaskIn(err.Error(), secret))}, false
	}
	if resp.StatusCode < 400 {
		if r.deliver(w, resp, c, a, *n, started, rec) {
			r.Metrics.Attempt(c.Group.ID, "", took)
			return nil, true
		}
		// The provider said 200 but sent something unusable, before
		// anything reached the caller: a provider fault like a 500.
		v := health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: "malformed response"}
		r.Metrics.Attempt(c.Group.ID, string(v.Class), took)
		r.Pool.Failed(a, r.Clock.Now(), v)
		return &failure{status: http.StatusBadGateway, key: k, verdict: v,
			err: keygate.Errorf(keygate.EUpstream, "provider returned a malformed response")}, false
	}
	f := readFailure(resp, k, secret)
	f.verdict = health.Classify(resp.StatusCode, resp.Header, f.body, r.Clock.Now())
	f.verdict.Reason = keygate.MaskIn(f.verdict.Reason, secret)
	r.Metrics.Attempt(c.Group.ID, string(f.verdict.Class), took)
	r.Logger.Warn("upstream error", "request_id", c.RequestID, "model", c.Group.ID, "key_id", k.ID,
		"attempt", *n, "status", resp.StatusCode, "class", f.verdict.Class)
	if k.Refresher() != nil && f.verdict.Scope == health.ScopeKey {
		if r.replaceFetched(ctx, c, a, secret) {
			*n++
			rec.Attempts = *n
			return r.attempt(ctx, w, req, c, a, n, rec)
		}
		return f, false
	}
	r.Pool.Failed(a, r.Clock.Now(), f.verdict)
	return f, false
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
			wctx, cancel := context.WithTimeout(ctx, r.fetchWait())
			err := ref.Wait(wctx)
			cancel()
			if err == nil {
				return true
			}
		}
	}
	return false
}

func (r *Relay) fetchWait() time.Duration {
	if r.FetchWait > 0 {
		return r.FetchWait
	}
	return 30 * time.Second
}

// noAvailableKey answers 503 with Retry-After set to the soonest moment a
// key of the model (or of a fallback) comes back.
func (r *Relay) noAvailableKey(w http.ResponseWriter, g *pool.Group, groups []*pool.Group) {
	now := r.Clock.Now()
	var soonest time.Time
	for _, gr := range groups {
		if at, ok := gr.RecoversAt(now.UnixNano()); ok && (soonest.IsZero() || at.Before(soonest)) {
			soonest = at
		}
	}
	if !soonest.IsZero() {
		secs := int(math.Ceil(soonest.Sub(now).Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	respond.Error(w, r.Logger, keygate.Errorf(keygate.ENoAvailableKey, "every key of model %s is cooling down or disabled", g.ID))
}

// statusClientClosed is recorded when the caller hung up (nginx's 499).
const statusClientClosed = 499
