// Package mockprovider is a fake LLM provider that speaks OpenAI's wire
// format: chat completions (plain and streamed), embeddings and the model
// list, with per-key behaviours (healthy, invalid, rate-limited, out of
// quota, failing, garbage) that answer exactly as OpenAI does. The tests, the
// `keygate demo` command and the load harness run it; it is also a fake key
// service handing out expiring keys (KeyService).
//
// The request path keeps no global lock: behaviours and counters live in
// sync.Maps and atomics, responses are appended into pooled buffers, and the
// only mutex guards the record of requests, which Options.NoRecord turns off.
package mockprovider

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Options configure a Provider. The zero value serves the default models and
// rejects every key.
type Options struct {
	// Keys is the behaviour per key (the Bearer token).
	Keys map[string]Behavior
	// Default is for keys neither in Keys nor known to Validate; "" means
	// InvalidKey, as OpenAI rejects a key it does not know.
	Default Behavior
	// Validate, if set, is consulted for keys not in Keys: keys handed out by
	// a key service (see KeyService.Validator).
	Validate func(key string) (Behavior, bool)
	// Models are served by /v1/models, and any other model is answered 404.
	// Default: gpt-4o-mini, gpt-4o, text-embedding-3-small.
	Models []string
	// Latency is a delay before answering anything.
	Latency time.Duration
	// ChunkDelay is a delay between the events of a stream.
	ChunkDelay time.Duration
	// Words is the length of every completion (default 12); a stream sends
	// one word per chunk.
	Words int
	// StreamHold, if set, holds a stream after its first chunk has been
	// flushed until it is closed (or the caller goes away), so a test can
	// prove that the first chunk reached the caller before the provider
	// finished.
	StreamHold <-chan struct{}
	// NoRecord turns off the record of requests (Requests stays empty;
	// counts are kept), for load tests.
	NoRecord bool
}

// defaultModels are served when Options.Models is empty.
var defaultModels = []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}

// maxRecorded bounds the record of requests: a long test keeps the latest.
const maxRecorded = 10_000

// Request is one request as the provider received it.
type Request struct {
	Method        string
	Path          string
	Key           string // the Bearer token, "" when there was none
	Model         string
	Stream        bool
	Authorization string
	Header        http.Header
	Body          []byte
	Time          time.Time
}

// Provider is the fake provider, an http.Handler. Its methods are safe for
// concurrent use.
type Provider struct {
	opts       Options
	words      int
	filler     []string          // filler[i] is the word at position i: "word<i+1>"
	models     map[string][]byte // model → its name as a JSON string
	modelsBody []byte

	behaviors sync.Map // key → Behavior (Options.Keys, then SetBehavior)
	counts    sync.Map // key → *atomic.Int64
	canceled  atomic.Int64
	seq       atomic.Uint64 // completion ids

	mu   sync.Mutex // guards reqs
	reqs []Request

	faults faultState // misbehaviour on demand (faults.go)
}

// New returns a provider answering as opts say.
func New(opts Options) *Provider {
	p := &Provider{opts: opts, words: opts.Words, models: map[string][]byte{}}
	if p.words <= 0 {
		p.words = 12
	}
	p.filler = make([]string, p.words)
	for i := range p.filler {
		p.filler[i] = "word" + strconv.Itoa(i+1)
	}
	if p.opts.Default == "" {
		p.opts.Default = InvalidKey
	}
	if len(p.opts.Models) == 0 {
		p.opts.Models = defaultModels
	}
	for k, b := range opts.Keys {
		p.behaviors.Store(k, b)
	}

	// The model list never changes, so its answer is built once. A fixed
	// created time keeps it deterministic.
	b := []byte(`{"object":"list","data":[`)
	for i, m := range p.opts.Models {
		p.models[m] = quote(m)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = append(b, p.models[m]...)
		b = append(b, `,"object":"model","created":1700000000,"owned_by":"mock"}`...)
	}
	p.modelsBody = append(b, "]}"...)
	return p
}

// SetBehavior changes how the provider answers key from now on.
func (p *Provider) SetBehavior(key string, b Behavior) { p.behaviors.Store(key, b) }

// Requests returns the requests received, oldest first (at most the latest
// 10,000). The Header and Body of each are shared; do not modify them.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs[max(0, len(p.reqs)-maxRecorded):])
}

// Count returns how many requests were made with key.
func (p *Provider) Count(key string) int {
	if c, ok := p.counts.Load(key); ok {
		return int(c.(*atomic.Int64).Load())
	}
	return 0
}

// Canceled returns how many requests the caller abandoned (its context ended
// or the connection went away) before the provider had finished answering.
func (p *Provider) Canceled() int { return int(p.canceled.Load()) }

// Reset clears the recorded requests and the counters. Behaviours stay.
func (p *Provider) Reset() {
	p.mu.Lock()
	p.reqs = nil
	p.mu.Unlock()
	p.counts.Clear()
	p.canceled.Store(0)
}

func (p *Provider) behavior(key string) Behavior {
	if b, ok := p.behaviors.Load(key); ok {
		return b.(Behavior)
	}
	if p.opts.Validate != nil {
		if b, ok := p.opts.Validate(key); ok {
			return b
		}
	}
	return p.opts.Default
}

func (p *Provider) count(key string) {
	c, ok := p.counts.Load(key)
	if !ok {
		c, _ = p.counts.LoadOrStore(key, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

func (p *Provider) record(r *http.Request, key, model string, stream bool, body []byte) {
	req := Request{
		Method: r.Method, Path: r.URL.Path, Key: key, Model: model, Stream: stream,
		Authorization: r.Header.Get("Authorization"), Header: r.Header.Clone(),
		Body: body, Time: time.Now(),
	}
	p.mu.Lock()
	// Trimming at twice the bound keeps appends amortised O(1).
	if len(p.reqs) == 2*maxRecorded {
		p.reqs = p.reqs[:copy(p.reqs, p.reqs[maxRecorded:])]
	}
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
}

type route int

const (
	routeNone route = iota
	routeChat
	routeEmbeddings
	routeModels
)

// ServeHTTP answers POST /v1/chat/completions, POST /v1/embeddings and
// GET /v1/models.
//
// The order of checks follows OpenAI: the URL, then the key (missing or
// invalid is 401 before the body is looked at), then the body (400, or 404
// for an unknown model), then the key's other failures. Client errors thus
// come back the same whatever the key's health, which is what the gateway's
// "client errors are not the key's fault" rule is tested against.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := routeNone
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		rt = routeChat
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		rt = routeEmbeddings
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models" && r.Header.Get("x-api-key") == "":
		rt = routeModels
	}
	if rt == routeNone {
		if p.serveNative(w, r) {
			return
		}
		errInvalidURL(r).write(w)
		return
	}

	key := bearer(r.Header.Get("Authorization"))
	var body []byte
	var readErr error
	if rt != routeModels {
		body, readErr = readBody(r)
	}
	var req gjson.Result // zero unless the body is a JSON object
	if doc := string(body); readErr == nil && gjson.Valid(doc) {
		if req = gjson.Parse(doc); !req.IsObject() {
			req = gjson.Result{}
		}
	}
	model := req.Get("model")
	stream := rt == routeChat && req.Get("stream").Bool()

	p.count(key)
	if !p.opts.NoRecord {
		p.record(r, key, model.Str, stream, body)
	}
	if !sleep(r.Context(), p.opts.Latency) {
		p.canceled.Add(1)
		return
	}
	if rt != routeModels && p.serveFault(w, r, key, req, stream) {
		return
	}

	if key == "" {
		errMissingKey.write(w)
		return
	}
	b := p.behavior(key)
	if b == InvalidKey {
		behaviorError(b).write(w)
		return
	}
	var quotedModel []byte
	if rt != routeModels {
		var known bool
		quotedModel, known = p.models[model.Str]
		switch {
		case readErr != nil:
			errReadBody.write(w)
			return
		case !req.IsObject():
			errBadJSON.write(w)
			return
		case model.Type != gjson.String || model.Str == "":
			errMissingModel.write(w)
			return
		case !known:
			errUnknownModel(model.Str).write(w)
			return
		}
	}
	if b != OK {
		// Streams too fail as plain JSON, before any event, as OpenAI does.
		behaviorError(b).write(w)
		return
	}

	switch rt {
	case routeModels:
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(p.modelsBody)
	case routeEmbeddings:
		p.embeddings(w, req, quotedModel)
	case routeChat:
		if req.Get("tools").IsArray() {
			p.chatTools(w, r, req, quotedModel, stream)
			return
		}
		if stream {
			p.streamChat(r.Context(), w, req, quotedModel)
		} else {
			p.chat(w, req, quotedModel)
		}
	}
}

// bearer returns the token of an "Authorization: Bearer …" header, or "".
func bearer(h string) string {
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}

// readBody reads the body in one allocation when its length is known.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > 1<<20 {
		return io.ReadAll(r.Body)
	}
	b := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, b)
	return b, err
}

// sleep waits d, and reports false if ctx ended first (or has already).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// appendHead appends what every chat answer and chunk starts with, up to
// the opening of "choices".
func appendHead(b []byte, object string, id uint64, created int64, model []byte) []byte {
	b = append(b, `{"id":"chatcmpl-mock`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = appendInt(b, created)
	b = append(b, `,"model":`...)
	return append(b, model...)
}

func (p *Provider) chat(w http.ResponseWriter, req gjson.Result, model []byte) {
	prompt, lastUser := chatPrompt(req.Get("messages"))
	var arr [16]string
	words := p.replyWords(arr[:0], lastUser)

	buf := getBuf()
	defer putBuf(buf)
	b := appendHead(*buf, "chat.completion", p.seq.Add(1), time.Now().Unix(), model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":"`...)
	for i, word := range words {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendEscaped(b, word)
	}
	b = append(b, `"},"logprobs":null,"finish_reason":"stop"}],"usage":`...)
	b = appendUsage(b, prompt, len(words))
	b = append(b, `,"system_fingerprint":"fp_mock"}`...)
	*buf = b

	w.Header()["Content-Type"] = jsonHeader["Content-Type"]
	w.Write(b)
}

var sseHeader = http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}

const (
	roleChoice = `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`
	stopChoice = `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`
)

// streamChat sends the completion as OpenAI does: a chunk with the role,
// one chunk per word (their contents concatenated are the plain answer's
// content), a chunk with finish_reason, the usage chunk if
// stream_options.include_usage asked for it, and [DONE]. Every event is
// flushed on its own; a caller that goes away stops the stream at once and
// is counted in Canceled.
func (p *Provider) streamChat(ctx context.Context, w http.ResponseWriter, req gjson.Result, model []byte) {
	prompt, lastUser := chatPrompt(req.Get("messages"))
	var arr [16]string
	words := p.replyWords(arr[:0], lastUser)
	includeUsage := req.Get("stream_options.include_usage").Bool()

	maps.Copy(w.Header(), sseHeader)
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, rc: http.NewResponseController(w), ctx: ctx, delay: p.opts.ChunkDelay}

	buf := getBuf()
	defer putBuf(buf)
	// Every event starts with the same bytes, up to the inside of "choices";
	// each is appended after head, in the same buffer.
	head := append(*buf, "data: "...)
	head = appendHead(head, "chat.completion.chunk", p.seq.Add(1), time.Now().Unix(), model)
	head = append(head, `,"system_fingerprint":"fp_mock","choices":[`...)
	*buf = head
	end := func(b []byte) []byte {
		b = append(b, ']')
		if includeUsage {
			b = append(b, `,"usage":null`...)
		}
		return append(b, "}\n\n"...)
	}

	ok := s.send(end(append(head, roleChoice...)))
	if ok && p.opts.StreamHold != nil {
		select {
		case <-p.opts.StreamHold:
		case <-ctx.Done():
			ok = false
		}
	}
	for i := 0; ok && i < len(words); i++ {
		b := append(head, `{"index":0,"delta":{"content":"`...)
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendEscaped(b, words[i])
		b = append(b, `"},"logprobs":null,"finish_reason":null}`...)
		ok = s.send(end(b))
	}
	ok = ok && s.send(end(append(head, stopChoice...)))
	if ok && includeUsage {
		b := append(head, `],"usage":`...) // "choices":[] and the totals
		b = appendUsage(b, prompt, len(words))
		ok = s.send(append(b, "}\n\n"...))
	}
	ok = ok && s.send([]byte("data: [DONE]\n\n"))
	if !ok {
		p.canceled.Add(1)
	}
}

// sse writes the events of one stream.
type sse struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	ctx   context.Context
	delay time.Duration
	sent  int
}

// send writes and flushes one event, after the chunk delay if it is not the
// first; it reports false once the caller has gone.
func (s *sse) send(event []byte) bool {
	if s.sent > 0 && !sleep(s.ctx, s.delay) {
		return false
	}
	s.sent++
	if _, err := s.w.Write(event); err != nil {
		return false
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return false
	}
	return true
}

func (p *Provider) embeddings(w http.ResponseWriter, req gjson.Result, model []byte) {
	b64 := req.Get("encoding_format").Str == "base64"
	buf := getBuf()
	defer putBuf(buf)
	b := append(*buf, `{"object":"list","data":[`...)
	i, tokens := 0, 0
	embeddingInputs(req.Get("input"), func(text string, n int) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = appendInt(b, int64(i))
		b = append(b, `,"embedding":`...)
		b = appendEmbedding(b, embedding(text), b64)
		b = append(b, '}')
		i++
		tokens += n
	})
	b = append(b, `],"model":`...)
	b = append(b, model...)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = appendInt(b, int64(tokens))
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, int64(tokens))
	b = append(b, "}}"...)
	*buf = b

	w.Header()["Content-Type"] = jsonHeader["Content-Type"]
	w.Write(b)
}
