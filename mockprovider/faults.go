package mockprovider

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Fault is a way real upstreams misbehave: the gateway in front of the
// mock must survive each one and blame the right party. A fault applies to
// chat and embeddings requests (never to the model list, which key checks
// call), set per key (SetFault) or for the next requests (Script).
type Fault string

// The faults. "Stream" ones act on streamed chat requests; a request that
// is not streamed gets the closest non-stream equivalent, noted.
const (
	FaultHTML             Fault = "html"               // 200 with an HTML page
	FaultTruncated        Fault = "truncated"          // 200 JSON cut off in the middle (a stream: the same JSON, not SSE)
	FaultDieBeforeFirst   Fault = "die_before_first"   // 200 headers, then the connection closes (not streamed: a body short of its Content-Length)
	FaultDieAfterFirst    Fault = "die_after_first"    // a stream's first event, then the connection closes
	FaultHang             Fault = "hang"               // a stream's first event, then nothing until the caller leaves
	FaultSSEVariants      Fault = "sse_variants"       // a whole stream with data: without a space, CRLF, comments and multi-line data
	FaultEchoKey          Fault = "echo_key"           // 500 whose message contains the key
	FaultEchoKeyEscaped   Fault = "echo_key_escaped"   // 500 whose message contains the key JSON-escaped (\u002d for -)
	FaultHuge             Fault = "huge"               // 200 JSON of FaultOptions.HugeBytes
	FaultErrorIn200       Fault = "error_in_200"       // 200 {"error":{… insufficient_quota}}
	FaultStreamErrorEvent Fault = "stream_error_event" // a stream whose first event is an error object (not streamed: as FaultErrorIn200)
	FaultRetryAfterDate   Fault = "retry_after_date"   // 429 with Retry-After as an HTTP date, FaultOptions.RetryAfter ahead
	FaultRetryAfter1s     Fault = "retry_after_1s"     // 429 with Retry-After: 1, for clients that honour it
	FaultReset            Fault = "reset"              // the connection reset before any header
	FaultClose            Fault = "close"              // the connection closed before any header
	FaultOrgHeader401     Fault = "org_header_401"     // 401 mismatched_organization if the request carries OpenAI-Organization
	FaultRequest401       Fault = "request_401"        // 401 invalid_api_key for this request, though the key is good
	FaultRedirect         Fault = "redirect"           // 307 to FaultOptions.RedirectTo
	FaultKeyInHeader      Fault = "key_in_header"      // a good answer with the key, the organisation and rate limits in its headers
	FaultSilence          Fault = "silence"            // headers, then nothing until the caller leaves
	FaultDeepNesting      Fault = "deep_nesting"       // 200 with a megabyte of nested [
)

// Faults lists every fault, for table-driven tests.
var Faults = []Fault{FaultHTML, FaultTruncated, FaultDieBeforeFirst, FaultDieAfterFirst, FaultHang, FaultSSEVariants,
	FaultEchoKey, FaultEchoKeyEscaped, FaultHuge, FaultErrorIn200, FaultStreamErrorEvent, FaultRetryAfterDate,
	FaultReset, FaultClose, FaultOrgHeader401, FaultRequest401, FaultRedirect, FaultKeyInHeader, FaultSilence, FaultDeepNesting}

// FaultOptions tune the faults that need a value.
type FaultOptions struct {
	RedirectTo string           // FaultRedirect's Location
	HugeBytes  int              // FaultHuge's size (default 8 MiB)
	RetryAfter time.Duration    // FaultRetryAfterDate's wait (default 30 s)
	Now        func() time.Time // the clock of FaultRetryAfterDate's date (default time.Now)
}

type faultState struct {
	opts    atomic.Pointer[FaultOptions]
	byKey   sync.Map // key → Fault
	mu      sync.Mutex
	script  []Fault
	stalled atomic.Int64
	on      atomic.Bool // a fault was ever set: before, requests skip every lock here
}

// SetFault makes every request with key misbehave as f ("" clears it).
func (p *Provider) SetFault(key string, f Fault) {
	if f == "" {
		p.faults.byKey.Delete(key)
		return
	}
	p.faults.on.Store(true)
	p.faults.byKey.Store(key, f)
}

// Script makes the next requests misbehave, one fault each, in order,
// whatever their key; "" in the list is a request answered normally.
func (p *Provider) Script(faults ...Fault) {
	p.faults.on.Store(true)
	p.faults.mu.Lock()
	p.faults.script = append(p.faults.script, faults...)
	p.faults.mu.Unlock()
}

// SetFaultOptions sets the values the faults use.
func (p *Provider) SetFaultOptions(o FaultOptions) { p.faults.opts.Store(&o) }

// Stalled is how many requests are held by FaultHang or FaultSilence now.
func (p *Provider) Stalled() int { return int(p.faults.stalled.Load()) }

func (p *Provider) faultFor(key string) Fault {
	p.faults.mu.Lock()
	if len(p.faults.script) > 0 {
		f := p.faults.script[0]
		p.faults.script = p.faults.script[1:]
		p.faults.mu.Unlock()
		return f
	}
	p.faults.mu.Unlock()
	if f, ok := p.faults.byKey.Load(key); ok {
		return f.(Fault)
	}
	return ""
}

func (p *Provider) faultOptions() FaultOptions {
	o := FaultOptions{HugeBytes: 8 << 20, RetryAfter: 30 * time.Second, Now: time.Now}
	if s := p.faults.opts.Load(); s != nil {
		if s.RedirectTo != "" {
			o.RedirectTo = s.RedirectTo
		}
		if s.HugeBytes > 0 {
			o.HugeBytes = s.HugeBytes
		}
		if s.RetryAfter > 0 {
			o.RetryAfter = s.RetryAfter
		}
		if s.Now != nil {
			o.Now = s.Now
		}
	}
	return o
}

// serveFault answers the request with its fault, if it has one, and
// reports whether it did.
func (p *Provider) serveFault(w http.ResponseWriter, r *http.Request, key string, req gjson.Result, stream bool) bool {
	if !p.hasFaults() {
		return false
	}
	f := p.faultFor(key)
	if f == "" {
		return false
	}
	o := p.faultOptions()
	model := quote(req.Get("model").Str)
	switch f {
	case FaultHTML:
		behaviorError(Garbage).write(w)
	case FaultTruncated:
		writeJSON(w, http.StatusOK, []byte(`{"id":"chatcmpl-cut","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis`))
	case FaultDieBeforeFirst:
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"id":"chatcmpl-cut",`))
			http.NewResponseController(w).Flush()
		}
		abort(w, false)
	case FaultDieAfterFirst, FaultHang:
		if !stream {
			p.chat(w, req, model)
			return true
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.Write(chunk(model, `{"index":0,"delta":{"role":"assistant","content":"first"},"finish_reason":null}`))
		http.NewResponseController(w).Flush()
		if f == FaultDieAfterFirst {
			abort(w, false)
			return true
		}
		p.stall(r.Context())
	case FaultSSEVariants:
		if !stream {
			p.chat(w, req, model)
			return true
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		c1 := `{"id":"v","object":"chat.completion.chunk","model":` + string(model) + `,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}],"usage":null}`
		for _, part := range []string{
			": a comment, as keep-alives are\r\n\r\n",
			"data:" + c1 + "\r\n\r\n",
			"data: {\"id\":\"v\",\"object\":\"chat.completion.chunk\",\r\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":\"stop\"}],\"usage\":null}\r\n\r\n",
			"data:{\"id\":\"v\",\"object\":\"chat.completion.chunk\",\"choices\" : [ ],\"usage\" : {\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n",
			"data:[DONE]\n\n",
		} {
			w.Write([]byte(part))
			rc.Flush()
		}
	case FaultEchoKey:
		writeJSON(w, http.StatusInternalServerError, openAIError("upstream failed for key "+key, "server_error", ""))
	case FaultEchoKeyEscaped:
		body := openAIError("upstream failed for key "+key, "server_error", "")
		writeJSON(w, http.StatusInternalServerError, bytes.ReplaceAll(body, []byte(key), []byte(strings.ReplaceAll(key, "-", `\u002d`))))
	case FaultHuge:
		b := make([]byte, 0, o.HugeBytes+64)
		b = append(b, `{"id":"huge","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`...)
		for len(b) < o.HugeBytes {
			b = append(b, "aaaaaaaaaaaaaaaa"...)
		}
		writeJSON(w, http.StatusOK, append(b, `"}}]}`...))
	case FaultErrorIn200, FaultStreamErrorEvent:
		e := openAIError("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
		if f == FaultStreamErrorEvent && stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.Write(append(append([]byte("data: "), e...), "\n\n"...))
			return true
		}
		writeJSON(w, http.StatusOK, e)
	case FaultRetryAfterDate:
		w.Header().Set("Retry-After", o.Now().Add(o.RetryAfter).UTC().Format(http.TimeFormat))
		writeJSON(w, http.StatusTooManyRequests, openAIError("Rate limit reached for requests", "requests", "rate_limit_exceeded"))
	case FaultRetryAfter1s:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, openAIError("Rate limit reached for requests", "requests", "rate_limit_exceeded"))
	case FaultReset:
		abort(w, true)
	case FaultClose:
		abort(w, false)
	case FaultOrgHeader401:
		if r.Header.Get("OpenAI-Organization") != "" {
			writeJSON(w, http.StatusUnauthorized, openAIError("OpenAI-Organization header should match organization for API key",
				"invalid_request_error", "mismatched_organization"))
			return true
		}
		return false
	case FaultRequest401:
		behaviorError(InvalidKey).write(w)
	case FaultRedirect:
		w.Header().Set("Location", o.RedirectTo)
		w.WriteHeader(http.StatusTemporaryRedirect)
	case FaultKeyInHeader:
		h := w.Header()
		h.Set("X-Echo-Key", key)
		h.Set("Openai-Organization", "org-secret-account")
		h.Set("X-Ratelimit-Remaining-Requests", "7")
		h.Set("Set-Cookie", "session=upstream")
		return false // and answer normally
	case FaultSilence:
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		p.stall(r.Context())
	case FaultDeepNesting:
		writeJSON(w, http.StatusOK, []byte(strings.Repeat("[", 1<<20)))
	default:
		return false
	}
	return true
}

func (p *Provider) hasFaults() bool { return p.faults.on.Load() }

// stall holds the request until the caller goes away.
func (p *Provider) stall(ctx context.Context) {
	p.faults.stalled.Add(1)
	defer p.faults.stalled.Add(-1)
	<-ctx.Done()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func chunk(model []byte, choice string) []byte {
	b := append([]byte(`data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1700000000,"model":`), model...)
	b = append(b, `,"choices":[`...)
	b = append(b, choice...)
	return append(b, "]}\n\n"...)
}

// abort ends the connection without an HTTP ending: closed, or reset (an
// RST instead of a FIN, as a crashed proxy or a load balancer sends).
func abort(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	conn.Close()
}
