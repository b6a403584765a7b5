// Package metrics exposes keygate's Prometheus metrics (SPEC section 7):
// requests, upstream attempts by failure class, key states, latency
// histograms (total, upstream, gateway overhead, time to first token),
// tokens, cost and key-service fetches (the last two read from the pool
// when scraped). Labels carry model names, classes
// and statuses only, never a key or a token.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records what the relay does. Its methods are safe for
// concurrent use and cost a few atomic operations.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	attempts *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	cost     *prometheus.CounterVec
	total    *prometheus.HistogramVec
	upstream *prometheus.HistogramVec
	overhead *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec

	stateChanges *prometheus.CounterVec

	models sync.Map // model → *modelMetrics
}

// modelMetrics are one model's children of the vectors, bound once: a
// request then costs one map lookup instead of a label hash per metric.
type modelMetrics struct {
	total, upstream, overhead, ttft prometheus.Observer
	prompt, completion, cost        prometheus.Counter
	statuses                        sync.Map // int → prometheus.Counter
	classes                         sync.Map // string → prometheus.Counter
}

func (m *Metrics) model(name string) *modelMetrics {
	if mm, ok := m.models.Load(name); ok {
		return mm.(*modelMetrics)
	}
	mm := &modelMetrics{
		total: m.total.WithLabelValues(name), upstream: m.upstream.WithLabelValues(name),
		overhead: m.overhead.WithLabelValues(name), ttft: m.ttft.WithLabelValues(name),
		prompt: m.tokens.WithLabelValues(name, "prompt"), completion: m.tokens.WithLabelValues(name, "completion"),
		cost: m.cost.WithLabelValues(name),
	}
	actual, _ := m.models.LoadOrStore(name, mm)
	return actual.(*modelMetrics)
}

func (mm *modelMetrics) status(vec *prometheus.CounterVec, model string, status int) prometheus.Counter {
	if c, ok := mm.statuses.Load(status); ok {
		return c.(prometheus.Counter)
	}
	c, _ := mm.statuses.LoadOrStore(status, vec.WithLabelValues(model, strconv.Itoa(status)))
	return c.(prometheus.Counter)
}

func (mm *modelMetrics) class(vec *prometheus.CounterVec, model, class string) prometheus.Counter {
	if c, ok := mm.classes.Load(class); ok {
		return c.(prometheus.Counter)
	}
	c, _ := mm.classes.LoadOrStore(class, vec.WithLabelValues(model, class))
	return c.(prometheus.Counter)
}

// Buckets from 1 ms to ~2 min: gateway overhead lives at the low end,
// whole completions at the high end.
var buckets = prometheus.ExponentialBuckets(0.001, 2, 18)

// New registers keygate's metrics; key states are read from p at scrape time.
func New(p *pool.Pool, clock clockwork.Clock) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keygate_requests_total",
		Help: "Client requests by model and HTTP status."}, []string{"model", "status"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keygate_upstream_attempts_total",
		Help: "Upstream attempts by model and outcome (ok or the failure class)."}, []string{"model", "class"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keygate_tokens_total",
		Help: "Tokens by model and kind (prompt or completion)."}, []string{"model", "kind"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keygate_cost_usd_total",
		Help: "Cost in USD by model."}, []string{"model"})
	hist := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{"model"})
	}
	m.total = hist("keygate_request_duration_seconds", "Whole request, as the caller sees it.")
	m.upstream = hist("keygate_upstream_duration_seconds", "Upstream attempts, from sending to the answer's headers.")
	m.overhead = hist("keygate_gateway_overhead_seconds", "Time to first byte less the time spent waiting on providers.")
	m.ttft = hist("keygate_time_to_first_token_seconds", "Time to the first byte (first event of a stream).")
	m.stateChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keygate_key_state_changes_total",
		Help: "Changes of key state made by this replica, by kind (cooled, disabled, healed, reset, operator_disabled, operator_enabled)."}, []string{"change"})
	m.reg.MustRegister(m.stateChanges)
	m.reg.MustRegister(m.requests, m.attempts, m.tokens, m.cost, m.total, m.upstream, m.overhead, m.ttft,
		&keyStates{pool: p, clock: clock,
			desc:    prometheus.NewDesc("keygate_keys", "Keys by status.", []string{"status"}, nil),
			fetches: prometheus.NewDesc("keygate_key_service_fetches_total", "Key-service fetches by key id and result.", []string{"key_id", "result"}, nil),
			expiry: prometheus.NewDesc("keygate_key_source_expires_in_seconds",
				"Time the current credential of each key source has left (0: none valid), by key id, type and state.", []string{"key_id", "type", "state"}, nil),
		})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Attempt counts one upstream attempt that took d to answer (class "" = ok).
func (m *Metrics) Attempt(model, class string, d time.Duration) {
	if m == nil {
		return
	}
	if class == "" {
		class = "ok"
	}
	mm := m.model(model)
	mm.class(m.attempts, model, class).Inc()
	mm.upstream.Observe(d.Seconds())
}

// Request records a finished request; waited is the time spent waiting
// on providers before the first byte reached the caller.
func (m *Metrics) Request(rec *keygate.UsageRecord, waited time.Duration) {
	if m == nil {
		return
	}
	mm := m.model(rec.Model)
	mm.status(m.requests, rec.Model, rec.Status).Inc()
	mm.total.Observe(float64(rec.LatencyMS) / 1000)
	if rec.Status < 400 && rec.Status != 0 {
		ttft := time.Duration(rec.TTFTMS) * time.Millisecond
		mm.ttft.Observe(ttft.Seconds())
		if o := ttft - waited; o >= 0 {
			mm.overhead.Observe(o.Seconds())
		}
	}
	if rec.PromptTokens > 0 {
		mm.prompt.Add(float64(rec.PromptTokens))
	}
	if rec.CompletionTokens > 0 {
		mm.completion.Add(float64(rec.CompletionTokens))
	}
	if rec.Cost > 0 {
		mm.cost.Add(rec.Cost)
	}
}

// keyStates counts keys by status when scraped, so the request path does
// no bookkeeping for it.
type keyStates struct {
	pool    *pool.Pool
	clock   clockwork.Clock
	desc    *prometheus.Desc
	fetches *prometheus.Desc
	expiry  *prometheus.Desc
}

func (k *keyStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- k.desc
	ch <- k.fetches
	ch <- k.expiry
}

func (k *keyStates) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{pool.StatusHealthy: 0, pool.StatusUnused: 0, pool.StatusWarning: 0,
		pool.StatusError: 0, pool.StatusCooldown: 0, pool.StatusDisabled: 0}
	now := k.clock.Now()
	for _, key := range k.pool.Keys() {
		counts[key.View(now).Status]++
		if r := key.Refresher(); r != nil {
			v := r.Describe()
			ch <- prometheus.MustNewConstMetric(k.fetches, prometheus.CounterValue, float64(v.Fetches), key.ID, "ok")
			ch <- prometheus.MustNewConstMetric(k.fetches, prometheus.CounterValue, float64(v.Failures), key.ID, "failed")
			ch <- prometheus.MustNewConstMetric(k.expiry, prometheus.GaugeValue, max(v.ExpiresAt.Sub(now).Seconds(), 0), key.ID, v.Type, v.State)
		}
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, float64(n), status)
	}
}
