// Package relay forwards a client's request to a provider over a key from
// the pool, moves on to another key when one fails, and streams the answer
// back. It reads the body only as far as it must (gjson for usage, sjson to
// rename the model) and never decodes and re-encodes it whole.
package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/tokenizer"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Recorder takes usage records off the request path (see package usage).
type Recorder interface {
	Record(keygate.UsageRecord) error
}

// Relay forwards calls to providers.
type Relay struct {
	Pool     *pool.Pool
	Client   *http.Client
	Recorder Recorder
	Logger   *slog.Logger
	Clock    clockwork.Clock
	// MaxResponseBytes caps a non-streaming answer read into memory.
	MaxResponseBytes int64
	// FetchWait bounds how long a request waits for a key service when no
	// key of its model is valid at all (default 30 s).
	FetchWait time.Duration
}

// Endpoints, appended to a deployment's base URL.
const (
	EndpointChat       = "chat/completions"
	EndpointEmbeddings = "embeddings"
)

// Call is one client request, already authenticated and parsed.
type Call struct {
	Endpoint  string // "chat/completions" or "embeddings", appended to the base URL
	Group     *pool.Group
	Body      []byte
	Stream    bool
	RequestID string
	User      string
	Token     string // the token's name
	Start     time.Time

	hideUsage bool // usage was asked for on the caller's behalf: strip that chunk
}

// NewTransport returns the transport for upstream calls: many idle
// connections per provider, so a busy gateway reuses them instead of dialling.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = responseHeaderTimeout
	return t
}

// Serve relays c and writes the answer to w. Each attempt goes to a key the
// request has not tried yet; a failure the verdict says another key may not
// repeat moves on, up to max_retries further keys (network errors have a
// budget of their own), then to the model's fallbacks. Every outcome is
// reported to the pool and recorded.
//
// It returns the record it wrote, so the caller can settle limits and
// budgets with the real usage.
func (r *Relay) Serve(w http.ResponseWriter, req *http.Request, c *Call) (rec keygate.UsageRecord) {
	ctx := req.Context()
	policy := r.Pool.Policy()
	rec = keygate.UsageRecord{
		RequestID: c.RequestID, User: c.User, Token: c.Token,
		Model: c.Group.ID, Stream: c.Stream,
	}
	defer func() {
		rec.Time = c.Start
		rec.LatencyMS = r.Clock.Since(c.Start).Milliseconds()
		r.Recorder.Record(rec)
	}()
	if c.Stream && c.Endpoint == EndpointChat && !gjson.GetBytes(c.Body, "stream_options.include_usage").Bool() {
		// Ask the provider for usage so the stream is billed; the extra
		// chunk is kept from this caller, who did not ask for it.
		if b, err := sjson.SetBytes(c.Body, "stream_options.include_usage", true); err == nil {
			c.Body, c.hideUsage = b, true
		}
	}

	var triedBuf [8]*pool.Key
	tried := triedBuf[:0]
	var last *failure
	attempts := 0
	groups := r.groups(c.Group)
	for _, g := range groups {
		keyFails, netFails := 0, 0
		waited := false
		for keyFails <= policy.MaxRetries && netFails <= policy.NetworkRetries {
			a, ok := g.Pick(tried, r.Clock.Now().UnixNano())
			if !ok && !waited && attempts == 0 {
				waited = true
				if r.waitForFetchedKey(ctx, g) {
					a, ok = g.Pick(tried, r.Clock.Now().UnixNano())
				}
			}
			if !ok {
				break
			}
			k := a.Key()
			tried = append(tried, k)
			attempts++
			rec.Attempts, rec.KeyID, rec.UpstreamModel, rec.Model = attempts, k.ID, a.Deployment.Model.UpstreamName(), g.ID

			f, done := r.attempt(ctx, w, req, c, &a, &attempts, &rec)
			if done {
				return rec
			}
			last = f
			switch {
			case f.verdict.Class == health.ClassCanceled:
				rec.Status = statusClientClosed
				return rec
			case !f.verdict.Failover:
				rec.Status = f.status
				f.write(w, attempts)
				return rec
			case f.verdict.Class == health.ClassNetwork:
				netFails++
			default:
				keyFails++
			}
		}
	}
	if last != nil {
		rec.Status = last.status
		last.write(w, attempts)
		return rec
	}
	rec.Status = http.StatusServiceUnavailable
	r.noAvailableKey(w, c.Group, groups)
	return rec
}

// groups is the model's group followed by its fallbacks that exist.
func (r *Relay) groups(g *pool.Group) []*pool.Group {
	if len(g.Fallbacks) == 0 {
		return []*pool.Group{g}
	}
	out := []*pool.Group{g}
	for _, name := range g.Fallbacks {
		if fb := r.Pool.Group(name); fb != nil && fb != g {
			out = append(out, fb)
		}
	}
	return out
}

// attempt makes one try with one key. done is true when the answer was
// delivered to the caller; otherwise the failure says what went wrong.
// The secret is read once: a request keeps the key it started with even if
// a key service replaces it meanwhile.
func (r *Relay) attempt(ctx context.Context, w http.ResponseWriter, req *http.Request, c *Call, a *pool.Attempt, n *int, rec *keygate.UsageRecord) (*failure, bool) {
	k := a.Key()
	secret := k.Secret()
	started := r.Clock.Now()
	resp, err := r.send(ctx, req, c, a.Deployment, k, secret)
	if err != nil {
		v := health.ClassifyErr(err, ctx.Err() != nil)
		v.Reason = keygate.MaskIn(v.Reason, secret)
		r.Pool.Failed(a, r.Clock.Now(), v)
		if v.Class != health.ClassCanceled {
			r.Logger.Warn("upstream call failed", "request_id", c.RequestID, "model", c.Group.ID,
				"key_id", k.ID, "attempt", *n, "class", v.Class, "err", keygate.MaskIn(err.Error(), secret))
		}
		return &failure{status: http.StatusBadGateway, key: k, verdict: v,
			err: keygate.Errorf(keygate.EUpstream, "provider unreachable: %s", keygate.MaskIn(err.Error(), secret))}, false
	}
	if resp.StatusCode < 400 {
		if r.deliver(w, resp, c, a, *n, started, rec) {
			return nil, true
		}
		// The provider said 200 but sent something unusable, before
		// anything reached the caller: a provider fault like a 500.
		v := health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: "malformed response"}
		r.Pool.Failed(a, r.Clock.Now(), v)
		return &failure{status: http.StatusBadGateway, key: k, verdict: v,
			err: keygate.Errorf(keygate.EUpstream, "provider returned a malformed response")}, false
	}
	f := readFailure(resp, k, secret)
	f.verdict = health.Classify(resp.StatusCode, resp.Header, f.body, r.Clock.Now())
	f.verdict.Reason = keygate.MaskIn(f.verdict.Reason, secret)
	r.Logger.Warn("upstream error", "request_id", c.RequestID, "model", c.Group.ID, "key_id", k.ID,
		"attempt", *n, "status", resp.StatusCode, "class", f.verdict.Class)
	if ref := k.Refresher(); ref != nil && f.verdict.Class == health.ClassAuthentication {
		// A fetched key the provider rejects before its expiry is replaced,
		// not disabled: fetch a new one at once and retry with it.
		r.Pool.Release(a)
		if err := ref.Rejected(ctx, secret); err != nil || k.Secret() == secret {
			k.Expire()
			r.Logger.Error("fetched key rejected and no replacement", "model", c.Group.ID, "key_id", k.ID, "err", err)
			return f, false
		}
		*n++
		rec.Attempts = *n
		return r.attempt(ctx, w, req, c, a, n, rec)
	}
	r.Pool.Failed(a, r.Clock.Now(), f.verdict)
	return f, false
}

// waitForFetchedKey waits, when no key of the group is usable, for a key
// service of the group to install a valid key. It is the only time a
// request waits for a fetch: with a valid key or a backup it never does.
func (r *Relay) waitForFetchedKey(ctx context.Context, g *pool.Group) bool {
	for _, d := range g.Deployments {
		if d.Fetched == nil {
			continue
		}
		if ref := d.Fetched.Key.Refresher(); ref != nil {
			wctx, cancel := context.WithTimeout(ctx, r.fetchWait())
			err := ref.Wait(wctx)
			cancel()
			if err == nil {
				return true
			}
		}
	}
	return false
}

func (r *Relay) fetchWait() time.Duration {
	if r.FetchWait > 0 {
		return r.FetchWait
	}
	return 30 * time.Second
}

// noAvailableKey answers 503 with Retry-After set to the soonest moment a
// key of the model (or of a fallback) comes back.
func (r *Relay) noAvailableKey(w http.ResponseWriter, g *pool.Group, groups []*pool.Group) {
	now := r.Clock.Now()
	var soonest time.Time
	for _, gr := range groups {
		if at, ok := gr.RecoversAt(now.UnixNano()); ok && (soonest.IsZero() || at.Before(soonest)) {
			soonest = at
		}
	}
	if !soonest.IsZero() {
		secs := int(math.Ceil(soonest.Sub(now).Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	respond.Error(w, r.Logger, keygate.Errorf(keygate.ENoAvailableKey, "every key of model %s is cooling down or disabled", g.ID))
}

// statusClientClosed is recorded when the caller hung up (nginx's 499).
const statusClientClosed = 499

// hopHeaders are per-connection headers, and the caller's credentials,
// which must not travel to the provider.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Authorization": true, "Cookie": true, "X-Api-Key": true, "Api-Key": true,
	"X-Goog-Api-Key": true, "Content-Length": true, "Accept-Encoding": true, "Host": true,
}

func (r *Relay) send(ctx context.Context, in *http.Request, c *Call, d *pool.Deployment, k *pool.Key, secret string) (*http.Response, error) {
	body := upstreamBody(c.Body, c.Group.ID, d.Model)
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Model.BaseURL+"/"+c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for name, vals := range in.Header {
		if !hopHeaders[name] {
			out.Header[name] = vals
		}
	}
	out.Header.Set("Authorization", "Bearer "+secret)
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("X-Request-Id", c.RequestID)
	release := k.Acquire()
	resp, err := r.Client.Do(out)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// upstreamBody renames the model when the deployment's upstream name
// differs from what the caller asked for (upstream_model, or a fallback
// model) and fills in a default temperature; otherwise the caller's bytes go
// out untouched.
func upstreamBody(body []byte, requested string, m keygate.Model) []byte {
	if m.UpstreamName() != requested {
		if b, err := sjson.SetBytes(body, "model", m.UpstreamName()); err == nil {
			body = b
		}
	}
	if m.Temperature != nil && !gjson.GetBytes(body, "temperature").Exists() {
		if b, err := sjson.SetBytes(body, "temperature", *m.Temperature); err == nil {
			body = b
		}
	}
	return body
}

type releaseOnClose struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

// deliver writes a successful upstream answer to the caller. It returns
// false, having written nothing, when a non-streaming answer is not JSON.
func (r *Relay) deliver(w http.ResponseWriter, resp *http.Response, c *Call, a *pool.Attempt, attempt int, started time.Time, rec *keygate.UsageRecord) bool {
	defer resp.Body.Close()
	k := a.Key()
	if c.Stream && isEventStream(resp.Header) {
		// Headers are good: from here the caller owns the stream and no
		// failover is possible, so the key is judged healthy now.
		r.Pool.Succeeded(a, r.Clock.Now(), r.Clock.Since(started))
		copyHeaders(w.Header(), resp.Header)
		setKeygateHeaders(w.Header(), k, attempt)
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		rec.Status = resp.StatusCode
		r.stream(resp.Request.Context(), w, resp.Body, c, rec)
		r.account(a, rec)
		return true
	}
	buf := getBuffer()
	defer putBuffer(buf)
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, r.MaxResponseBytes))
	body := buf.Bytes()
	if err != nil || !gjson.ValidBytes(body) {
		return false
	}
	r.Pool.Succeeded(a, r.Clock.Now(), r.Clock.Since(started))
	if !readUsage(body, rec) {
		countUsage(c, gjson.GetBytes(body, "choices.0.message.content").String(), rec)
	}
	copyHeaders(w.Header(), resp.Header)
	setKeygateHeaders(w.Header(), k, attempt)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	rec.Status = resp.StatusCode
	rec.TTFTMS = r.Clock.Since(c.Start).Milliseconds()
	r.account(a, rec)
	return true
}

// account adds the request's tokens and cost to the record and the key.
func (r *Relay) account(a *pool.Attempt, rec *keygate.UsageRecord) {
	m := &a.Deployment.Model
	rec.Cost = (float64(rec.PromptTokens)*m.InputPrice + float64(rec.CompletionTokens)*m.OutputPrice) / 1e6
	a.Key().AddUsage(rec.PromptTokens, rec.CompletionTokens, rec.Cost)
}

// stream copies server-sent events line by line and flushes whenever the
// upstream has nothing more buffered, so every event reaches the caller as
// soon as it arrives and events that arrive together share one flush.
func (r *Relay) stream(ctx context.Context, w http.ResponseWriter, body io.Reader, c *Call, rec *keygate.UsageRecord) {
	rc := http.NewResponseController(w)
	br := getReader(body)
	defer putReader(br)
	var text []byte // the reply, for counting tokens if the provider sends no usage
	first, skipBlank, sawUsage := true, false, false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if first {
				rec.TTFTMS = r.Clock.Since(c.Start).Milliseconds()
				first = false
			}
			write := true
			switch {
			case skipBlank && isBlank(line):
				write, skipBlank = false, false
			case bytes.HasPrefix(line, dataPrefix):
				data := line[len(dataPrefix):]
				if bytes.Contains(data, dataUsage) && readUsage(data, rec) {
					sawUsage = true
					// The usage-only chunk the caller did not ask for, and the
					// blank line that ends its event, stay here.
					if c.hideUsage && err == nil && bytes.Contains(data, emptyChoices) {
						write, skipBlank = false, true
					}
				} else if !sawUsage {
					text = append(text, gjson.GetBytes(data, "choices.0.delta.content").Str...)
				}
			}
			if write {
				if _, werr := w.Write(line); werr != nil {
					rec.Status = statusClientClosed
					return
				}
			}
			if br.Buffered() == 0 {
				if ferr := rc.Flush(); ferr != nil {
					rec.Status = statusClientClosed
					return
				}
			}
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		switch {
		case errors.Is(err, io.EOF):
		case ctx.Err() != nil || errors.Is(err, context.Canceled):
			rec.Status = statusClientClosed
		default:
			// Headers are gone already; the caller sees a truncated stream.
			rec.Status = http.StatusBadGateway
			r.Logger.Warn("stream interrupted", "request_id", c.RequestID, "model", c.Group.ID, "err", err)
		}
		rc.Flush()
		if !sawUsage {
			countUsage(c, string(text), rec)
		}
		return
	}
}

var (
	dataPrefix   = []byte("data: ")
	emptyChoices = []byte(`"choices":[]`)
)

func isBlank(line []byte) bool { return len(bytes.TrimRight(line, "\r\n")) == 0 }

// countUsage fills in tokens with the offline tokenizer when the provider
// reported none: the prompt from the request, the reply from its text.
func countUsage(c *Call, reply string, rec *keygate.UsageRecord) {
	var texts []string
	if c.Endpoint == EndpointEmbeddings {
		gjson.GetBytes(c.Body, "input").ForEach(func(_, v gjson.Result) bool {
			texts = append(texts, v.String())
			return true
		})
		for _, t := range texts {
			rec.PromptTokens += tokenizer.Count(t)
		}
		return
	}
	gjson.GetBytes(c.Body, "messages").ForEach(func(_, m gjson.Result) bool {
		content := m.Get("content")
		if content.IsArray() {
			content.ForEach(func(_, part gjson.Result) bool {
				texts = append(texts, part.Get("text").String())
				return true
			})
		} else {
			texts = append(texts, content.String())
		}
		return true
	})
	rec.PromptTokens = tokenizer.CountMessages(texts)
	rec.CompletionTokens = tokenizer.Count(reply)
}

var dataUsage = []byte(`"usage"`)

// readUsage takes the provider's usage object from an answer or a chunk,
// reporting false when there is none (absent or null).
func readUsage(data []byte, rec *keygate.UsageRecord) bool {
	u := gjson.GetBytes(data, "usage")
	if !u.IsObject() {
		return false
	}
	rec.PromptTokens = int(u.Get("prompt_tokens").Int())
	rec.CompletionTokens = int(u.Get("completion_tokens").Int())
	return true
}

func isEventStream(h http.Header) bool {
	return bytes.HasPrefix([]byte(h.Get("Content-Type")), []byte("text/event-stream"))
}

func copyHeaders(dst, src http.Header) {
	for name, vals := range src {
		if !hopHeaders[name] {
			dst[name] = vals
		}
	}
}

func setKeygateHeaders(h http.Header, k *pool.Key, attempts int) {
	h.Set("X-Keygate-Key", k.Masked())
	h.Set("X-Keygate-Attempts", strconv.Itoa(attempts))
}

// failure is an upstream answer that was not a success, kept so the caller
// gets the last one when every key failed.
type failure struct {
	status  int
	header  http.Header
	body    []byte
	key     *pool.Key
	err     error // set instead of body when no answer came back
	verdict health.Verdict
}

func readFailure(resp *http.Response, k *pool.Key, secret string) *failure {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// A provider may echo the key it was sent; the caller never sees it.
	if secret != "" {
		body = bytes.ReplaceAll(body, []byte(secret), []byte(keygate.Mask(secret)))
	}
	return &failure{status: resp.StatusCode, header: resp.Header, body: body, key: k}
}

func (f *failure) write(w http.ResponseWriter, attempts int) {
	setKeygateHeaders(w.Header(), f.key, attempts)
	if f.err != nil {
		respond.Error(w, nil, f.err)
		return
	}
	for _, name := range []string{"Content-Type", "Retry-After"} {
		if v := f.header.Get(name); v != "" {
			w.Header().Set(name, v)
		}
	}
	if !gjson.ValidBytes(f.body) {
		respond.JSON(w, f.status, map[string]any{"error": map[string]any{
			"message": "provider answered " + strconv.Itoa(f.status) + ": " + string(truncate(f.body, 256)),
			"type":    "upstream_error", "code": keygate.EUpstream}})
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(f.status)
	w.Write(f.body)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }
func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		b.Reset()
		bufPool.Put(b)
	}
}

// Stream readers are small: a thousand open streams each hold one, and a
// longer line is copied through in pieces (ErrBufferFull).
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

func getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}
func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}
