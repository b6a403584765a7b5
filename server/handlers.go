package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/tracing"
	"github.com/tidwall/gjson"
)

// handleRelay authenticates the caller, reads the body within the size
// limit, reads only the fields it needs (model, stream, and that required
// is present) and relays the call.
func handleRelay(d Deps, dialect provider.Dialect, path, required string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := d.Clock.Now()
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		body, err := readBody(w, r, d.MaxBodyBytes, d.RequestReadTimeout)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		f, err := readFields(body, required)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		relayTo(d, w, r, caller, start, f.maxTokens, &relay.Call{Request: provider.Request{
			Dialect: dialect, Path: path, Body: body, Model: f.model.Str, Stream: f.stream.Type == gjson.True,
		}})
	})
}

// relayTo runs what every relayed route shares once its body is read: the
// model's group, the caller's right to it, whether its provider serves the
// route, limits and budget, the relay, and settling with the real usage.
// c carries the request; relayTo fills in the rest of the call (one
// allocation for the request, the call and the relay's working state).
func relayTo(d Deps, w http.ResponseWriter, r *http.Request, caller *Caller, start time.Time, maxTokens int, c *relay.Call) {
	req := &c.Request
	g := d.Pool.Group(req.Model)
	if g == nil {
		respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotFound, "The model `%s` does not exist", req.Model))
		return
	}
	if !caller.AllowsModel(req.Model) {
		respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotAllowed, "this token may not use model `%s`", req.Model))
		return
	}
	if !servesRoute(g, req.Dialect) {
		respond.Error(w, d.Logger, keygate.Errorf(keygate.EUnsupportedEndpoint, "model `%s` is served by a provider (%s) that has no /v1/%s endpoint",
			req.Model, g.Deployments[0].Model.Provider, req.Path))
		return
	}
	if err := translatable(g, req); err != nil {
		respond.Error(w, d.Logger, err)
		return
	}
	est := estimate(req.Body, req.Dialect, maxTokens, g)
	var lbuf [2]limit.Limit
	res, refused := limit.Reserve(start, est.tokens, est.cost, caller.limits(&lbuf, d.modelRates.limit(g))...)
	rateHeaders(w.Header(), caller.rate, start)
	if refused != nil {
		limitRefused(w, d, refused)
		return
	}
	req.RequestID, req.Header = w.Header().Get(requestIDHeader), provider.ForwardHeaders(r.Header)
	c.Group, c.User, c.Token, c.Start = g, caller.User, caller.Name, start
	c.Cost, c.NoHedge = pace.Cost{Input: est.prompt, Output: est.reply}, noHedge(r.Header)
	// A fallback model is tried only within its own limits. The closure
	// takes only what it uses: capturing d would copy Deps to the heap.
	rates := d.modelRates
	c.Admit = func(fb *pool.Group) bool { return res.Add(rates.limit(fb)) == nil }
	rec := d.Relay.Serve(w, r, c)
	res.Settle(d.Clock.Now(), rec.PromptTokens+rec.CompletionTokens, rec.Cost)
	traceRequest(r, tracing.Operation(req.Dialect, req.Path), req, &rec)
}

// limitRefused answers 429 for the limit that refused the request.
func limitRefused(w http.ResponseWriter, d Deps, ref *limit.Refusal) {
	if ref.Budget {
		respond.Error(w, d.Logger, keygate.Errorf(keygate.EBudgetExceeded, "%s", ref.Error()))
		return
	}
	retryAfter(w, ref.RetryAfter)
	respond.Error(w, d.Logger, keygate.Errorf(keygate.ERateLimit, "%s", ref.Error()))
}

// noHedge reports whether the caller marked the request as one that must
// not be sent twice (OpenAI's dialect has no such mark; this is keygate's).
func noHedge(h http.Header) bool {
	return strings.EqualFold(h.Get("X-Keygate-Idempotent"), "false")
}

func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", respond.RetryAfterSeconds(wait))
}

// cost is what a request is expected to use before it runs: enough for
// limits and budgets to reserve. It leans high, so that concurrent requests
// cannot together spend much past a budget: the prompt at one token per
// three bytes, the reply at max_tokens (or the model's, or 1,024).
type cost struct {
	tokens        int
	prompt, reply int
	cost          float64
}

func estimate(body []byte, dialect provider.Dialect, maxTokens int, g *pool.Group) cost {
	prompt := len(body)/3 + 1
	reply := 0
	generates := dialect == provider.DialectChat || dialect == provider.DialectMessages || dialect == provider.DialectResponses
	if generates {
		reply = maxTokens // checked: 0 (absent) or 1…maxReplyTokens, so a reservation is never negative
		if dialect == provider.DialectResponses && reply == 0 {
			reply = int(min(max(gjson.GetBytes(body, "max_output_tokens").Int(), 0), maxReplyTokens))
		}
	}
	var in, out float64
	for _, d := range g.Deployments {
		in, out = max(in, d.Model.InputPrice), max(out, d.Model.OutputPrice)
		if reply == 0 && generates && d.Model.MaxTokens > 0 {
			reply = d.Model.MaxTokens
		}
	}
	if reply == 0 && generates {
		reply = 1024
	}
	return cost{tokens: prompt + reply, prompt: prompt, reply: reply, cost: (float64(prompt)*in + float64(reply)*out) / 1e6}
}

// readBody reads the whole body, refusing one over limit with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	// A caller trickling its body must not hold a request (and its
	// goroutine and buffer) for ever; the deadline goes once it is read.
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	size := r.ContentLength
	if size < 0 || size > 1<<20 {
		size = 512
	}
	buf := make([]byte, 0, size+1)
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if deadline {
				rc.SetReadDeadline(time.Time{}) // a stream may run for long after this
			}
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(limit)
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// The rest of the body will not come: no draining it.
				w.Header().Set("Connection", "close")
				return nil, keygate.Errorf(keygate.EInvalidRequest, "the request body did not arrive within %s", timeout)
			}
			return nil, keygate.Errorf(keygate.EInvalidRequest, "could not read request body: %v", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

func tooLarge(limit int64) error {
	return keygate.Errorf(keygate.ERequestTooLarge, "request body is larger than the limit of %d bytes", limit)
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// handleModels lists the models the caller may use, in OpenAI's shape.
func handleModels(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		data := []modelEntry{}
		for _, id := range d.Pool.ModelIDs() {
			if !caller.AllowsModel(id) {
				continue
			}
			data = append(data, modelObject(d.Pool.Group(id), id))
		}
		respond.JSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	})
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 when the store answers and some key can serve.
func handleReadyz(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		problems := []string{}
		if d.Store != nil {
			if err := d.Store.Ping(ctx); err != nil {
				d.Logger.Warn("readyz: store unreachable", "err", err)
				problems = append(problems, "store unreachable")
			}
		}
		if !d.Pool.Usable(d.Clock.Now().UnixNano()) {
			problems = append(problems, "no usable key")
		}
		for _, check := range d.Ready {
			if p := check(); p != "" {
				problems = append(problems, p)
			}
		}
		if len(problems) > 0 {
			respond.JSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"status": "ready", "models": strconv.Itoa(len(d.Pool.ModelIDs()))})
	})
}

// handleNotFound answers a request no route took: 405 with Allow when the
// path exists for other methods, else 404, both in the error shape.
func handleNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			respond.Error(w, nil, keygate.Errorf(keygate.EMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		respond.Error(w, nil, keygate.Errorf(keygate.ENotFound, "no route %s %s", r.Method, r.URL.Path))
	})
}

// handleOwnUsage answers the caller's own totals (GET /api/v1/llm/usage).
func handleOwnUsage(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		q, err := admin.UsageQuery(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		q.GroupBy, q.Token = "", caller.Name
		totals, err := d.Usage.SumUsage(r.Context(), q)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		out := keygate.UsageTotal{}
		if len(totals) == 1 {
			out = totals[0]
		}
		respond.JSON(w, http.StatusOK, map[string]any{"requests": out.Requests, "prompt_tokens": out.PromptTokens,
			"completion_tokens": out.CompletionTokens, "total_tokens": out.TotalTokens, "cost": out.Cost})
	})
}
