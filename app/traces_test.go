package app_test

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP collector: it decodes every
// ExportTraceServiceRequest posted to /v1/traces and keeps the spans.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts int
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collector.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("not an ExportTraceServiceRequest: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.posts++
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *otlpReceiver) received() (int, []*tracepb.Span) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.posts, append([]*tracepb.Span(nil), rc.spans...)
}

func attrs(s *tracepb.Span) map[string]*common.AnyValue {
	m := map[string]*common.AnyValue{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerParent = "00f067aa0ba902b7"
	goodKey      = "sk-good-key-000000001"
	badKey       = "sk-revoked-key-000002"
)

// traceGateway is a gateway whose model fails over from a revoked key to a
// good one, as the mock provider answers them.
func traceGateway(t *testing.T, otelEndpoint string) (*gateway, *keygate.Model) {
	t.Helper()
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		goodKey: mockprovider.OK, badKey: mockprovider.InvalidKey,
	}}))
	t.Cleanup(provider.Close)
	cfg := baseConfig(t, t.TempDir())
	cfg.OTelEndpoint = otelEndpoint
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: provider.URL + "/v1",
		KeyUsageMode: keygate.ModeSingle, InputPrice: 1, OutputPrice: 2,
		APIKeys: []keygate.KeySpec{{Key: badKey}, {Key: goodKey}}}}
	return start(t, cfg), &cfg.Models[0]
}

func tracedCall(t *testing.T, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(chat))
	req.Header.Set("Authorization", "Bearer kg-app-test-secret")
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerParent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp
}

// A request that fails over is one server span continuing the caller's
// traceparent, with a client span per upstream attempt under it, named and
// attributed after the GenAI semantic conventions; no secret in any of it.
func TestTracesSpanPerRequestAndAttempt(t *testing.T) {
	rc := newOTLPReceiver(t)
	g, _ := traceGateway(t, rc.URL)
	resp := tracedCall(t, g.url)
	if resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("the request must fail over from the revoked key: attempts=%s", resp.Header.Get("X-Keygate-Attempts"))
	}
	keyID := resp.Header.Get("X-Keygate-Key")
	g.shutdown(t) // flushes the spans

	_, spans := rc.received()
	var request *tracepb.Span
	var tries []*tracepb.Span
	for _, s := range spans {
		for _, kv := range s.Attributes {
			text := kv.Value.String()
			for _, secret := range []string{goodKey, badKey, "kg-app-test-secret", "kg-admin-test-secret", "Bearer"} {
				if strings.Contains(text, secret) {
					t.Errorf("span %q attribute %s carries a secret: %s", s.Name, kv.Key, text)
				}
			}
		}
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			request = s
		case tracepb.Span_SPAN_KIND_CLIENT:
			tries = append(tries, s)
		}
	}
	if request == nil || len(tries) != 2 {
		t.Fatalf("want one server span and two client spans, got %d spans: %v", len(spans), spans)
	}
	if request.Name != "chat gpt-4o-mini" {
		t.Errorf("request span named %q, want \"chat gpt-4o-mini\"", request.Name)
	}
	if got := hexID(request.TraceId); got != callerTrace {
		t.Errorf("request span trace id %s, want the caller's %s", got, callerTrace)
	}
	if got := hexID(request.ParentSpanId); got != callerParent {
		t.Errorf("request span parent %s, want the caller's span %s", got, callerParent)
	}
	ra := attrs(request)
	if ra["gen_ai.request.model"].GetStringValue() != "gpt-4o-mini" || ra["http.response.status_code"].GetIntValue() != 200 ||
		ra["keygate.key_id"].GetStringValue() != keyID {
		t.Errorf("request span attributes: %v", request.Attributes)
	}
	for _, s := range tries {
		if hexID(s.TraceId) != callerTrace || string(s.ParentSpanId) != string(request.SpanId) {
			t.Errorf("attempt span %q is not a child of the request span", s.Name)
		}
		a := attrs(s)
		for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.system": "openai",
			"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"} {
			if got := a[k].GetStringValue(); got != want {
				t.Errorf("attempt %q: %s = %q, want %q", s.Name, k, got, want)
			}
		}
		if s.Name != "chat gpt-4o-mini" {
			t.Errorf("attempt span named %q", s.Name)
		}
		switch a["keygate.attempt"].GetIntValue() {
		case 1:
			if a["keygate.error_class"].GetStringValue() != "authentication_error" || a["http.response.status_code"].GetIntValue() != 401 {
				t.Errorf("the failed attempt must say why: %v", s.Attributes)
			}
			if a["keygate.key_id"].GetStringValue() == "" || a["keygate.key_id"].GetStringValue() == keyID {
				t.Errorf("the failed attempt must name the revoked key's id: %v", a["keygate.key_id"])
			}
			if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("the failed attempt's status is %v", s.Status)
			}
		case 2:
			if _, failed := a["keygate.error_class"]; failed || a["http.response.status_code"].GetIntValue() != 200 {
				t.Errorf("the good attempt: %v", s.Attributes)
			}
			if a["keygate.key_id"].GetStringValue() != keyID {
				t.Errorf("attempt 2 key_id %v, want X-Keygate-Key %s", a["keygate.key_id"], keyID)
			}
			if a["gen_ai.usage.input_tokens"].GetIntValue() <= 0 || a["gen_ai.usage.output_tokens"].GetIntValue() <= 0 ||
				a["gen_ai.response.model"].GetStringValue() == "" {
				t.Errorf("the good attempt must carry usage and the answering model: %v", s.Attributes)
			}
		default:
			t.Errorf("attempt span with keygate.attempt %v", a["keygate.attempt"])
		}
	}
}

// The standard OTEL_EXPORTER_OTLP_ENDPOINT is honoured when otel_endpoint
// is not set.
func TestTracesStandardEndpoint(t *testing.T) {
	rc := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL)
	g, _ := traceGateway(t, "")
	tracedCall(t, g.url)
	g.shutdown(t)
	if _, spans := rc.received(); len(spans) != 3 {
		t.Fatalf("want the request's 3 spans through OTEL_EXPORTER_OTLP_ENDPOINT, got %d", len(spans))
	}
}

// With neither set, nothing is exported, even for a caller's traceparent.
func TestTracesOff(t *testing.T) {
	rc := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	g, _ := traceGateway(t, "")
	tracedCall(t, g.url)
	g.shutdown(t)
	if posts, _ := rc.received(); posts != 0 {
		t.Fatalf("traces off, but %d exports arrived", posts)
	}
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
