package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/relay"
)

const faultyKey = "sk-faulty-key-0000001"

// faultCase is one misbehaving upstream and what must follow from it.
type faultCase struct {
	fault  mockprovider.Fault
	stream bool
	// only: the faulty key alone serves, so the caller sees what it does;
	// otherwise a healthy key stands behind it.
	only      bool
	status    int    // what the caller gets
	attempts  string // X-Keygate-Attempts
	recStatus int    // the usage record's status (0: status)
	key       string // the faulty key's status afterwards
	has       []string
	lacks     []string
	header    http.Header // sent by the caller
	stall     bool        // the upstream goes silent: move the clock past the idle limit
}

func faultCases() []faultCase {
	plain := func(f mockprovider.Fault, status int, attempts, key string) faultCase {
		return faultCase{fault: f, status: status, attempts: attempts, key: key}
	}
	var cs []faultCase
	for _, stream := range []bool{false, true} {
		add := func(c faultCase) { c.stream = stream; cs = append(cs, c) }
		// A 200 that is not the answer: another key serves, this one cools.
		add(plain(mockprovider.FaultHTML, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultTruncated, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultErrorIn200, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultStreamErrorEvent, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultDeepNesting, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultRetryAfterDate, 200, "2", "cooldown"))
		add(plain(mockprovider.FaultRedirect, 200, "2", "cooldown"))
		// No answer at all: nobody's verdict on the key; another key serves.
		add(plain(mockprovider.FaultReset, 200, "2", "unused"))
		add(plain(mockprovider.FaultClose, 200, "2", "unused"))
		add(plain(mockprovider.FaultDieBeforeFirst, 200, "2", "unused"))
		add(faultCase{fault: mockprovider.FaultSilence, status: 200, attempts: "2", key: "unused", stall: true})
		// The caller's header never reaches the provider.
		add(faultCase{fault: mockprovider.FaultOrgHeader401, status: 200, attempts: "1", key: "healthy",
			header: http.Header{"Openai-Organization": {"org-someone-else"}, "Openai-Project": {"proj-x"}}})
		// A 401 the key's own check does not confirm: the request's fault.
		add(faultCase{fault: mockprovider.FaultRequest401, only: true, status: 401, attempts: "1", key: "unused", has: []string{"invalid_api_key"}})
		// Keys never reach the caller, plain or escaped; nor the upstream's address.
		add(faultCase{fault: mockprovider.FaultEchoKey, only: true, status: 500, attempts: "1", key: "cooldown", has: []string{keygate.Mask(faultyKey)}})
		add(faultCase{fault: mockprovider.FaultEchoKeyEscaped, only: true, status: 500, attempts: "1", key: "cooldown", has: []string{keygate.Mask(faultyKey)}})
		add(faultCase{fault: mockprovider.FaultKeyInHeader, only: true, status: 200, attempts: "1", key: "healthy"})
		// Too big for keygate is nobody's fault, and no other key helps.
		add(faultCase{fault: mockprovider.FaultHuge, only: true, status: 502, attempts: "1", key: "unused", has: []string{"larger than keygate's limit"}})
	}
	// Streams only: committed on the first event, then the end is recorded.
	cs = append(cs,
		faultCase{fault: mockprovider.FaultDieAfterFirst, stream: true, status: 200, attempts: "1", recStatus: 502, key: "healthy", has: []string{"first"}},
		faultCase{fault: mockprovider.FaultHang, stream: true, status: 200, attempts: "1", recStatus: 504, key: "healthy", has: []string{"first"}, stall: true},
		faultCase{fault: mockprovider.FaultSSEVariants, stream: true, status: 200, attempts: "1", key: "healthy",
			has: []string{"Hello", " world", "data: [DONE]"}, lacks: []string{"prompt_tokens"}},
	)
	return cs
}

func TestMisbehavingUpstreams(t *testing.T) {
	var stolen atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			stolen.Add(1)
		}
		w.WriteHeader(200)
	}))
	defer thief.Close()

	for _, c := range faultCases() {
		name := string(c.fault)
		if c.stream {
			name += "/stream"
		}
		t.Run(name, func(t *testing.T) {
			keys := []keygate.KeySpec{{Key: faultyKey}}
			if !c.only {
				keys = append(keys, keygate.KeySpec{Key: healthyKey1})
			}
			f := newFixture(t, setup{
				keys: map[string]mockprovider.Behavior{faultyKey: mockprovider.OK, healthyKey1: mockprovider.OK},
				models: func(base string) []keygate.Model {
					return []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: base, KeyUsageMode: keygate.ModeSingle, APIKeys: keys}}
				},
				tune: func(r *relay.Relay) { r.MaxResponseBytes = 1 << 20 },
			})
			f.provider.SetFaultOptions(mockprovider.FaultOptions{RedirectTo: thief.URL + "/v1/chat/completions", HugeBytes: 2 << 20, Now: f.clock.Now})
			f.provider.SetFault(faultyKey, c.fault)

			body := chatBody
			if c.stream {
				body = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]}`
			}
			req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+appToken)
			for k, v := range c.header {
				req.Header[k] = v
			}
			type answer struct {
				resp *http.Response
				body string
				err  error
			}
			headers := make(chan struct{})
			done := make(chan answer, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				close(headers)
				if err != nil {
					done <- answer{err: err}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- answer{resp: resp, body: string(b)}
			}()
			if c.stall {
				// A committed stream has its first event out before the
				// upstream stalls; an uncommitted attempt is held before it.
				if c.recStatus != 0 {
					<-headers
				} else {
					waitFor(t, func() bool { return f.provider.Stalled() > 0 })
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
					t.Fatal("no idle deadline armed while the upstream stalls")
				}
				cancel()
				f.clock.Advance(3 * time.Minute)
			}
			var a answer
			select {
			case a = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the gateway did not answer")
			}
			if a.err != nil {
				t.Fatal(a.err)
			}
			resp := a.resp
			if resp.StatusCode != c.status || resp.Header.Get("X-Keygate-Attempts") != c.attempts {
				t.Fatalf("caller got %d after %s attempts, want %d after %s: %s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), c.status, c.attempts, a.body)
			}
			for _, s := range c.has {
				if !strings.Contains(a.body, s) {
					t.Errorf("the answer must contain %q: %s", s, a.body)
				}
			}
			lacks := append([]string{faultyKey, strings.ReplaceAll(faultyKey, "-", `\u002d`), strings.TrimPrefix(f.upstream.URL, "http://")}, c.lacks...)
			for _, s := range lacks {
				if strings.Contains(a.body, s) {
					t.Errorf("the answer must not contain %q: %s", s, a.body)
				}
			}
			for name, v := range resp.Header {
				if strings.Contains(strings.Join(v, " "), faultyKey) {
					t.Errorf("header %s carries the key", name)
				}
			}
			for _, h := range []string{"Openai-Organization", "X-Ratelimit-Remaining-Requests", "Set-Cookie", "X-Echo-Key"} {
				if resp.Header.Get(h) != "" {
					t.Errorf("the provider's %s must not reach the caller", h)
				}
			}
			if resp.StatusCode < 500 && resp.Header.Get("X-Keygate-Key") == "" {
				t.Error("no X-Keygate-Key")
			}
			waitFor(t, func() bool { return len(f.rec.all()) == 1 })
			rec := f.rec.all()[0]
			want := c.recStatus
			if want == 0 {
				want = c.status
			}
			if rec.Status != want || rec.Attempts != atoi(c.attempts) {
				t.Errorf("usage record: status %d after %d attempts, want %d after %s", rec.Status, rec.Attempts, want, c.attempts)
			}
			if rec.Status == 200 && rec.PromptTokens == 0 {
				t.Errorf("a served request records its usage: %+v", rec)
			}
			if got := f.pool.Key(f.pool.KeyID(faultyKey)).View(f.clock.Now()).Status; got != c.key {
				t.Errorf("the faulty key is %s, want %s", got, c.key)
			}
			if stolen.Load() != 0 {
				t.Fatal("a redirect carried the key to another server")
			}
			if c.fault == mockprovider.FaultSSEVariants && (rec.PromptTokens != 7 || rec.CompletionTokens != 2) {
				t.Errorf("the usage chunk must be read by meaning: %+v", rec)
			}
			if c.fault == mockprovider.FaultRetryAfterDate {
				left := f.pool.Key(f.pool.KeyID(faultyKey)).View(f.clock.Now()).CooldownSecondsLeft
				if left < 29 || left > 31 {
					t.Errorf("Retry-After as an HTTP date 30 s ahead: cooldown %v s left", left)
				}
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
