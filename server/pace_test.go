package server_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

func (f *fixture) adminGet(t *testing.T, path string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+path, nil)
	req.Header.Set("Authorization", "Bearer kg-admin-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readJSON(t, resp)
}

// A pool driven past its keys' limits sees no 429 from the provider: the
// answers' rate-limit headers stop keygate first, and the caller gets 503
// with Retry-After when room is further away than max_queue_wait.
func TestPacingNeverHitsTheProviderLimit(t *testing.T) {
	var f *fixture
	now := func() time.Time { return f.clock.Now() }
	f = newFixture(t, setup{opts: mockprovider.Options{Limits: &mockprovider.Limits{RPM: 2, Now: now}}})
	for i := range 4 {
		if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i+1, resp.StatusCode, readJSON(t, resp))
		}
	}
	resp := f.post(t, "/v1/chat/completions", appToken, chatBody)
	body := readJSON(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || body["error"].(map[string]any)["code"] != "no_available_key" {
		t.Fatalf("fifth request: %d %v, want 503 no_available_key", resp.StatusCode, body)
	}
	// Each key's bucket of 2 refills over a minute: one request in 30 s.
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 29 || ra > 31 {
		t.Errorf("Retry-After %q, want 30", resp.Header.Get("Retry-After"))
	}
	if n := f.provider.Refused(); n != 0 {
		t.Errorf("the provider refused %d calls; pacing should have kept them away", n)
	}

	keys := f.adminGet(t, "/api/v1/keys?model=gpt-4o-mini")["data"].([]any)
	for _, k := range keys {
		k := k.(map[string]any)
		if k["remaining_requests"] != float64(0) || k["resets_at"] == nil {
			t.Errorf("key %v: remaining_requests %v resets_at %v, want 0 and a time", k["masked"], k["remaining_requests"], k["resets_at"])
		}
	}

	f.clock.Advance(30 * time.Second)
	if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
		t.Errorf("after 30 s: %d, want room again", resp.StatusCode)
	}
}

// With a key's own rpm, the request over it waits for the room that comes
// back within max_queue_wait instead of failing.
func TestPacingWaitsForRoomWithinMaxQueueWait(t *testing.T) {
	f := newFixture(t, setup{models: func(base string) []keygate.Model {
		return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, APIKeys: []keygate.KeySpec{{Key: healthyKey1, RPM: 60}}}}
	}})
	for i := range 60 {
		if resp := f.post(t, "/v1/chat/completions", appToken, chatBody); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i+1, resp.StatusCode)
		}
	}
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Authorization", "Bearer "+appToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("the 61st request did not wait for room")
	}
	if n := f.provider.Count(healthyKey1); n != 60 {
		t.Errorf("the provider saw %d calls while the 61st waited, want 60", n)
	}
	f.clock.Advance(time.Second)
	resp := <-done
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting request: %v", resp)
	}
	resp.Body.Close()
}

// stalledFirstKey is a hedged model of two keys whose first key's calls
// never answer (a stream sends its headers, then nothing): each call is
// signalled on arrived, and counted in cancelled when the gateway gives up on it.
func stalledFirstKey(t *testing.T, stream bool) (f *fixture, arrived chan struct{}, cancelled *atomic.Int64) {
	arrived, cancelled = make(chan struct{}, 4), new(atomic.Int64)
	f = newFixture(t, setup{
		upstream: func(mock http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+healthyKey1 {
					mock.ServeHTTP(w, r)
					return
				}
				io.ReadAll(r.Body) // then the server notices the caller hanging up
				if stream {
					w.Header().Set("Content-Type", "text/event-stream")
					w.WriteHeader(200)
					w.(http.Flusher).Flush() // headers now, the first event never
				}
				arrived <- struct{}{}
				<-r.Context().Done()
				cancelled.Add(1)
			})
		},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle,
				Hedge:   &keygate.Hedge{AfterMS: 300, MaxExtraPercent: 100},
				APIKeys: []keygate.KeySpec{{Key: healthyKey1}, {Key: healthyKey2}}}}
		},
	})
	return f, arrived, cancelled
}

// passHedgeTimer waits for the hedge's timer and lets after_ms pass.
func (f *fixture) passHedgeTimer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("no hedge timer")
	}
	f.clock.Advance(300 * time.Millisecond)
}

// A hedged model's slow call goes again on another key after after_ms; the
// second answers first, the first is cancelled, both are attempts, and the
// caller is billed once.
func TestHedgeSecondCallWins(t *testing.T) {
	f, arrived, cancelled := stalledFirstKey(t, false)
	done := make(chan *http.Response, 1)
	go func() { done <- f.post(t, "/v1/chat/completions", appToken, chatBody) }()
	<-arrived
	f.passHedgeTimer(t)
	resp := <-done
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("hedged request: %d, attempts %q", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"))
	}
	readJSON(t, resp)
	waitFor(t, func() bool { return cancelled.Load() == 1 })

	recs := f.rec.all()
	if len(recs) != 1 {
		t.Fatalf("%d usage records, want one: the caller is billed once", len(recs))
	}
	second := f.pool.KeyID(healthyKey2)
	if recs[0].KeyID != second || recs[0].Attempts != 2 || recs[0].PromptTokens == 0 {
		t.Errorf("record: key %s attempts %d prompt %d; want the second key, 2 attempts, its usage", recs[0].KeyID, recs[0].Attempts, recs[0].PromptTokens)
	}
	slow := f.pool.Key(f.pool.KeyID(healthyKey1)).View(f.clock.Now())
	if slow.Status == "cooldown" || slow.FailureCount != 0 || slow.PromptTokens != 0 {
		t.Errorf("the cancelled call's key: %s, %d failures, %d tokens; want no blame and no bill", slow.Status, slow.FailureCount, slow.PromptTokens)
	}
}

// A request the caller marked non-idempotent is never sent twice.
func TestNoHedgeForNonIdempotent(t *testing.T) {
	f, arrived, _ := stalledFirstKey(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Authorization", "Bearer "+appToken)
		req.Header.Set("X-Keygate-Idempotent", "false")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	f.clock.Advance(time.Second)
	cancel()
	<-done
	waitFor(t, func() bool { return len(f.rec.all()) == 1 })
	if n := f.provider.Count(healthyKey2); n != 0 {
		t.Errorf("a non-idempotent request went to a second key (%d calls)", n)
	}
}

// A stream whose first byte is late is hedged too: the provider's 200
// headers are not its answer, its first event is.
func TestHedgeStreamBeforeItsFirstByte(t *testing.T) {
	f, arrived, cancelled := stalledFirstKey(t, true)
	done := make(chan *http.Response, 1)
	go func() {
		done <- f.post(t, "/v1/chat/completions", appToken, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]}`)
	}()
	<-arrived
	f.passHedgeTimer(t)
	resp := <-done
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") || resp.Header.Get("X-Keygate-Key") != f.pool.KeyID(healthyKey2) {
		t.Fatalf("hedged stream: %d, key %s:\n%s", resp.StatusCode, resp.Header.Get("X-Keygate-Key"), body)
	}
	waitFor(t, func() bool { return cancelled.Load() == 1 })
	waitFor(t, func() bool { return len(f.rec.all()) == 1 })
	if r := f.rec.all()[0]; r.Attempts != 2 || r.KeyID != f.pool.KeyID(healthyKey2) {
		t.Errorf("record: %d attempts, key %s", r.Attempts, r.KeyID)
	}
}
