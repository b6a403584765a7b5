package relay

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// FastTransport is an http.RoundTripper that speaks HTTP/1.1 with
// fasthttp's request writer and response parser, for the relay's upstream
// calls (upstream_client: fasthttp). The adapters still build
// *http.Request and read *http.Response: only the bytes on the wire and
// the connection handling change.
//
// It keeps what the relay relies on from net/http: a response body
// streamed as it arrives; a cancelled request context aborting the call at
// any point (dialling, TLS handshake, writing, waiting for headers, reading
// the body), with the cause as the error, as net/http returns it; the
// response header timeout; idle connections pooled per host and reused
// only after a body was read to its end; TLS; the headers net/http writes
// and reads (Host, User-Agent, Content-Length, Accept-Encoding: gzip with
// transparent decompression; canonical response header keys) and its
// refusal of an invalid header value before anything is sent.
//
// It does not speak HTTP/2 (net/http negotiates it with TLS upstreams that
// offer it) nor send trailers, and it does not go through proxies: a
// request that HTTP_PROXY/HTTPS_PROXY/NO_PROXY send to a proxy is carried
// by Fallback (net/http) instead.
//
// fasthttp's own HostClient is not used for the pool: it dials inside
// AcquireConn with no context, so a cancelled request could not abort a
// dial or a TLS handshake.
type FastTransport struct {
	// ResponseHeaderTimeout bounds the wait for an answer's headers once
	// the request is written; 0: no bound.
	ResponseHeaderTimeout time.Duration
	// TLSClientConfig, if set, is cloned for every TLS connection.
	TLSClientConfig *tls.Config
	// Fallback carries the requests the environment sends to a proxy.
	Fallback http.RoundTripper
	// MaxIdleConnsPerHost caps the idle connections kept per host (default 1024).
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection idle for this long (default 90 s).
	IdleConnTimeout time.Duration

	dialer net.Dialer
	proxy  func(*http.Request) (*neturl.URL, error)
	mu     sync.RWMutex
	hosts  map[hostKey]*fastHost
}

// NewFastTransport returns the fasthttp transport for upstream calls, with
// the same pool sizes and timeouts as NewTransport.
func NewFastTransport(responseHeaderTimeout time.Duration) *FastTransport {
	t := &FastTransport{
		ResponseHeaderTimeout: responseHeaderTimeout,
		Fallback:              NewTransport(responseHeaderTimeout),
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		dialer:                net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
	}
	// Asking the environment for every request costs a parse of the URL;
	// without any proxy variable the answer is always no.
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		if os.Getenv(v) != "" {
			t.proxy = http.ProxyFromEnvironment
			break
		}
	}
	return t
}

// Proxied reports whether the environment names a proxy, so that some
// calls go through Fallback.
func (t *FastTransport) Proxied() bool { return t.proxy != nil }

// fastHost is the pool of one scheme://host:port.
type fastHost struct {
	t    *FastTransport
	addr string // host:port to dial
	tls  bool
	name string // TLS server name

	mu   sync.Mutex
	idle []*fastConn
}

// fastConn is one upstream connection. raw is the TCP connection: closing
// it aborts whatever reads or writes the connection, TLS or not.
type fastConn struct {
	net.Conn          // raw, or a *tls.Conn over it
	raw      net.Conn //
	host     *fastHost
	reused   bool
	idleAt   time.Time
	timer    *time.Timer // closes the connection when idle too long
	readErr  error       // the last read error, which fasthttp turns into io.EOF
	state    *tls.ConnectionState
}

func (c *fastConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readErr = err
	}
	return n, err
}

func (c *fastConn) close() { c.raw.Close() }

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	// Like NewTransport's: the writer only gathers a request's headers and a small body.
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<10) }}
)

// errHeaderTimeout is net/http's error for an answer whose headers did not
// come within ResponseHeaderTimeout.
var errHeaderTimeout error = &timeoutError{"net/http: timeout awaiting response headers"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// RoundTrip implements http.RoundTripper.
func (t *FastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.proxy != nil {
		if p, err := t.proxy(req); err != nil || p != nil {
			return t.Fallback.RoundTrip(req)
		}
	}
	freq := fasthttp.AcquireRequest()
	gzipped, err := t.fill(freq, req)
	if err != nil {
		fasthttp.ReleaseRequest(freq)
		return nil, err
	}
	h := t.host(req.URL)
	ctx := req.Context()
	closeAfter := req.Close || headerHas(req.Header, "Connection", "close")
	for {
		c, err := h.get(ctx)
		if err != nil {
			fasthttp.ReleaseRequest(freq)
			return nil, err
		}
		resp, err := t.exchange(ctx, c, freq, req, gzipped, closeAfter)
		var retry *retryable
		if errors.As(err, &retry) {
			continue // a fresh connection comes next: the pool ends
		}
		fasthttp.ReleaseRequest(freq)
		return resp, err
	}
}

// retryable is a request that did not reach a server that had closed its
// idle connection: net/http sends such a request again, body and all.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }

// fill turns req into freq, reading and closing req's body. It refuses what
// net/http refuses before sending anything. gzipped reports whether the
// transport asked for gzip itself, and so must decompress the answer.
func (t *FastTransport) fill(freq *fasthttp.Request, req *http.Request) (gzipped bool, err error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	u := req.URL
	if u == nil {
		return false, errors.New("http: nil Request.URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return false, errors.New("http: no Host in request URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return false, fmt.Errorf("net/http: invalid method %q", method)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false, fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				// The key is named, never the value: it may be a secret.
				return false, fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}

	// Every header is written as given, in the order net/http writes them.
	hd := &freq.Header
	hd.DisableSpecialHeader()
	hd.DisableNormalizing()
	hd.SetMethod(method)
	hd.SetRequestURI(u.RequestURI())
	host := req.Host
	if host == "" {
		host = u.Host
	}
	hd.Add("Host", host)
	if ua, ok := req.Header["User-Agent"]; !ok {
		hd.Add("User-Agent", "Go-http-client/1.1")
	} else if len(ua) > 0 && ua[0] != "" {
		hd.Add("User-Agent", ua[0])
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			hd.Add(k, v)
		}
	}
	if req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" && method != http.MethodHead {
		hd.Add("Accept-Encoding", "gzip")
		gzipped = true
	}
	if req.Body != nil && req.Body != http.NoBody {
		if _, err := io.Copy(freq.BodyWriter(), req.Body); err != nil {
			return false, err
		}
	}
	// fasthttp adds Content-Length for a method that may carry a body.
	return gzipped, nil
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return m != ""
}

// headerHas reports whether a comma-separated header has token v.
func headerHas(h http.Header, name, v string) bool {
	for _, s := range h[name] {
		for _, tok := range strings.Split(s, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), v) {
				return true
			}
		}
	}
	return false
}

// exchange writes freq on c and reads the answer's headers. The body that
// follows is read through the response's Body, which puts c back in the
// pool when read to its end.
func (t *FastTransport) exchange(ctx context.Context, c *fastConn, freq *fasthttp.Request, req *http.Request, gzipped, closeAfter bool) (*http.Response, error) {
	// From here to the end of the body, a cancelled context closes the
	// connection: every read or write on it returns at once.
	var cancelled atomic.Bool
	stop := context.AfterFunc(ctx, func() { cancelled.Store(true); c.close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}

	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	err := freq.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	if err != nil {
		if c.reused && ctx.Err() == nil {
			stop()
			c.close()
			return nil, &retryable{err}
		}
		return fail(err)
	}

	if t.ResponseHeaderTimeout > 0 {
		c.SetReadDeadline(time.Now().Add(t.ResponseHeaderTimeout))
	}
	fresp := fasthttp.AcquireResponse()
	fresp.StreamBody = true
	fresp.SkipBody = req.Method == http.MethodHead
	fresp.Header.DisableNormalizing()
	fresp.Header.SetNoDefaultContentType(true)
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c)
	release := func() {
		fresp.CloseBodyStream()
		fasthttp.ReleaseResponse(fresp)
		br.Reset(nil)
		readerPool.Put(br)
	}
	c.readErr = nil
	if err := fresp.ReadLimitBody(br, 0); err != nil {
		release()
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, fasthttp.ErrTimeout):
			err = errHeaderTimeout
		case errors.Is(err, io.EOF) && c.reused && (c.readErr == nil || errors.Is(c.readErr, io.EOF)):
			// The server had closed the idle connection: nothing was read.
			stop()
			c.close()
			return nil, &retryable{err}
		case errors.Is(err, io.EOF) && c.readErr != nil:
			err = c.readErr // fasthttp says EOF for any error on the first byte
		}
		return fail(err)
	}
	if t.ResponseHeaderTimeout > 0 {
		c.SetReadDeadline(time.Time{})
	}
	if cancelled.Load() {
		release()
		return fail(context.Canceled)
	}

	resp := &http.Response{
		StatusCode: fresp.StatusCode(),
		Proto:      string(fresp.Header.Protocol()),
		ProtoMajor: 1, ProtoMinor: 1,
		Header:        make(http.Header, 8),
		ContentLength: -1,
		Request:       req,
		TLS:           c.state,
	}
	if resp.Proto == "HTTP/1.0" {
		resp.ProtoMinor = 0
	}
	resp.Status = statusLine(resp.StatusCode, fresp.Header.StatusMessage())
	cl := fresp.Header.ContentLength()
	closeAfter = closeAfter || fresp.Header.ConnectionClose() || cl == -2 // -2: the body ends when the connection does
	copyHeader(resp.Header, &fresp.Header)
	resp.Close = closeAfter
	switch {
	case cl >= 0:
		resp.ContentLength = int64(cl)
	case cl == -1:
		resp.TransferEncoding = []string{"chunked"}
	}
	if fresp.SkipBody || fresp.BodyStream() == nil {
		// No body: the connection is free at once.
		release()
		if stop() && !closeAfter {
			c.host.put(c)
		} else {
			c.close()
		}
		resp.Body = http.NoBody
		if !fresp.SkipBody {
			resp.ContentLength = 0 // a 204 or a 304
		}
		return resp, nil
	}
	// fasthttp parsed the headers and left the body in br. Its chunked
	// reader hands out one chunk per Read; net/http's hands out every
	// chunk already buffered, and the relay flushes the caller whenever its
	// reader has nothing buffered: one chunk per Read would make one
	// write to the caller per event.
	fresp.CloseBodyStream()
	fasthttp.ReleaseResponse(fresp)
	var r io.Reader
	switch {
	case cl >= 0:
		r = &lengthBody{br: br, n: int64(cl)}
	case cl == -1:
		r = &chunkedBody{br: br, cr: httputil.NewChunkedReader(br)}
	default:
		r = br // to the end of the connection
	}
	release = func() {
		br.Reset(nil)
		readerPool.Put(br)
	}
	body := &fastBody{ctx: ctx, c: c, r: r, release: release, stop: stop, closeAfter: closeAfter}
	resp.Body = body
	if gzipped && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gzipBody{body: body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	return resp, nil
}

// statusLine is the Status of an answer: "200 OK". The common ones are
// made once.
func statusLine(code int, msg []byte) string {
	if code >= 100 && code < 600 {
		if s := statusLines[code]; s != "" && string(msg) == s[4:] {
			return s
		}
	}
	if len(msg) == 0 {
		return strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + string(msg)
}

var statusLines = func() (s [600]string) {
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			s[code] = strconv.Itoa(code) + " " + t
		}
	}
	return s
}()

// copyHeader puts the answer's headers into dst as net/http reads them:
// keys canonical, all the values in one string and one slice, as
// textproto.Reader does; Transfer-Encoding, Trailer and a Connection
// saying close left out (net/http moves them to fields of the Response).
func copyHeader(dst http.Header, src *fasthttp.ResponseHeader) {
	n, size := 0, 0
	for _, v := range src.All() {
		n++
		size += len(v)
	}
	var b strings.Builder
	b.Grow(size)
	for _, v := range src.All() {
		b.Write(v)
	}
	all := b.String()
	strs := make([]string, n)
	off := 0
	for k, v := range src.All() {
		val := all[off : off+len(v)]
		off += len(v)
		key := headerKey(k)
		switch key {
		case "Transfer-Encoding", "Trailer":
			continue
		case "Connection":
			if headerValueHas(v, "close") {
				continue
			}
		}
		if vv := dst[key]; vv != nil {
			dst[key] = append(vv, val)
			continue
		}
		strs[0] = val
		dst[key] = strs[:1:1]
		strs = strs[1:]
	}
}

// commonKeys are the header keys of most answers, kept as strings so that
// reading them allocates nothing.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Date", "Server", "Connection",
		"Cache-Control", "Transfer-Encoding", "Set-Cookie", "Vary", "X-Request-Id", "Openai-Processing-Ms", "Openai-Version",
		"Openai-Organization", "Request-Id", "Retry-After", "Access-Control-Allow-Origin", "Strict-Transport-Security",
		"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
		"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens", "Keep-Alive"} {
		m[k] = k
	}
	return m
}()

// headerKey is k in net/http's canonical form.
func headerKey(k []byte) string {
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

func headerValueHas(v []byte, tok string) bool {
	for _, s := range strings.Split(string(v), ",") {
		if strings.EqualFold(strings.TrimSpace(s), tok) {
			return true
		}
	}
	return false
}

// lengthBody is a body of Content-Length bytes.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (l *lengthBody) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.br.Read(p)
	l.n -= int64(n)
	switch {
	case l.n == 0:
		err = io.EOF
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkedBody is a chunked body; at its end it reads the trailer, which
// keygate drops (no provider sends one), so that the connection is ready
// for the next answer.
type chunkedBody struct {
	br *bufio.Reader
	cr io.Reader
}

func (c *chunkedBody) Read(p []byte) (int, error) {
	n, err := c.cr.Read(p)
	if errors.Is(err, io.EOF) {
		for i := 0; ; i++ {
			line, lerr := c.br.ReadSlice('\n')
			if lerr != nil || i > 100 {
				return n, cmp.Or(lerr, errors.New("http: too many trailer lines"))
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	}
	return n, err
}

// fastBody is an answer's body. Read to its end, it puts the connection
// back in the pool; closed before, it closes the connection, as net/http
// does. Close may come while a Read waits: it aborts it.
type fastBody struct {
	ctx        context.Context
	c          *fastConn
	r          io.Reader
	release    func()
	stop       func() bool
	closeAfter bool

	mu     sync.Mutex // held by Read
	closed atomic.Bool
	done   bool // the connection was given back or closed
	err    error
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("http: read on closed response body")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.finish(true)
	default:
		if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		} else if b.closed.Load() {
			err = errors.New("http: read on closed response body")
		}
		b.err = err
		b.finish(false)
	}
	return n, err
}

// finish gives the connection back if the body was read whole and nothing
// cancelled it; otherwise it closes it. b.mu is held.
func (b *fastBody) finish(whole bool) {
	if b.done {
		return
	}
	b.done = true
	b.release()
	if b.stop() && whole && !b.closeAfter {
		b.c.host.put(b.c)
		return
	}
	b.c.close()
}

func (b *fastBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if !b.mu.TryLock() {
		b.c.close() // a Read waits on the network: end it
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	b.finish(false)
	return nil
}

// gzipBody decompresses a body the transport asked gzip for, as net/http's
// does: the gzip reader is made at the first Read.
type gzipBody struct {
	body *fastBody
	zr   *gzip.Reader
	err  error
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		if g.zr, g.err = gzip.NewReader(g.body); g.err != nil {
			return 0, g.err
		}
	}
	n, err := g.zr.Read(p)
	if err != nil {
		g.err = err
	}
	return n, err
}

func (g *gzipBody) Close() error { return g.body.Close() }

// host is the pool of u's scheme and host.
func (t *FastTransport) host(u *neturl.URL) *fastHost {
	key := hostKey{u.Scheme == "https", u.Host}
	t.mu.RLock()
	h := t.hosts[key]
	t.mu.RUnlock()
	if h != nil {
		return h
	}
	h = &fastHost{t: t, tls: key.https, name: u.Hostname()}
	port := u.Port()
	if port == "" {
		port = "80"
		if h.tls {
			port = "443"
		}
	}
	h.addr = net.JoinHostPort(u.Hostname(), port)
	t.mu.Lock()
	defer t.mu.Unlock()
	if x := t.hosts[key]; x != nil {
		return x
	}
	if t.hosts == nil {
		t.hosts = map[hostKey]*fastHost{}
	}
	t.hosts[key] = h
	return h
}

// hostKey names a pool: a map key that costs no allocation to look up.
type hostKey struct {
	https bool
	host  string
}

// get returns an idle connection, the most recently used first, or dials.
func (h *fastHost) get(ctx context.Context) (*fastConn, error) {
	h.mu.Lock()
	for n := len(h.idle); n > 0; n = len(h.idle) {
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		if time.Since(c.idleAt) < h.t.idleTimeout() {
			c.timer.Stop()
			h.mu.Unlock()
			return c, nil
		}
		c.close()
	}
	h.mu.Unlock()
	return h.dial(ctx)
}

func (t *FastTransport) idleTimeout() time.Duration {
	return durationOr(t.IdleConnTimeout, 90*time.Second)
}

// put keeps c for the next request.
func (h *fastHost) put(c *fastConn) {
	c.reused = true
	c.idleAt = time.Now()
	h.mu.Lock()
	if len(h.idle) >= orDefault(h.t.MaxIdleConnsPerHost, 1024) {
		h.mu.Unlock()
		c.close()
		return
	}
	h.idle = append(h.idle, c)
	if c.timer == nil {
		c.timer = time.AfterFunc(h.t.idleTimeout(), func() { h.expire(c) })
	} else {
		c.timer.Reset(h.t.idleTimeout())
	}
	h.mu.Unlock()
}

// expire closes c if it is still idle.
func (h *fastHost) expire(c *fastConn) {
	h.mu.Lock()
	for i, x := range h.idle {
		if x == c {
			h.idle = append(h.idle[:i], h.idle[i+1:]...)
			h.mu.Unlock()
			c.close()
			return
		}
	}
	h.mu.Unlock()
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// dial opens a connection to the host, TLS for https, within ctx.
func (h *fastHost) dial(ctx context.Context) (*fastConn, error) {
	raw, err := h.t.dialer.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	c := &fastConn{Conn: raw, raw: raw, host: h}
	if !h.tls {
		return c, nil
	}
	cfg := &tls.Config{}
	if h.t.TLSClientConfig != nil {
		cfg = h.t.TLSClientConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = h.name
	}
	cfg.NextProtos = []string{"http/1.1"}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second) // net/http's TLSHandshakeTimeout
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	st := tc.ConnectionState()
	c.Conn, c.state = tc, &st
	return c, nil
}
