package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/respond"
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
		body, err := readBody(w, r, d.MaxBodyBytes)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if !gjson.ValidBytes(body) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "request body is not valid JSON"))
			return
		}
		model, need, stream := topFields(body, required)
		if model.Type != gjson.String || model.Str == "" {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "missing required field: model (a string)"))
			return
		}
		if !need.Exists() {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "missing required field: %s", required))
			return
		}
		if stream.Exists() && stream.Type != gjson.True && stream.Type != gjson.False {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "field stream must be true or false"))
			return
		}
		g := d.Pool.Group(model.Str)
		if g == nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotFound, "The model `%s` does not exist", model.Str))
			return
		}
		if !caller.AllowsModel(model.Str) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotAllowed, "this token may not use model `%s`", model.Str))
			return
		}
		est := estimate(body, dialect, g)
		res, refused := limit.Reserve(start, est.tokens, est.cost, caller.limits(d.modelRates.limit(g))...)
		if refused != nil {
			limitRefused(w, d, refused)
			return
		}
		rec := d.Relay.Serve(w, r, &relay.Call{
			Request: provider.Request{
				Dialect: dialect, Path: path, Body: body, Model: model.Str, Stream: stream.Type == gjson.True,
				RequestID: w.Header().Get(requestIDHeader), Header: provider.ForwardHeaders(r.Header),
			},
			Group: g, User: caller.User, Token: caller.Name, Start: start,
			// A fallback model is tried only within its own limits.
			Admit: func(fb *pool.Group) bool { return res.Add(d.modelRates.limit(fb)) == nil },
		})
		res.Settle(d.Clock.Now(), rec.PromptTokens+rec.CompletionTokens, rec.Cost)
	})
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

func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}

// cost is what a request is expected to use before it runs: enough for
// limits and budgets to reserve. It leans high, so that concurrent requests
// cannot together spend much past a budget: the prompt at one token per
// three bytes, the reply at max_tokens (or the model's, or 1,024).
type cost struct {
	tokens int
	cost   float64
}

func estimate(body []byte, dialect provider.Dialect, g *pool.Group) cost {
	prompt := len(body)/3 + 1
	reply := 0
	if dialect == provider.DialectChat {
		reply = int(gjson.GetBytes(body, "max_tokens").Int())
		if reply == 0 {
			reply = int(gjson.GetBytes(body, "max_completion_tokens").Int())
		}
	}
	var in, out float64
	for _, d := range g.Deployments {
		in, out = max(in, d.Model.InputPrice), max(out, d.Model.OutputPrice)
		if reply == 0 && dialect == provider.DialectChat && d.Model.MaxTokens > 0 {
			reply = d.Model.MaxTokens
		}
	}
	if reply <= 0 && dialect == provider.DialectChat {
		reply = 1024 // also for a negative max_tokens: a reservation is never negative
	}
	return cost{tokens: prompt + reply, cost: (float64(prompt)*in + float64(reply)*out) / 1e6}
}

// topFields reads model, required and stream from the top level of a
// JSON object in one pass; the values it skips are not decoded.
func topFields(body []byte, required string) (model, need, stream gjson.Result) {
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case "stream":
			stream = v
		case required:
			need = v
		}
		return true
	})
	return model, need, stream
}

// readBody reads the whole body, refusing one over limit with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
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
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(limit)
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
			owner := "keygate"
			if g := d.Pool.Group(id); g != nil && len(g.Deployments) > 0 {
				owner = g.Deployments[0].Model.Provider
			}
			data = append(data, modelEntry{ID: id, Object: "model", OwnedBy: owner})
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

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
