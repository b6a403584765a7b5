package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/respond"
	"go.opentelemetry.io/otel/trace"
)

// attempt is one try of a request with one key. It ends in exactly one
// outcome: report takes the first and ignores any later call.
type attempt struct {
	relay    *Relay
	call     *Call
	a        *pool.Attempt
	n        int
	group    string
	reported bool
	status   int // the upstream's status, 0 when none came
	meta     provider.Meta
	started  time.Time  // when the upstream call went out
	span     trace.Span // the attempt's span; nil when not traced
	ev       AttemptEvent
}

// result is what an attempt leaves for the loop to decide on.
type result struct {
	outcome   pool.Outcome
	delivered bool     // the answer reached the caller
	again     bool     // retry with the same key: its fetched secret was just replaced
	fail      *failure // set when not delivered
}

// failure is what the caller gets if no later attempt does better.
type failure struct {
	status     int
	body       []byte         // the provider's error body, masked; nil: msg instead
	msg        *keygate.Error // keygate's own words
	retryAfter string
	keyID      string
	attempts   int
	upstreamID string
	verdict    health.Verdict
	stop       bool // no other key can do better: answer now
}

func (a *attempt) report(o pool.Outcome) {
	if a.reported {
		return
	}
	a.reported = true
	r := a.relay
	r.Pool.Report(a.a, o)
	// The event lives in the attempt (in the Call, on the heap already):
	// subscribers get it for the call only.
	a.ev = AttemptEvent{
		Outcome: o, RequestID: a.call.RequestID, Model: a.group,
		Provider: a.a.Deployment.Model.Provider, UpstreamModel: a.a.Deployment.Model.UpstreamName(),
		KeyID: a.a.Key().ID, Attempt: a.n, Stream: a.call.Stream, Status: a.status, Limits: a.meta.Limits,
	}
	r.publish(&a.ev)
}

var errIdle = errors.New("the provider sent nothing for too long")

// run makes the attempt, as a span of its own when the request is traced.
func (a *attempt) run(ctx context.Context, w http.ResponseWriter, rec *keygate.UsageRecord) result {
	if a.relay.Tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return a.try(ctx, w, rec)
	}
	ctx = a.startSpan(ctx)
	res := a.try(ctx, w, rec)
	a.endSpan(res, rec)
	return res
}

func (a *attempt) try(ctx context.Context, w http.ResponseWriter, rec *keygate.UsageRecord) result {
	r, c := a.relay, a.call
	k := a.a.Key()
	secret := k.Secret() // a request keeps the key it started with, even if a key service replaces it
	ad := provider.For(a.a.Deployment.Model.Provider)
	t := provider.Target{Model: &a.a.Deployment.Model, Secret: secret, Bearer: k.Bearer()}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	out, err := provider.NewUpstreamRequest(actx, ad, &c.Request, t)
	if err != nil {
		v := health.Verdict{Class: health.ClassInternal, Scope: health.ScopeNone, Failover: true, Reason: "could not build the upstream request"}
		r.Logger.Error("build upstream request", "model", a.group, "key_id", k.ID, "err", keygate.MaskIn(err.Error(), secret))
		return a.failed(v, &failure{status: http.StatusBadGateway, msg: keygate.Errorf(keygate.EUpstream, "the deployment's base_url is not usable")})
	}
	started := r.Clock.Now()
	a.started = started
	resp, err, release := a.roundTrip(actx, out, &ad, &t) // hedge.go: a hedge's second key may answer
	defer release()
	k, secret = a.a.Key(), t.Secret
	took := r.Clock.Since(started)
	c.waited += took
	if err != nil {
		return a.networkFailure(ctx, actx, err, secret, took)
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	a.meta = ad.Meta(resp.Header, r.Clock.Now())

	if resp.StatusCode >= 300 {
		body, _ := a.read(actx, cancel, resp.Body, 64<<10, durationOr(r.BodyTimeout, 2*time.Minute))
		r.observe(a.a, &c.hold, resp.StatusCode, resp.Header, body) // pace.Parse reads the body only where limits are in it (Gemini's 429)
		f := ad.Failure(&c.Request, resp.StatusCode, resp.Header, body, r.Clock.Now())
		return a.judge(ctx, ad, t, f)
	}
	r.observe(a.a, &c.hold, resp.StatusCode, resp.Header, nil)
	if c.Stream && isEventStream(resp.Header) {
		return a.stream(ctx, actx, cancel, w, ad, resp, started, rec)
	}
	return a.answer(ctx, actx, cancel, w, ad, resp, started, rec)
}

// answer reads a non-streamed answer and delivers it.
func (a *attempt) answer(ctx, actx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, ad provider.Adapter, resp *http.Response, started time.Time, rec *keygate.UsageRecord) result {
	r, c := a.relay, a.call
	limit := r.MaxResponseBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	buf := getBuffer()
	defer putBuffer(buf)
	body, err := a.readInto(buf, actx, cancel, resp.Body, limit, durationOr(r.BodyTimeout, 2*time.Minute))
	switch {
	case errors.Is(err, errTooLarge):
		// Every key would get the same answer, and none is at fault.
		v := health.Verdict{Class: health.ClassClient, Scope: health.ScopeNone, Reason: "answer over the size limit"}
		return a.failed(v, &failure{status: http.StatusBadGateway, stop: true, msg: keygate.Errorf(keygate.EUpstream,
			"the provider's answer is larger than keygate's limit of %d bytes", limit)})
	case err != nil:
		return a.readFailure(ctx, actx, err)
	}
	out, u, f := ad.Answer(&c.Request, resp.StatusCode, resp.Header, body, r.Clock.Now())
	a.traceAnswer(body)
	if f != nil {
		return a.judge(ctx, ad, a.target(), *f)
	}
	h := w.Header()
	provider.CopyAnswerHeaders(h, resp.Header)
	a.setHeaders(h)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
	rec.Status = resp.StatusCode
	rec.TTFTMS = r.Clock.Since(c.Start).Milliseconds()
	a.usage(u, u.Reply, rec)
	return result{delivered: true, outcome: pool.Outcome{Time: r.Clock.Now(), Latency: r.Clock.Since(started)}}
}

// setHeaders sets keygate's answer headers from value slices made once
// (header names here are canonical already): a Set each was two
// allocations a request.
// target is the deployment and the key of the attempt's call that answered.
func (a *attempt) target() provider.Target {
	k := a.a.Key()
	return provider.Target{Model: &a.a.Deployment.Model, Secret: k.Secret(), Bearer: k.Bearer()}
}

func (a *attempt) setHeaders(h http.Header) {
	h["X-Keygate-Key"] = a.a.Key().IDHeader()
	h["X-Keygate-Attempts"] = attemptsHeader(a.n)
	if a.meta.RequestID != "" {
		h["X-Upstream-Request-Id"] = []string{a.meta.RequestID}
	}
}

// attemptsHeaders are the X-Keygate-Attempts values of the attempts most
// requests take.
var attemptsHeaders = func() (v [16][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

func attemptsHeader(n int) []string {
	if n >= 0 && n < len(attemptsHeaders) {
		return attemptsHeaders[n]
	}
	return []string{strconv.Itoa(n)}
}

// usage puts the answer's tokens and cost in the record and on the key,
// counting them with the offline tokenizer when the provider sent none.
func (a *attempt) usage(u provider.Usage, reply string, rec *keygate.UsageRecord) {
	if u.Known {
		rec.PromptTokens, rec.CompletionTokens = u.PromptTokens, u.CompletionTokens
		rec.UsageSource = keygate.UsageProvider
	} else {
		countUsage(&a.call.Request, reply, rec)
		rec.UsageSource = keygate.UsageEstimated
	}
	m := &a.a.Deployment.Model
	rec.Cost = (float64(rec.PromptTokens)*m.InputPrice + float64(rec.CompletionTokens)*m.OutputPrice) / 1e6
	a.a.Key().AddUsage(rec.PromptTokens, rec.CompletionTokens, rec.Cost)
}

// failed ends the attempt in a failure charged as v says.
func (a *attempt) failed(v health.Verdict, f *failure) result {
	f.verdict = v
	f.keyID, f.attempts, f.upstreamID = a.a.Key().ID, a.n, a.meta.RequestID
	o := pool.Outcome{Time: a.relay.Clock.Now(), Failed: true, Verdict: v}
	if !a.started.IsZero() {
		o.Latency = o.Time.Sub(a.started)
	}
	return result{fail: f, outcome: o}
}

// networkFailure is a call that got no answer: nobody's verdict on the key.
func (a *attempt) networkFailure(ctx, actx context.Context, err error, secret string, took time.Duration) result {
	v := health.ClassifyErr(err, ctx.Err() != nil)
	v.Reason = keygate.MaskIn(v.Reason, secret)
	if v.Class == health.ClassNetwork {
		v.Scope = health.ScopeNone
	}
	msg := "provider unreachable: " + netMessage(err, context.Cause(actx))
	return a.failed(v, &failure{status: http.StatusBadGateway, msg: keygate.Errorf(keygate.EUpstream, "%s", msg)})
}

// readFailure is an answer whose body could not be read to its end.
func (a *attempt) readFailure(ctx, actx context.Context, err error) result {
	if ctx.Err() != nil {
		return a.failed(health.Verdict{Class: health.ClassCanceled, Reason: "caller went away"}, &failure{status: statusClientClosed})
	}
	v := health.Verdict{Class: health.ClassNetwork, Scope: health.ScopeNone, Failover: true, Reason: "answer cut short: " + netMessage(err, context.Cause(actx))}
	return a.failed(v, &failure{status: http.StatusBadGateway,
		msg: keygate.Errorf(keygate.EUpstream, "the provider's answer was cut short: %s", netMessage(err, context.Cause(actx)))})
}

var errTooLarge = errors.New("answer over the size limit")

// read reads at most limit bytes of body within timeout.
func (a *attempt) read(actx context.Context, cancel context.CancelCauseFunc, body io.Reader, limit int64, timeout time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	b, err := a.readInto(&buf, actx, cancel, body, limit, timeout)
	if errors.Is(err, errTooLarge) {
		err = nil
	}
	return b, err
}

// readInto reads body into buf, up to limit bytes (errTooLarge past it),
// cancelling the attempt if it takes longer than timeout.
func (a *attempt) readInto(buf *bytes.Buffer, actx context.Context, cancel context.CancelCauseFunc, body io.Reader, limit int64, timeout time.Duration) ([]byte, error) {
	d := a.relay.arm(timeout, cancel)
	defer a.relay.disarm(d)
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err == nil && n > limit {
		return buf.Bytes()[:limit], errTooLarge
	}
	return buf.Bytes(), err
}

// netMessage names a transport failure without an address or a URL.
func netMessage(err, cause error) string {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(cause, errIdle):
		return "the provider stopped sending"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "the provider did not answer in time"
	}
	msg := err.Error()
	for _, m := range []struct{ has, say string }{
		{"connection refused", "the connection was refused"},
		{"connection reset", "the connection was reset"},
		{"no such host", "the provider's host name did not resolve"},
		{"tls:", "the TLS handshake failed"},
		{"x509:", "the provider's certificate was not accepted"},
		{"EOF", "the provider closed the connection"},
		{"server closed", "the provider closed the connection"},
	} {
		if bytes.Contains([]byte(msg), []byte(m.has)) {
			return m.say
		}
	}
	return "the provider could not be reached"
}

func isEventStream(h http.Header) bool {
	return bytes.HasPrefix([]byte(h.Get("Content-Type")), []byte("text/event-stream"))
}

func (f *failure) write(w http.ResponseWriter) {
	h := w.Header()
	if f.keyID != "" {
		h.Set("X-Keygate-Key", f.keyID)
		h.Set("X-Keygate-Attempts", strconv.Itoa(f.attempts))
	}
	if f.upstreamID != "" {
		h.Set("X-Upstream-Request-Id", f.upstreamID)
	}
	if f.retryAfter != "" {
		h.Set("Retry-After", f.retryAfter)
	}
	if f.body == nil {
		msg := f.msg
		if msg == nil {
			msg = keygate.Errorf(keygate.EUpstream, "the provider answered %d: %s", f.status, f.verdict.Reason)
		}
		respond.JSON(w, f.status, map[string]any{"error": map[string]any{
			"message": msg.Message, "type": "upstream_error", "code": msg.Code}})
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(f.status)
	w.Write(f.body)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }
func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		b.Reset()
		bufPool.Put(b)
	}
}
