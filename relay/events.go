package relay

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
)

// AttemptEvent is the outcome of one attempt, as published to subscribers:
// metrics and logs now; the dashboard's live view, replica sharing and
// pacing later. Subscribers must not keep the pointer.
type AttemptEvent struct {
	pool.Outcome
	RequestID     string
	Model         string // the model_id the attempt served (a fallback's, on a fallback)
	Provider      string
	UpstreamModel string
	KeyID         string
	Attempt       int // 1 for the request's first attempt
	Stream        bool
	Status        int // the provider's HTTP status; 0 when no answer came
	// Limits are the answer's rate-limit headers, read by the adapter.
	Limits provider.RateLimits
}

// Class is the failure's class, "" for a success.
func (e *AttemptEvent) Class() health.Class {
	if !e.Failed {
		return ""
	}
	return e.Verdict.Class
}

// Subscriber receives every attempt's outcome. OnAttempt runs on the
// request path and must return at once; a subscriber with real work to do
// wraps itself in a Queue. e is the attempt's own and valid only during
// the call: one that keeps it copies it, as Queue does.
type Subscriber interface {
	OnAttempt(e *AttemptEvent)
}

// SubscriberFunc adapts a function to Subscriber.
type SubscriberFunc func(e *AttemptEvent)

// OnAttempt implements Subscriber.
func (f SubscriberFunc) OnAttempt(e *AttemptEvent) { f(e) }

func (r *Relay) publish(e *AttemptEvent) {
	r.subsOnce.Do(func() {
		if r.Metrics != nil {
			r.subs = append(r.subs, metricsSubscriber{r.Metrics})
		}
		if r.Logger != nil {
			r.subs = append(r.subs, logSubscriber{r.Logger})
		}
		r.subs = append(r.subs, r.Subscribers...)
	})
	for _, s := range r.subs {
		s.OnAttempt(e)
	}
}

// metricsSubscriber counts attempts by class.
type metricsSubscriber struct{ m *metrics.Metrics }

func (s metricsSubscriber) OnAttempt(e *AttemptEvent) {
	s.m.Attempt(e.Model, string(e.Class()), e.Latency)
}

// logSubscriber logs every failed attempt once, with the stable keys.
type logSubscriber struct{ l *slog.Logger }

func (s logSubscriber) OnAttempt(e *AttemptEvent) {
	if !e.Failed || e.Verdict.Class == health.ClassCanceled {
		return
	}
	s.l.Warn("upstream attempt failed", "request_id", e.RequestID, "model", e.Model, "key_id", e.KeyID,
		"attempt", e.Attempt, "status", e.Status, "class", e.Verdict.Class, "charged", e.Verdict.Scope != health.ScopeNone,
		"reason", e.Verdict.Reason)
}

// Queue hands events to a slow subscriber on its own goroutine. When the
// subscriber falls behind by more than the queue holds, events are dropped
// (and counted) rather than slowing requests down.
type Queue struct {
	sub     Subscriber
	ch      chan AttemptEvent
	dropped atomic.Int64
}

// NewQueue returns a queue of size events in front of sub; call Run.
func NewQueue(sub Subscriber, size int) *Queue {
	return &Queue{sub: sub, ch: make(chan AttemptEvent, size)}
}

// OnAttempt implements Subscriber without blocking.
func (q *Queue) OnAttempt(e *AttemptEvent) {
	select {
	case q.ch <- *e:
	default:
		q.dropped.Add(1)
	}
}

// Dropped is how many events the subscriber missed.
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Run delivers events until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	for {
		select {
		case e := <-q.ch:
			q.sub.OnAttempt(&e)
		case <-ctx.Done():
			return
		}
	}
}
