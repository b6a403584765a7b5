package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/sse"
)

// stream relays a streamed answer. Nothing reaches the caller until the
// first event the caller is to see: before it, an upstream that ends,
// breaks, stalls or sends an error event is a failure like any other and
// the loop fails over. The first event commits the stream, and the key's
// success is reported then. After it, events are relayed as the adapter
// translates them and flushed whenever the upstream has nothing more
// buffered; a stall past StreamIdle ends the stream.
func (a *attempt) stream(ctx, actx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, ad provider.Adapter, resp *http.Response, started time.Time, rec *keygate.UsageRecord) result {
	r, c := a.relay, a.call
	idle := durationOr(r.StreamIdle, 2*time.Minute)
	timer := r.Clock.AfterFunc(idle, func() { cancel(errIdle) })
	defer timer.Stop()
	rd := sse.NewReader(&idleReader{r: resp.Body, reset: func() { timer.Reset(idle) }})
	defer rd.Release()
	st := ad.Stream(&c.Request)
	buf := getBuffer()
	defer putBuffer(buf)
	rc := http.NewResponseController(w)

	scratch := buf.Bytes()[:0] // grown once, reused by every event
	committed := false
	var res result
	for {
		ev, err := rd.Next()
		if err != nil {
			if !committed {
				return a.streamFailure(ctx, actx, err)
			}
			switch {
			case errors.Is(err, io.EOF):
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
		out, f := st.Event(ev, scratch[:0])
		scratch = out
		if f != nil {
			if !committed {
				return a.judge(ctx, ad, provider.Target{Model: &a.a.Deployment.Model, Secret: a.a.Key().Secret()}, *f)
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
		if rd.Buffered() == 0 {
			if ferr := rc.Flush(); ferr != nil {
				rec.Status = statusClientClosed
				break
			}
		}
	}
	if end := st.End(scratch[:0]); len(end) > 0 && rec.Status < 400 {
		w.Write(end)
	}
	rc.Flush()
	a.usage(st.Usage(), st.Text(), rec)
	return res
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

// idleReader tells its owner whenever bytes arrive, to push back the
// stream's idle deadline.
type idleReader struct {
	r     io.Reader
	reset func()
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.reset()
	}
	return n, err
}
