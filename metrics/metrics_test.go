package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
)

// TestBoundChildrenCount checks that the per-model children bound on first
// use count into the same series as the vectors would.
func TestBoundChildrenCount(t *testing.T) {
	m := New(pool.New(keygate.NewKeyHasher(nil), keygate.DefaultKeyPolicy()), clockwork.NewFakeClock())
	for range 3 {
		m.Attempt("a", "", time.Millisecond)
		m.Request(&keygate.UsageRecord{Model: "a", Status: 200, PromptTokens: 2, CompletionTokens: 5, Cost: 0.5}, 0)
	}
	m.Attempt("a", "rate_limit_exceeded", time.Millisecond)
	m.Request(&keygate.UsageRecord{Model: "b", Status: 429}, 0)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`keygate_requests_total{model="a",status="200"} 3`,
		`keygate_requests_total{model="b",status="429"} 1`,
		`keygate_upstream_attempts_total{class="ok",model="a"} 3`,
		`keygate_upstream_attempts_total{class="rate_limit_exceeded",model="a"} 1`,
		`keygate_tokens_total{kind="completion",model="a"} 15`,
		`keygate_cost_usd_total{model="a"} 1.5`,
		`keygate_request_duration_seconds_count{model="a"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// BenchmarkRequest is what metrics cost a request: one attempt and one
// finished request.
func BenchmarkRequest(b *testing.B) {
	m := New(pool.New(keygate.NewKeyHasher(nil), keygate.DefaultKeyPolicy()), clockwork.NewRealClock())
	rec := &keygate.UsageRecord{Model: "gpt-4o-mini", Status: 200, PromptTokens: 12, CompletionTokens: 16, Cost: 0.00001, LatencyMS: 3, TTFTMS: 2}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Attempt(rec.Model, "", time.Millisecond)
			m.Request(rec, time.Millisecond)
		}
	})
}
