package keysource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/mockprovider"
)

const backupKey = "sk-backup-0123456789abcdef"

// keyCall is one request the key service received.
type keyCall struct {
	At     time.Duration // since the test started, on the fake clock
	Method string
	Query  url.Values
	Header http.Header
	Body   string
}

// recorder sits in front of a key service: it records every call and every
// key handed out, and can hold calls until released.
type recorder struct {
	clock *clockwork.FakeClock
	start time.Time
	next  http.Handler

	mu     sync.Mutex
	calls  []keyCall
	issued []string
	hold   chan struct{}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.calls = append(r.calls, keyCall{r.clock.Since(r.start), req.Method, req.URL.Query(), req.Header.Clone(), string(body)})
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}

	req.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	r.next.ServeHTTP(rec, req)
	var answer struct{ Result string }
	if json.Unmarshal(rec.Body.Bytes(), &answer) == nil && answer.Result != "" {
		r.mu.Lock()
		r.issued = append(r.issued, answer.Result)
		r.mu.Unlock()
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// holdCalls makes the service wait before answering until release is called.
func (r *recorder) holdCalls() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.hold = ch
	r.mu.Unlock()
	return sync.OnceFunc(func() {
		r.mu.Lock()
		r.hold = nil
		r.mu.Unlock()
		close(ch)
	})
}

func (r *recorder) Calls() []keyCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]keyCall(nil), r.calls...)
}

// times returns when each call was made, in seconds since the start.
func (r *recorder) times() []int {
	var ts []int
	for _, c := range r.Calls() {
		ts = append(ts, int(c.At/time.Second))
	}
	return ts
}

func (r *recorder) Issued() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.issued...)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a key service, a provider that accepts its keys (and backupKey),
// and a Source on a fake clock.
type env struct {
	t     *testing.T
	clock *clockwork.FakeClock
	ks    *mockprovider.KeyService
	rec   *recorder
	prov  *mockprovider.Provider
	pURL  string
	spec  keygate.KeySource
	src   *keysource.Source
	logs  *syncBuffer
}

// newEnv builds the env; edit may change the spec before the source is made.
func newEnv(t *testing.T, edit func(*keygate.KeySource)) *env {
	t.Helper()
	clock := clockwork.NewFakeClock()
	ks := mockprovider.NewKeyService(clock, 600*time.Second)
	rec := &recorder{clock: clock, start: clock.Now(), next: ks}
	ksSrv := httptest.NewServer(rec)
	t.Cleanup(ksSrv.Close)
	prov := mockprovider.New(mockprovider.Options{
		Keys:     map[string]mockprovider.Behavior{backupKey: mockprovider.OK},
		Validate: ks.Validator(),
	})
	pSrv := httptest.NewServer(prov)
	t.Cleanup(pSrv.Close)

	e := &env{t: t, clock: clock, ks: ks, rec: rec, prov: prov, pURL: pSrv.URL, logs: &syncBuffer{}}
	e.spec = keygate.KeySource{
		URL:                  ksSrv.URL + "/getApikey",
		SceneCode:            "P2025122",
		ExpireSeconds:        600,
		RefreshBeforeSeconds: 120,
	}
	if edit != nil {
		edit(&e.spec)
	}
	src, err := keysource.New(e.spec, keysource.Options{
		Clock:  clock,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Name:   "gpt-4o-mini",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.src = src
	t.Cleanup(func() {
		// Whatever a test did, no key may have reached the logs in clear.
		logs := e.logs.String()
		for _, k := range append(rec.Issued(), backupKey) {
			if strings.Contains(logs, k) {
				t.Errorf("key %s in clear in the logs:\n%s", k, logs)
			}
		}
	})
	return e
}

// start runs the source until the test ends, and lets its first fetch
// attempt finish.
func (e *env) start() { runSource(e.t, e.clock, e.src) }

// settle waits until the source's goroutines are parked on the fake clock
// (a refresh timer, a retry, or a pause), so that the test's next Advance
// lands where it means to.
func (e *env) settle() { e.t.Helper(); settle(e.t, e.clock) }

// runSource runs src until the test ends and settles the clock.
func runSource(t *testing.T, clock *clockwork.FakeClock, src *keysource.Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		src.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	settle(t, clock)
}

// settle waits until a goroutine is parked on clock.
func settle(t *testing.T, clock *clockwork.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("source never waited on the clock:", err)
	}
}

func (e *env) advance(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	e.settle()
}

// now is the time since the test started, in whole seconds.
func (e *env) now() int { return int(e.clock.Since(e.rec.start) / time.Second) }

func (e *env) client(backup string) *http.Client {
	return &http.Client{Transport: &keysource.Transport{Source: e.src, Backup: backup}}
}

// chat makes one chat completion through c and returns the key the provider
// saw on the request that answered; it fails the test unless the answer is 200.
func (e *env) chat(c *http.Client) string {
	e.t.Helper()
	resp, err := c.Post(e.pURL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		e.t.Fatalf("at %ds: %v", e.now(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("at %ds: %d %s", e.now(), resp.StatusCode, body)
	}
	reqs := e.prov.Requests()
	return reqs[len(reqs)-1].Key
}
