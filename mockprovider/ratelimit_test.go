package mockprovider

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pace"
)

// fakeNow is a settable clock for the provider's buckets.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

const limitChat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func TestLimitsEnforcePerKeyRPMWithOpenAIHeaders(t *testing.T) {
	clock := &fakeNow{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	p, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-a": OK, "sk-b": OK},
		Limits: &Limits{RPM: 3, TPM: 1000, Window: 6 * time.Second, Now: clock.Now}})
	for i := range 3 {
		resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-a", limitChat)
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: status %d", i+1, resp.StatusCode)
		}
		if got, want := resp.Header.Get("X-Ratelimit-Remaining-Requests"), []string{"2", "1", "0"}[i]; got != want {
			t.Errorf("call %d: remaining-requests %q, want %q", i+1, got, want)
		}
		if resp.Header.Get("X-Ratelimit-Limit-Requests") != "3" || resp.Header.Get("X-Ratelimit-Limit-Tokens") != "1000" {
			t.Errorf("limits %q %q", resp.Header.Get("X-Ratelimit-Limit-Requests"), resp.Header.Get("X-Ratelimit-Limit-Tokens"))
		}
	}
	resp, body := call(t, srv, "POST", "/v1/chat/completions", "sk-a", limitChat)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"rate_limit_exceeded"`) {
		t.Fatalf("fourth call: %d %s, want OpenAI's 429", resp.StatusCode, body)
	}
	// 3 per 6 s: one comes back every 2 s, the whole bucket in 6 s.
	if got := resp.Header.Get("X-Ratelimit-Reset-Requests"); got != "6s" {
		t.Errorf("reset-requests %q, want 6s", got)
	}
	if got := resp.Header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2", got)
	}
	// What keygate reads from those headers agrees with the mock.
	l := pace.ParseOpenAI(resp.Header, clock.Now())
	if l.Requests.Remaining != 0 || !l.Requests.Reset.Equal(clock.Now().Add(6*time.Second)) {
		t.Errorf("parsed %+v", l.Requests)
	}
	if resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-b", limitChat); resp.StatusCode != 200 {
		t.Errorf("another key refused: %d; limits are per key", resp.StatusCode)
	}
	clock.Add(2 * time.Second)
	if resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-a", limitChat); resp.StatusCode != 200 {
		t.Errorf("refused 2 s later, when one request came back: %d", resp.StatusCode)
	}
	if p.Refused() != 1 || p.FirstRefusal("sk-a").IsZero() || !p.FirstRefusal("sk-b").IsZero() {
		t.Errorf("refused %d, first %s / %s", p.Refused(), p.FirstRefusal("sk-a"), p.FirstRefusal("sk-b"))
	}
}

func TestLimitsTPMAndAnthropicHeaders(t *testing.T) {
	clock := &fakeNow{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	_, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-a": OK}, Words: 10,
		Limits: &Limits{TPM: 30, Style: "anthropic", Now: clock.Now}})
	// "hi" is 4 prompt tokens + 10 words: 14 a call; the third does not fit in 30.
	for i, want := range []int{200, 200, 429} {
		resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-a", limitChat)
		if resp.StatusCode != want {
			t.Fatalf("call %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		l := pace.ParseAnthropic(resp.Header, clock.Now())
		if !l.Tokens.Set || l.Tokens.Limit != 30 {
			t.Fatalf("call %d: anthropic token headers %v", i+1, resp.Header)
		}
		if i == 0 && (l.Tokens.Remaining != 16 || !l.Tokens.Reset.Equal(clock.Now().Add(28*time.Second))) {
			t.Errorf("after one call: %+v, want 16 left and full in 28 s", l.Tokens)
		}
	}
}

func TestTailSlowsAShareOfCalls(t *testing.T) {
	_, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-a": OK}, Tail: &Tail{Share: 0.25, Delay: 300 * time.Millisecond}})
	slow := 0
	for range 8 {
		start := time.Now()
		call(t, srv, "POST", "/v1/chat/completions", "sk-a", limitChat)
		if time.Since(start) >= 300*time.Millisecond {
			slow++
		}
	}
	if slow != 2 {
		t.Errorf("%d of 8 calls slow, want 2 (a quarter)", slow)
	}
}
