// Package openai is the adapter for OpenAI's wire format, which OpenAI and
// every OpenAI-compatible service (DeepSeek, SiliconFlow, Qwen, vLLM,
// Ollama, one-api relays…) speak: `{base_url}/chat/completions` and the
// other /v1 routes, the key as a bearer token. Callers in an OpenAI dialect
// get the upstream's bytes as they are, with only the model renamed.
package openai

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/sse"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

func init() { provider.Register(Adapter{}) }

// Adapter speaks OpenAI's wire format. The zero value is ready.
type Adapter struct{}

// Name implements provider.Adapter.
func (Adapter) Name() string { return "openai" }

// Serves implements provider.Adapter: every OpenAI route, and Anthropic
// Messages callers through chat completions (messages.go).
func (Adapter) Serves(d provider.Dialect) bool { return true }

// NewRequest implements provider.Adapter.
func (Adapter) NewRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	if translated(req.Dialect) {
		return translatedRequest(ctx, req, t)
	}
	body := UpstreamBody(req, t)
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, join(t.Model.BaseURL, req.Path), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	out.Header.Set("Authorization", "Bearer "+t.Secret)
	return out, nil
}

func join(base, path string) string { return strings.TrimRight(base, "/") + "/" + path }

// UpstreamBody is the caller's body with the model renamed when the
// deployment's upstream name differs (upstream_model, or a fallback), a
// default temperature filled in, and a chat stream asked for its usage so
// it is billed. Otherwise the caller's bytes go out untouched. Azure's
// native routes send the same body.
func UpstreamBody(req *provider.Request, t provider.Target) []byte {
	body := req.Body
	m := t.Model
	if !isJSON(req.ContentType) {
		// A multipart upload: relayed as it is, but for its model field.
		if m.UpstreamName() != req.Model {
			return bridge.RenameFormModel(body, req.ContentType, m.UpstreamName())
		}
		return body
	}
	if m.UpstreamName() != req.Model {
		if b, err := sjson.SetBytes(body, "model", m.UpstreamName()); err == nil {
			body = b
		}
	}
	if req.Dialect == provider.DialectChat {
		if m.Temperature != nil && !gjson.GetBytes(body, "temperature").Exists() {
			if b, err := sjson.SetBytes(body, "temperature", *m.Temperature); err == nil {
				body = b
			}
		}
		if req.Stream && !callerAskedUsage(req) {
			if b, err := sjson.SetBytes(body, "stream_options.include_usage", true); err == nil {
				body = b
			}
		}
	}
	return body
}

func callerAskedUsage(req *provider.Request) bool {
	return gjson.GetBytes(req.Body, "stream_options.include_usage").Bool()
}

func isJSON(ct string) bool { return ct == "" || strings.HasPrefix(ct, "application/json") }

// Answer implements provider.Adapter.
func (Adapter) Answer(req *provider.Request, status int, h http.Header, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	if translated(req.Dialect) {
		return translatedAnswer(req, body, now)
	}
	if req.Dialect == provider.DialectOther && !isJSON(h.Get("Content-Type")) {
		return body, provider.Usage{}, nil // audio, an image: bytes for the caller
	}
	if !jsonx.Valid(body) {
		return nil, provider.Usage{}, malformed("the provider's answer is not valid JSON")
	}
	top := readTop(body)
	if top.isError() {
		f := failure(req, http.StatusOK, h, body, now)
		return nil, provider.Usage{}, &f
	}
	if !top.isAnswer(req.Dialect) {
		return nil, provider.Usage{}, malformed("the provider's answer is not a " + string(req.Dialect) + " answer")
	}
	u := readUsage(top.usage)
	if !u.Known && top.choices.IsArray() {
		c := top.choices.Get("0")
		u.Reply = c.Get("message.content").Str + c.Get("text").Str
	}
	return body, u, nil
}

// top is the top level of an answer or a chunk, read in one pass.
type top struct {
	errObj, choices, usage, data, object, output gjson.Result
}

func readTop(b []byte) top {
	var t top
	gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "error":
			t.errObj = v
		case "choices":
			t.choices = v
		case "usage":
			t.usage = v
		case "data":
			t.data = v
		case "object":
			t.object = v
		case "output", "response", "type":
			t.output = v
		}
		return true
	})
	return t
}

// readValidTop is jsonx.Valid and readTop in one pass over b: a stream
// reads one chunk per token, and two passes were twice the scanning.
func readValidTop(b []byte) (top, bool) {
	var t top
	js := string(b) // one copy, as readTop's gjson.ParseBytes makes
	ok := jsonx.ValidTop(b, func(key []byte, start, end int) {
		k := key[1 : len(key)-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			k = []byte(gjson.ParseBytes(key).Str) // as gjson reads a key: escapes decoded
		}
		var dst *gjson.Result
		switch string(k) {
		case "error":
			dst = &t.errObj
		case "choices":
			dst = &t.choices
		case "usage":
			dst = &t.usage
		case "data":
			dst = &t.data
		case "object":
			dst = &t.object
		case "output", "response", "type":
			dst = &t.output
		default:
			return
		}
		*dst = gjson.Parse(js[start:end])
	})
	return t, ok
}

// isError: an error object with no result next to it, as one-api-style
// relays answer 200 with {"error":{…}}.
func (t *top) isError() bool {
	return t.errObj.Exists() && t.errObj.Type != gjson.Null &&
		!t.choices.Exists() && (!t.data.Exists() || t.data.Type == gjson.Null) && !t.output.Exists()
}

// isAnswer checks that an answer carries what its dialect promises.
func (t *top) isAnswer(d provider.Dialect) bool {
	switch d {
	case provider.DialectChat, provider.DialectCompletions:
		return t.choices.IsArray()
	case provider.DialectEmbeddings:
		return t.data.IsArray()
	default:
		return true
	}
}

func readUsage(u gjson.Result) provider.Usage {
	if !u.IsObject() {
		return provider.Usage{}
	}
	var out provider.Usage
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens", "input_tokens":
			out.PromptTokens = int(v.Int())
		case "completion_tokens", "output_tokens":
			out.CompletionTokens = int(v.Int())
		}
		return true
	})
	out.Known = true
	return out
}

func malformed(reason string) *provider.Failure {
	return &provider.Failure{
		Verdict: health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: reason},
		Status:  http.StatusBadGateway,
	}
}

// Failure implements provider.Adapter.
func (Adapter) Failure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	if translated(req.Dialect) {
		return translatedFailure(req, status, h, body, now)
	}
	return failure(req, status, h, body, now)
}

// requestCaused are markers of an error the caller's request caused though
// the status says otherwise: an organisation or project the key does not
// belong to (a 401 from OpenAI) is no verdict on the key.
var requestCaused = [][]byte{[]byte("mismatched_organization"), []byte("mismatched_project"),
	[]byte("OpenAI-Organization header"), []byte("OpenAI-Project header")}

func failure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	f := provider.Failure{Status: status, RetryAfter: h.Get("Retry-After")}
	switch {
	case status >= 300 && status < 400:
		// A redirect is never followed (it would carry the key elsewhere):
		// the deployment answered something no key can use.
		f.Verdict = health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true,
			Reason: "the provider answered a redirect (" + strconv.Itoa(status) + "), which keygate does not follow"}
		f.Status = http.StatusBadGateway
		return f
	case status < 300:
		f.Verdict = health.Classify(status, h, body, now)
		f.Status = provider.ErrorObjectStatus(f.Verdict.Class)
	default:
		f.Verdict = health.Classify(status, h, body, now)
	}
	for _, m := range requestCaused {
		if bytes.Contains(body, m) {
			f.Verdict = health.Verdict{Class: health.ClassClient, Scope: health.ScopeNone, Reason: f.Verdict.Reason}
			break
		}
	}
	if jsonx.Valid(body) && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		f.Body = body
	}
	return f
}

// Meta implements provider.Adapter.
func (Adapter) Meta(h http.Header, now time.Time) provider.Meta {
	m := provider.Meta{RequestID: first(h, "X-Request-Id"), Limits: provider.NoRateLimits}
	if _, ok := h["X-Ratelimit-Limit-Requests"]; !ok {
		if _, ok := h["X-Ratelimit-Remaining-Requests"]; !ok {
			return m
		}
	}
	l := &m.Limits
	l.LimitRequests = count(h, "X-Ratelimit-Limit-Requests")
	l.RemainingRequests = count(h, "X-Ratelimit-Remaining-Requests")
	l.LimitTokens = count(h, "X-Ratelimit-Limit-Tokens")
	l.RemainingTokens = count(h, "X-Ratelimit-Remaining-Tokens")
	l.ResetRequests = wait(h, "X-Ratelimit-Reset-Requests")
	l.ResetTokens = wait(h, "X-Ratelimit-Reset-Tokens")
	return m
}

func first(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func count(h http.Header, k string) int64 {
	n, err := strconv.ParseInt(first(h, k), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func wait(h http.Header, k string) time.Duration {
	v := first(h, k)
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second))
	}
	return 0
}

// CheckRequest implements provider.Adapter: the model list, which costs
// nothing and needs a valid key.
func (Adapter) CheckRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, join(t.Model.BaseURL, "models"), nil)
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Del("Content-Type")
	req.Header.Set("Authorization", "Bearer "+t.Secret)
	return req, nil
}

// Stream implements provider.Adapter.
func (Adapter) Stream(req *provider.Request) provider.Stream {
	if translated(req.Dialect) {
		return bridge.NewStream(dialect.WireOpenAI, req, time.Now())
	}
	if req.Dialect == provider.DialectResponses {
		return &responsesStream{}
	}
	return &stream{dialect: req.Dialect, hideUsage: req.Dialect == provider.DialectChat && !callerAskedUsage(req)}
}

// stream relays OpenAI chunks as they are, in canonical SSE form. It reads
// each chunk's usage by meaning: a chunk whose usage is an object and whose
// choices are empty or absent is the usage chunk, which a caller who did
// not ask for it (keygate asked on its behalf) never sees.
type stream struct {
	dialect   provider.Dialect
	hideUsage bool
	usage     provider.Usage
	text      []byte
}

var done = []byte("[DONE]")

func (s *stream) Event(ev sse.Event, out []byte) ([]byte, *provider.Failure) {
	data := bytes.TrimSpace(ev.Data)
	if bytes.Equal(data, done) {
		return sse.AppendEvent(out, ev.Name, data), nil
	}
	t, ok := readValidTop(data)
	if !ok {
		return out, malformed("the provider sent a stream event that is not valid JSON")
	}
	if t.isError() {
		f := failure(&provider.Request{Dialect: s.dialect}, http.StatusOK, http.Header{}, data, time.Now())
		return out, &f
	}
	if t.usage.IsObject() {
		s.usage = readUsage(t.usage)
		if s.hideUsage && (!t.choices.Exists() || len(t.choices.Array()) == 0) {
			return out, nil
		}
	}
	if !s.usage.Known && t.choices.IsArray() {
		c := t.choices.Get("0")
		if s.dialect == provider.DialectCompletions {
			s.text = append(s.text, c.Get("text").Str...)
		} else {
			s.text = append(s.text, c.Get("delta.content").Str...)
		}
	}
	return sse.AppendEvent(out, ev.Name, data), nil
}

func (s *stream) End(out []byte) []byte { return out }

func (s *stream) Usage() provider.Usage { return s.usage }

func (s *stream) Text() string { return string(s.text) }
