package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/sse"
)

// stream relays a streamed answer. Nothing reaches the caller until the
// first event the caller is to see: before it, an upstream that ends,
// breaks, stalls or sends an error event is a failure like any other and
// the loop fails over. The first event commits the stream, and the key's
// success is reported then. After it, events are relayed as the adapter
// translates them, and what was written is flushed before each read of
// the upstream (deadline.go); a stall past StreamIdle ends the stream.
func (a *attempt) stream(ctx, actx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, ad provider.Adapter, resp *http.Response, started time.Time, rec *keygate.UsageRecord) result {
	r, c := a.relay, a.call
	idle := durationOr(r.StreamIdle, 2*time.Minute)
	rc := http.NewResponseController(w)
	dl := r.arm(idle, cancel)
	dl.src, dl.idle, dl.rc = resp.Body, idle, rc
	defer r.disarm(dl)
	rd := sse.NewReader(dl) // flushes what was written, then reads; bytes push the idle deadline back
	defer rd.Release()
	st := ad.Stream(&c.Request)
	buf := getBuffer()
	defer putBuffer(buf)

	scratch := buf.Bytes()[:0] // grown once, reused by every event
	committed, done := false, false
	var res result
	for {
		ev, err := rd.Next()
		if err != nil && dl.flushErr != nil {
			rec.Status = statusClientClosed // the caller is gone
			break
		}
		if err != nil {
			if !committed {
				return a.streamFailure(ctx, actx, err)
			}
			switch {
			case errors.Is(err, io.EOF):
				if !done && endsWithDone(a.a.Deployment.Model.Provider, c.Dialect) {
					// Recorded as the truncated stream it was, not a clean 200.
					rec.Status = http.StatusBadGateway
					r.Logger.Warn("stream ended without [DONE]", "request_id", c.RequestID, "model", a.group, "key_id", a.a.Key().ID)
				}
			case errors.Is(context.Cause(ctx), ErrShutdown):
				// Shutdown waited shutdown_timeout for this stream: end it with
				// an error event the caller's SDK raises, not a silent cut.
				rec.Status = http.StatusServiceUnavailable
				w.Write(shutdownEvent(c.Dialect))
			case ctx.Err() != nil:
				rec.Status = statusClientClosed
			case errors.Is(context.Cause(actx), errIdle):
				rec.Status = http.StatusGatewayTimeout
				r.Logger.Warn("stream stalled: ended", "request_id", c.RequestID, "model", a.group, "key_id", a.a.Key().ID, "idle", idle)
			default:
				// Headers are gone already; the caller sees a truncated stream.
				rec.Status = http.StatusBadGateway
				r.Logger.Warn("stream interrupted", "request_id", c.RequestID, "model", a.group, "err", netMessage(err, context.Cause(actx)))
			}
			break
		}
		if bytes.Equal(bytes.TrimSpace(ev.Data), doneData) {
			done = true
		}
		out, f := st.Event(ev, scratch[:0])
		scratch = out
		if f != nil {
			if !committed {
				return a.judge(ctx, ad, a.target(), *f)
			}
			rec.Status = http.StatusBadGateway
			r.Logger.Warn("stream ended by an error event", "request_id", c.RequestID, "model", a.group, "class", f.Verdict.Class)
			break
		}
		if len(out) == 0 {
			continue
		}
		if !committed {
			committed = true
			h := w.Header()
			provider.CopyAnswerHeaders(h, resp.Header)
			a.setHeaders(h)
			h.Del("Content-Length")
			w.WriteHeader(resp.StatusCode)
			rec.Status = resp.StatusCode
			rec.TTFTMS = r.Clock.Since(c.Start).Milliseconds()
			res = result{delivered: true, outcome: pool.Outcome{Time: r.Clock.Now(), Latency: r.Clock.Since(started)}}
			a.report(res.outcome)
		}
		if _, werr := w.Write(out); werr != nil {
			rec.Status = statusClientClosed
			break
		}
		dl.dirty = true // flushed before the next read of the upstream
	}
	if end := st.End(scratch[:0]); len(end) > 0 && rec.Status < 400 {
		w.Write(end)
	}
	rc.Flush()
	a.usage(st.Usage(), st.Text(), rec)
	if !st.Usage().Known && rec.Status >= 400 {
		rec.UsageSource = keygate.UsagePartial // what was relayed before the stream broke
	}
	return res
}

// ErrShutdown is the cause of the context of requests cut because shutdown
// waited shutdown_timeout for them (SPEC section 7).
var ErrShutdown = errors.New("keygate is shutting down")

const shutdownMessage = "keygate is shutting down: the stream was ended after shutdown_timeout"

// shutdownEvent is the error event that ends a stream cut by shutdown, in
// the caller's dialect, with the code a non-streamed request cut by
// shutdown gets too (cutByShutdown): SPEC's no_available_key.
func shutdownEvent(d provider.Dialect) []byte {
	caller := bridge.Caller(d)
	var name []byte
	if caller == dialect.Messages {
		name = []byte("error")
	}
	return sse.AppendEvent(nil, name, dialect.AppendError(nil, caller, http.StatusServiceUnavailable, keygate.ENoAvailableKey, "", shutdownMessage))
}

// cutByShutdown answers a non-streamed request that shutdown cut before
// its answer came (SPEC section 7): a complete error in the contract's
// shape, 503 no_available_key with Retry-After, since no key of this
// replica is available any more and another replica (or this one,
// restarted) can serve it; and a record marked partial, holding what was
// relayed: the prompt, counted by the tokenizer, and no completion.
func (r *Relay) cutByShutdown(w http.ResponseWriter, c *Call, a *pool.Attempt, rec *keygate.UsageRecord) {
	rec.Status = http.StatusServiceUnavailable
	countUsage(&c.Request, "", rec)
	rec.UsageSource = keygate.UsagePartial
	m := &a.Deployment.Model
	rec.Cost = float64(rec.PromptTokens) * m.InputPrice / 1e6
	a.Key().AddUsage(rec.PromptTokens, rec.CompletionTokens, rec.Cost)
	w.Header().Set("Retry-After", "1")
	respond.Error(w, r.Logger, keygate.Errorf(keygate.ENoAvailableKey,
		"keygate is shutting down: the request was ended after shutdown_timeout; retry it"))
}

var doneData = []byte("[DONE]")

// endsWithDone reports whether the upstream stream ends with data: [DONE]
// (OpenAI's chat and legacy completions; its Responses API does not), so
// one that stops without it was cut.
func endsWithDone(p string, d provider.Dialect) bool {
	return (p == "" || p == "openai" || p == "azure") && (d == provider.DialectChat || d == provider.DialectCompletions)
}

// streamFailure is a stream that ended before its first event.
func (a *attempt) streamFailure(ctx, actx context.Context, err error) result {
	if errors.Is(err, io.EOF) {
		v := health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: "the stream ended before its first event"}
		return a.failed(v, &failure{status: http.StatusBadGateway,
			msg: keygate.Errorf(keygate.EUpstream, "the provider's stream ended before its first event")})
	}
	if errors.Is(err, sse.ErrTooLarge) {
		v := health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: "a stream event over 8 MiB"}
		return a.failed(v, &failure{status: http.StatusBadGateway, msg: keygate.Errorf(keygate.EUpstream, "the provider sent a stream event over 8 MiB")})
	}
	return a.readFailure(ctx, actx, err)
}
