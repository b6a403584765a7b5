package relay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The upstream clients must behave alike: every test here runs on both,
// and what the provider sees and what the relay gets back must not depend
// on which one carried the call.

var clients = []string{UpstreamNet, UpstreamFastHTTP}

func eachClient(t *testing.T, headerTimeout time.Duration, fn func(t *testing.T, rt http.RoundTripper)) {
	for _, name := range clients {
		t.Run(name, func(t *testing.T) {
			rt, err := NewUpstream(name, headerTimeout)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, rt)
		})
	}
}

func post(t *testing.T, ctx context.Context, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

var errGone = errors.New("the test's own cause")

// A stream reaches the relay event by event: the provider sends the
// second event only once the first was read.
func TestUpstreamStreamsAsItArrives(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		read := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-read:
			case <-time.After(5 * time.Second):
				return // the client waited for more than the first event: cut
			}
			io.WriteString(w, "data: two\n\n")
		}))
		defer srv.Close()
		resp, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		close(read)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "\ndata: two\n\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
}

// Events that arrived together come out of one Read, as from net/http:
// the relay flushes the caller when its reader has nothing buffered, so
// one event per Read would make one write to the caller per event.
func TestUpstreamReadsEveryBufferedEvent(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		sent := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, ev := range []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"} {
				io.WriteString(w, ev)
				w.(http.Flusher).Flush() // a chunk each
			}
			close(sent)
			<-r.Context().Done()
		}))
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := rt.RoundTrip(post(t, ctx, srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		<-sent
		time.Sleep(50 * time.Millisecond) // loopback: the three chunks are in
		// The first event may have come with the headers, and the others
		// after: two Reads at most, not one per event.
		var got []byte
		buf := make([]byte, 4096)
		for reads := 1; reads <= 2 && len(got) < len("data: one\n\ndata: two\n\ndata: three\n\n"); reads++ {
			n, err := resp.Body.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if string(got) != "data: one\n\ndata: two\n\ndata: three\n\n" {
			t.Fatalf("two Reads gave %q", got)
		}
	})
}

// blockingServer's handler waits for the call to go away, and says on
// gone whether it did.
func blockingServer(t *testing.T, before func(w http.ResponseWriter)) (*httptest.Server, chan bool) {
	gone := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server watches the connection once the body is read
		if before != nil {
			before(w)
		}
		select {
		case <-r.Context().Done():
			gone <- true
		case <-time.After(5 * time.Second):
			gone <- false
		}
	}))
	t.Cleanup(srv.Close)
	return srv, gone
}

// A caller that goes away (or a hedge that lost, or an idle stream) ends
// the provider's call before its headers, with the context's cause.
func TestUpstreamCancelBeforeHeaders(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		srv, gone := blockingServer(t, nil)
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(50*time.Millisecond, func() { cancel(errGone) })
		began := time.Now()
		_, err := rt.RoundTrip(post(t, ctx, srv.URL, `{}`))
		if !errors.Is(err, errGone) {
			t.Fatalf("err = %v, want the cause", err)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("returned after %s", d)
		}
		if !<-gone {
			t.Fatal("the provider never saw the call end")
		}
	})
}

// Cancelled in the middle of the body, the read ends at once with the
// cause, and the provider sees the connection go.
func TestUpstreamCancelDuringBody(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		srv, gone := blockingServer(t, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
		})
		ctx, cancel := context.WithCancelCause(context.Background())
		resp, err := rt.RoundTrip(post(t, ctx, srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "data: one\n\n" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		time.AfterFunc(50*time.Millisecond, func() { cancel(errGone) })
		_, err = io.ReadAll(resp.Body)
		if !errors.Is(err, errGone) {
			t.Fatalf("err = %v, want the cause", err)
		}
		if !<-gone {
			t.Fatal("the provider never saw the call end")
		}
	})
}

// Closing a body while a Read waits ends the Read.
func TestUpstreamCloseDuringRead(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		srv, gone := blockingServer(t, func(w http.ResponseWriter) {
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
		})
		resp, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := io.ReadAll(resp.Body); done <- err }()
		time.Sleep(50 * time.Millisecond) // let the Read block
		resp.Body.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the read ended without an error")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not end the Read")
		}
		if !<-gone {
			t.Fatal("the provider never saw the call end")
		}
	})
}

// No headers within the response header timeout: a timeout error.
func TestUpstreamResponseHeaderTimeout(t *testing.T) {
	eachClient(t, 100*time.Millisecond, func(t *testing.T, rt http.RoundTripper) {
		srv, _ := blockingServer(t, nil)
		_, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() || !strings.Contains(err.Error(), "timeout awaiting response headers") {
			t.Fatalf("err = %v, want net/http's header timeout", err)
		}
	})
}

// countingServer counts the connections the provider accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// A connection goes back to the pool when its body was read to the end,
// and only then: one closed early is not reused.
func TestUpstreamReusesOnlyReadBodies(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("answer ", 2000)) // more than one read buffer
		})
		call := func(readAll bool) {
			resp, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
			if err != nil {
				t.Fatal(err)
			}
			if readAll {
				io.Copy(io.Discard, resp.Body)
			} else {
				resp.Body.Read(make([]byte, 10))
			}
			resp.Body.Close()
		}
		call(true)
		call(true)
		if n := conns.Load(); n != 1 {
			t.Fatalf("%d connections for two bodies read whole, want 1", n)
		}
		call(false)
		call(true)
		if n := conns.Load(); n != 2 {
			t.Fatalf("%d connections after a body closed early, want 2", n)
		}
	})
}

// A provider that closed an idle connection costs nothing: the request
// goes out again on a new one.
func TestUpstreamStaleIdleConnection(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		var n atomic.Int32
		srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				// Answer in full, keep-alive, then drop the connection.
				c, buf, _ := http.NewResponseController(w).Hijack()
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				buf.Flush()
				c.Close()
				return
			}
			io.WriteString(w, "again")
		})
		for i, want := range []string{"ok", "again"} {
			resp, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Fatalf("call %d: %q", i+1, b)
			}
			time.Sleep(20 * time.Millisecond) // the close reaches the client
		}
		if c := conns.Load(); c != 2 {
			t.Fatalf("%d connections, want 2", c)
		}
	})
}

// seen is what a provider saw of a request.
type seen struct {
	Method, URI, Host, Proto string
	Header                   http.Header
	ContentLength            int64
	TransferEncoding         []string
	Body                     string
}

// What the provider sees of a request, and what the relay sees of the
// answer, are the same on both clients.
func TestUpstreamHeadersAsNetHTTP(t *testing.T) {
	var got []seen
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.RequestURI, r.Host, r.Proto, r.Header, r.ContentLength, r.TransferEncoding, string(b)})
		mu.Unlock()
		h := w.Header()
		h["x-lower-case"] = []string{"as sent"}
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Add("X-Ratelimit-Remaining-Requests", "99")
		h.Add("Openai-Processing-Ms", "12")
		if r.URL.Query().Get("chunked") == "" {
			h.Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		h.Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()

	type answer struct {
		Status, Proto    string
		Header           http.Header
		ContentLength    int64
		TransferEncoding []string
		Close            bool
		Body             string
	}
	var answers [][]answer
	for _, name := range clients {
		rt, _ := NewUpstream(name, 0)
		var as []answer
		for _, q := range []string{"/v1/chat/completions?a=1&b=%2F", "/v1/chat/completions?chunked=1"} {
			req := post(t, context.Background(), srv.URL+q, `{"model":"m"}`)
			req.Header.Set("Authorization", "Bearer sk-test")
			req.Header["Openai-Beta"] = []string{"assistants=v2", "other"}
			req.Header.Set("X-Request-Id", "req_1")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Header.Del("Date") // a clock, not a header difference
			as = append(as, answer{resp.Status, resp.Proto, resp.Header, resp.ContentLength, resp.TransferEncoding, resp.Close, string(b)})
		}
		answers = append(answers, as)
		// GET with no body, and a User-Agent of the adapter's own.
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/models", nil)
		req.Header.Set("User-Agent", "keygate-test")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if len(got) != 6 {
		t.Fatalf("%d requests seen", len(got))
	}
	for i := range 3 {
		n, f := got[i], got[i+3]
		if !sameJSON(t, n, f) {
			t.Errorf("request %d: net/http sent\n%+v\nfasthttp sent\n%+v", i, n, f)
		}
	}
	for i := range answers[0] {
		if !sameJSON(t, answers[0][i], answers[1][i]) {
			t.Errorf("answer %d: net/http read\n%+v\nfasthttp read\n%+v", i, answers[0][i], answers[1][i])
		}
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// A key with a control character is refused before anything is sent, with
// net/http's words, which the classifier reads as the key's fault.
func TestUpstreamRefusesInvalidHeader(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
		defer srv.Close()
		req := post(t, context.Background(), srv.URL, `{}`)
		req.Header.Set("Authorization", "Bearer sk-pasted\n")
		_, err := rt.RoundTrip(req)
		if err == nil || !strings.Contains(err.Error(), `invalid header field value for "Authorization"`) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "sk-pasted") {
			t.Fatal("the error shows the key")
		}
		if calls.Load() != 0 {
			t.Fatal("the request was sent")
		}
	})
}

// An answer gzipped because the transport asked for it arrives plain.
func TestUpstreamGzip(t *testing.T) {
	eachClient(t, 0, func(t *testing.T, rt http.RoundTripper) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, `{"ok":true}`)
			zw.Close()
		}))
		defer srv.Close()
		resp, err := rt.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != `{"ok":true}` || !resp.Uncompressed || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("body %q, %v; uncompressed %v, Content-Encoding %q", b, err, resp.Uncompressed, resp.Header.Get("Content-Encoding"))
		}
	})
}

// https upstreams: TLS with the server's name checked, HTTP/1.1.
func TestUpstreamTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	defer srv.Close()
	trusted := srv.Client().Transport.(*http.Transport).TLSClientConfig
	ft := NewFastTransport(0)
	if _, err := ft.RoundTrip(post(t, context.Background(), srv.URL, `{}`)); err == nil || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("untrusted certificate: err = %v", err)
	}
	ft.TLSClientConfig = trusted
	for range 2 {
		resp, err := ft.RoundTrip(post(t, context.Background(), srv.URL, `{}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "HTTP/1.1" || resp.TLS == nil || !resp.TLS.HandshakeComplete {
			t.Fatalf("body %q, TLS %v", b, resp.TLS)
		}
	}
}

// A call the environment sends through a proxy goes through net/http.
func TestUpstreamProxyFallsBack(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		io.WriteString(w, "via proxy to "+r.URL.Host)
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	viaProxy := func(*http.Request) (*url.URL, error) { return pu, nil }
	ft := NewFastTransport(0)
	ft.proxy = viaProxy
	ft.Fallback.(*http.Transport).Proxy = viaProxy
	resp, err := ft.RoundTrip(post(t, context.Background(), "http://provider.invalid/v1/chat/completions", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "via proxy to provider.invalid" || proxied.Load() != 1 {
		t.Fatalf("body %q", b)
	}
}
