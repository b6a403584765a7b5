package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/tokenizer"
	"github.com/tidwall/gjson"
)

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
	rec.UsageSource = keygate.UsageProvider
	if !readUsage(body, rec) {
		countUsage(c, gjson.GetBytes(body, "choices.0.message.content").String(), rec)
		rec.UsageSource = keygate.UsageEstimated
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
	var end streamEnd
	defer func() {
		if !sawUsage {
			// What was relayed, also when the caller or shutdown cut it short.
			countUsage(c, string(text), rec)
		}
		end.record(r, c, rec, sawUsage)
	}()
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
			case bytes.HasPrefix(line, eventError):
				end.sawError = true
			case bytes.HasPrefix(line, dataPrefix):
				data := line[len(dataPrefix):]
				end.see(data)
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
			end.eof = true
		case errors.Is(context.Cause(ctx), ErrShutdown):
			// Shutdown waited shutdown_timeout for this stream: end it with
			// an error event the caller's SDK raises, not a silent cut.
			end.cut = true
			w.Write(shutdownEvent)
		case ctx.Err() != nil || errors.Is(err, context.Canceled):
			rec.Status = statusClientClosed
		default:
			// Headers are gone already; the caller sees a truncated stream.
			rec.Status = http.StatusBadGateway
			r.Logger.Warn("stream interrupted", "request_id", c.RequestID, "model", c.Group.ID, "err", err)
		}
		rc.Flush()
		return
	}
}

// ErrShutdown is the cause of the context of requests cut because shutdown
// waited shutdown_timeout for them (SPEC section 7).
var ErrShutdown = errors.New("keygate is shutting down")

var (
	eventError    = []byte("event: error")
	shutdownEvent = []byte(`data: {"error":{"message":"keygate is shutting down: the stream was ended after shutdown_timeout","type":"server_error","code":"shutting_down"}}` + "\n\n")
)

// streamEnd is how a relayed stream ended, so its record says what it was.
type streamEnd struct {
	done     bool // data: [DONE] arrived
	sawError bool // the provider sent an SSE error event
	eof      bool // the provider closed the stream
	cut      bool // shutdown ended it
}

func (e *streamEnd) see(data []byte) {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, doneData):
		e.done = true
	case len(data) > 0 && data[0] == '{' && gjson.GetBytes(data, "error").IsObject():
		e.sawError = true
	}
}

var doneData = []byte("[DONE]")

// record sets the record's status and usage source from how the stream
// ended: a clean 200 only with [DONE] (on chat completions, whose streams
// end with it) and no error event; the provider's counts when its usage
// arrived, else the tokenizer's, "partial" for a stream that did not end
// cleanly.
func (e *streamEnd) record(r *Relay, c *Call, rec *keygate.UsageRecord, sawUsage bool) {
	clean := e.eof && !e.sawError && (e.done || c.Endpoint != EndpointChat)
	switch {
	case e.cut:
		rec.Status = http.StatusServiceUnavailable
	case e.sawError || (e.eof && !clean):
		rec.Status = http.StatusBadGateway
		r.Logger.Warn("stream ended badly", "request_id", c.RequestID, "model", c.Group.ID,
			"error_event", e.sawError, "done", e.done)
	}
	switch {
	case sawUsage:
		rec.UsageSource = keygate.UsageProvider
	case clean:
		rec.UsageSource = keygate.UsageEstimated
	default:
		rec.UsageSource = keygate.UsagePartial
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
