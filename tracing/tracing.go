// Package tracing sets up OpenTelemetry traces (SPEC section 7): OTLP over
// HTTP to otel_endpoint, or to OTEL_EXPORTER_OTLP_ENDPOINT, or nowhere.
// With neither set nothing is installed and the request path pays nothing.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate/provider"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of keygate's spans.
const Name = "github.com/keygate/keygate"

// Tracing is keygate's tracer, or none.
type Tracing struct {
	provider *sdktrace.TracerProvider // nil: traces are off
	tracer   trace.Tracer
}

// Off is tracing that records nothing.
func Off() *Tracing { return &Tracing{} }

// New exports traces to endpoint (a base URL such as
// http://collector:4318; /v1/traces is added), or, when endpoint is empty,
// to OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as
// the OpenTelemetry SDK reads them. Neither set: traces are off.
func New(ctx context.Context, endpoint string) (*Tracing, error) {
	var opts []otlptracehttp.Option
	switch {
	case endpoint != "":
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("otel_endpoint %q is not an http(s) URL", endpoint)
		}
		u.Path = strings.TrimRight(u.Path, "/") + "/v1/traces"
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "":
		return Off(), nil
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "keygate")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)), sdktrace.WithResource(res))
	return &Tracing{provider: tp, tracer: tp.Tracer(Name)}, nil
}

// Tracer is the tracer to start spans with; nil when traces are off, so
// that callers skip even the no-op tracer's context allocation.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// Propagator reads the caller's traceparent.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Shutdown sends the spans still buffered and stops exporting.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Operation is a relayed route's gen_ai.operation.name (GenAI semantic
// conventions): chat, embeddings, text_completion, else the route's path.
func Operation(dialect provider.Dialect, path string) string {
	switch dialect {
	case provider.DialectChat, provider.DialectMessages, provider.DialectResponses:
		return "chat"
	case provider.DialectEmbeddings:
		return "embeddings"
	case provider.DialectCompletions:
		return "text_completion"
	}
	return path
}
