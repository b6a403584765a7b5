package server_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingExporter drops spans, counting them.
type countingExporter struct{ n atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	e.n.Add(int64(len(s)))
	return nil
}
func (e *countingExporter) Shutdown(context.Context) error { return nil }

// BenchmarkRelayTraces is BenchmarkRelay with traces off (as keygate runs
// with no otel_endpoint: its allocs/op must equal BenchmarkRelay's) and on,
// every request sampled, to show what a span per request and per attempt
// costs.
func BenchmarkRelayTraces(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchRelay(b, false, nil, tracing.Off().Tracer()) })
	b.Run("on", func(b *testing.B) {
		exp := &countingExporter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		benchRelay(b, false, nil, tp.Tracer(tracing.Name))
		tp.Shutdown(context.Background())
		if exp.n.Load() < int64(2*b.N) {
			b.Fatalf("%d spans for %d requests: want a request span and an attempt span each", exp.n.Load(), b.N)
		}
	})
}
