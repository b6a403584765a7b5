package relay

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/respond"
	"github.com/tidwall/gjson"
)

// Transport is the pooled client as a library (SPEC section 5): an
// http.RoundTripper that sends OpenAI-format requests over the keys of the
// Relay's pool, with the same key choice, health, failover, fallbacks,
// fetched keys and accounting as the gateway, and no HTTP server. Give it
// to any OpenAI client as its HTTP client's transport; the request's host
// does not matter, its path below /v1/ and its body do.
//
// Errors keygate decides itself (unknown model, no available key) come
// back as HTTP answers in OpenAI's error shape, as from the gateway.
type Transport struct {
	Relay *Relay
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	w := newPipeWriter(req)
	call, err := t.call(req, body)
	if err != nil {
		go func() { defer w.finish(); respond.Error(w, nil, err) }()
		return w.response(), nil
	}
	go func() {
		defer w.finish()
		t.Relay.Serve(w, req, call)
	}()
	return w.response(), nil
}

func (t *Transport) call(req *http.Request, body []byte) (*Call, error) {
	path := req.URL.Path
	if i := strings.Index(path, "/v1/"); i >= 0 {
		path = path[i+len("/v1/"):]
	}
	path = strings.TrimPrefix(path, "/")
	if err := jsonx.CheckObject(body); err != nil {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "request body is not valid JSON: %v", err)
	}
	model := gjson.GetBytes(body, "model")
	if model.Type != gjson.String || model.Str == "" {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "missing required field: model (a string)")
	}
	g := t.Relay.Pool.Group(model.Str)
	if g == nil {
		return nil, keygate.Errorf(keygate.EModelNotFound, "The model `%s` does not exist", model.Str)
	}
	id := req.Header.Get("X-Request-Id")
	if id == "" {
		var b [8]byte
		rand.Read(b[:])
		id = "req_" + hex.EncodeToString(b[:])
	}
	return &Call{
		Request: provider.Request{
			Dialect: DialectOf(path), Path: path, Body: body, Model: model.Str,
			Stream: gjson.GetBytes(body, "stream").Bool(), RequestID: id,
			ContentType: req.Header.Get("Content-Type"), Header: provider.ForwardHeaders(req.Header),
		},
		Group: g, Start: t.Relay.Clock.Now(),
	}, nil
}

// DialectOf names the OpenAI dialect of a route below /v1/.
func DialectOf(path string) provider.Dialect {
	switch path {
	case "chat/completions":
		return provider.DialectChat
	case "embeddings":
		return provider.DialectEmbeddings
	case "completions":
		return provider.DialectCompletions
	case "responses":
		return provider.DialectResponses
	case "messages":
		return provider.DialectMessages
	}
	return provider.DialectOther
}

// pipeWriter is an http.ResponseWriter whose answer is read as an
// *http.Response: the headers when they are written, the body through a
// pipe, so a stream reaches the reader event by event.
type pipeWriter struct {
	req    *http.Request
	header http.Header
	pr     *io.PipeReader
	pw     *io.PipeWriter
	ready  chan *http.Response
	once   sync.Once
}

func newPipeWriter(req *http.Request) *pipeWriter {
	pr, pw := io.Pipe()
	return &pipeWriter{req: req, header: http.Header{}, pr: pr, pw: pw, ready: make(chan *http.Response, 1)}
}

func (p *pipeWriter) Header() http.Header { return p.header }

func (p *pipeWriter) WriteHeader(status int) {
	p.once.Do(func() {
		h := p.header.Clone()
		cl := int64(-1)
		if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
			cl = n
		}
		p.ready <- &http.Response{
			Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: h, Body: p.pr, ContentLength: cl, Request: p.req,
		}
	})
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// Flush implements http.Flusher: the pipe has no buffer to flush.
func (p *pipeWriter) Flush() {}

func (p *pipeWriter) finish() {
	p.WriteHeader(http.StatusOK)
	p.pw.Close()
}

func (p *pipeWriter) response() *http.Response { return <-p.ready }
