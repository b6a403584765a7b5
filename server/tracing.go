package server

import (
	"net/http"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced makes each request to a relay route a server span continuing the
// caller's traceparent; relayTo names it after the model once it is read.
// With traces off the handler is returned as it is: nothing to pay.
func traced(d Deps, dialect provider.Dialect, path string, h http.Handler) http.Handler {
	tr := d.Tracer
	if tr == nil {
		return h
	}
	op := tracing.Operation(dialect, path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tr.Start(ctx, op, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("gen_ai.operation.name", op),
				attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// traceRequest puts what the relay did on the request's span.
func traceRequest(r *http.Request, op string, req *provider.Request, rec *keygate.UsageRecord) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(op + " " + req.Model)
	span.SetAttributes(
		attribute.String("gen_ai.request.model", req.Model),
		attribute.Int("gen_ai.usage.input_tokens", rec.PromptTokens),
		attribute.Int("gen_ai.usage.output_tokens", rec.CompletionTokens),
		attribute.String("keygate.key_id", rec.KeyID),
		attribute.Int("keygate.attempts", rec.Attempts),
		attribute.String("keygate.request_id", rec.RequestID),
	)
	if rec.UpstreamModel != "" {
		span.SetAttributes(attribute.String("keygate.upstream_model", rec.UpstreamModel))
	}
}
