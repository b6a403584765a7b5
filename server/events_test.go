package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/relay"
)

type eventLog struct {
	mu sync.Mutex
	ev []relay.AttemptEvent
}

func (l *eventLog) OnAttempt(e *relay.AttemptEvent) {
	l.mu.Lock()
	l.ev = append(l.ev, *e)
	l.mu.Unlock()
}

func (l *eventLog) all() []relay.AttemptEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]relay.AttemptEvent(nil), l.ev...)
}

func TestOneOutcomePerAttempt(t *testing.T) {
	const broken = "sk-broken-key-0000001"
	log := &eventLog{}
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{broken: mockprovider.ServerError, healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				APIKeys: []keygate.KeySpec{{Key: broken}, {Key: healthyKey1}}}}
		},
		tune: func(r *relay.Relay) { r.Subscribers = append(r.Subscribers, log) },
	})
	for _, body := range []string{chatBody, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`} {
		resp := f.post(t, "/v1/chat/completions", appToken, body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
			t.Fatalf("%d attempts=%s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
		}
		readAll(resp)
		f.clock.Advance(60e9) // the broken key's cooldown ends: it is tried first again
	}
	ev := log.all()
	if len(ev) != 4 {
		t.Fatalf("two requests of two attempts each: want 4 events, got %d", len(ev))
	}
	for i, e := range ev {
		wantFail := i%2 == 0
		if e.Failed != wantFail || e.Attempt != i%2+1 || e.RequestID == "" || e.Model != "gpt-4o-mini" {
			t.Errorf("event %d: %+v", i, e)
		}
		if wantFail && (e.Class() != health.ClassInternal || e.Status != 500 || e.KeyID != f.pool.KeyID(broken)) {
			t.Errorf("event %d: want the broken key's internal_error, got %s %d %s", i, e.Class(), e.Status, e.KeyID)
		}
	}
	// The pool heard the same: one failure and one success per request.
	for key, want := range map[string][2]int64{broken: {0, 2}, healthyKey1: {2, 0}} {
		v := f.pool.Key(f.pool.KeyID(key)).View(f.clock.Now())
		if v.SuccessCount != want[0] || v.FailureCount != want[1] {
			t.Errorf("%s: %d successes, %d failures; want %v", keygate.Mask(key), v.SuccessCount, v.FailureCount, want)
		}
	}
}

func TestCallerHangingUpWhileTheAnswerIsReadIsChargedToNoKey(t *testing.T) {
	log := &eventLog{}
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{healthyKey1: mockprovider.OK},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: healthyKey1}}}}
		},
		tune: func(r *relay.Relay) { r.Subscribers = append(r.Subscribers, log) },
	})
	f.provider.SetFault(healthyKey1, mockprovider.FaultSilence)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+appToken)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return f.provider.Stalled() > 0 })
	cancel()
	<-done
	waitFor(t, func() bool { return len(f.rec.all()) == 1 && len(log.all()) == 1 })
	if r := f.rec.all()[0]; r.Status != 499 {
		t.Fatalf("recorded %d, want 499", r.Status)
	}
	if e := log.all()[0]; e.Class() != health.ClassCanceled || e.Verdict.Scope != health.ScopeNone {
		t.Fatalf("a hang-up is a cancellation charged to nobody: %+v", e)
	}
	if v := f.pool.Key(f.pool.KeyID(healthyKey1)).View(f.clock.Now()); v.Status != "unused" {
		t.Fatalf("the key is %s", v.Status)
	}
}

func readAll(resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			return
		}
	}
}
