package relay

import (
	"context"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/tracing"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// startSpan opens the attempt's client span under the request's, named
// and attributed after the GenAI semantic conventions. Only ids, names and
// counts go in: never a key, a token or a body.
func (a *attempt) startSpan(ctx context.Context) context.Context {
	c, m := a.call, &a.a.Deployment.Model
	op := tracing.Operation(c.Dialect, c.Path)
	ctx, a.span = a.relay.Tracer.Start(ctx, op+" "+m.UpstreamName(), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", op),
			attribute.String("gen_ai.system", m.Provider),
			attribute.String("gen_ai.provider.name", m.Provider),
			attribute.String("gen_ai.request.model", m.UpstreamName()),
			attribute.String("keygate.model", a.group),
			attribute.Int("keygate.attempt", a.n),
			attribute.Bool("keygate.stream", c.Stream),
		))
	return ctx
}

// traceAnswer notes the model the provider says answered.
func (a *attempt) traceAnswer(body []byte) {
	if a.span == nil || !a.span.IsRecording() {
		return
	}
	if m := gjson.GetBytes(body, "model"); m.Type == gjson.String && m.Str != "" {
		a.span.SetAttributes(attribute.String("gen_ai.response.model", m.Str))
	}
}

// endSpan closes the attempt's span with how it went.
func (a *attempt) endSpan(res result, rec *keygate.UsageRecord) {
	s := a.span
	// A hedge that won makes the answer its key's and its attempt number.
	s.SetAttributes(attribute.String("keygate.key_id", a.a.Key().ID), attribute.Int("keygate.attempt", a.n))
	if a.status != 0 {
		s.SetAttributes(attribute.Int("http.response.status_code", a.status))
	}
	if res.delivered {
		s.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", rec.PromptTokens),
			attribute.Int("gen_ai.usage.output_tokens", rec.CompletionTokens))
	} else if res.fail != nil {
		class := string(res.fail.verdict.Class)
		s.SetAttributes(attribute.String("keygate.error_class", class), attribute.String("error.type", class))
		s.SetStatus(codes.Error, class)
	}
	s.End()
}
