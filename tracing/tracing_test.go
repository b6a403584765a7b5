package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate/tracing"
)

// With no endpoint anywhere nothing is installed: no tracer to start
// spans with, and shutting down is a no-op.
func TestOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := tracing.New(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Tracer() != nil {
		t.Fatal("traces are off, but a tracer was installed")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// otel_endpoint is a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: spans go
// to its /v1/traces, and Shutdown sends the ones still buffered.
func TestEndpointIsABaseURL(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/otel/v1/traces" {
			t.Errorf("spans posted to %s", r.URL.Path)
		}
		posts.Add(1)
	}))
	defer srv.Close()
	tr, err := tracing.New(context.Background(), srv.URL+"/otel/")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(context.Background(), "chat gpt-4o-mini")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("Shutdown did not flush the buffered span")
	}
}

func TestRefusesABadEndpoint(t *testing.T) {
	for _, ep := range []string{"collector:4318", "grpc://collector:4317", "http://"} {
		if _, err := tracing.New(context.Background(), ep); err == nil {
			t.Errorf("otel_endpoint %q accepted", ep)
		}
	}
}
