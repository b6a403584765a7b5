// Package bridge is what the native provider adapters (anthropic, gemini,
// azure) share: turning a caller's request into a provider wire's body,
// the wire's answer, stream and errors back into the caller's dialect
// (package dialect does the translation), and classifying failures. When
// the caller speaks the wire's own dialect, the adapters relay bytes and
// use only the usage and failure readers here.
package bridge

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/sse"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Caller is the dialect package's name of a caller dialect.
func Caller(d provider.Dialect) string {
	switch d {
	case provider.DialectResponses:
		return dialect.Responses
	case provider.DialectMessages:
		return dialect.Messages
	}
	return dialect.Chat
}

// Generates reports whether d is a generation dialect a bridge can
// translate (chat, responses, messages).
func Generates(d provider.Dialect) bool {
	return d == provider.DialectChat || d == provider.DialectResponses || d == provider.DialectMessages
}

// Translates reports whether a deployment of provider translates a caller
// speaking d, rather than relaying its bytes.
func Translates(provider_ string, d provider.Dialect) bool {
	if !Generates(d) {
		return false
	}
	switch provider_ {
	case dialect.WireAnthropic:
		return d != provider.DialectMessages
	case dialect.WireGemini:
		return true
	case "azure":
		return d != provider.DialectChat
	}
	return d == provider.DialectMessages // openai and every compatible service
}

// Check reports what in a request no translation can carry (a field of
// the wrong type, a content part or tool only the caller's own provider
// has), so the caller gets a 400 before any key is tried.
func Check(d provider.Dialect, body []byte) error {
	_, err := dialect.ParseRequest(Caller(d), body)
	return err
}

// RenameModel is body with its model set to the deployment's upstream name
// when that differs from what the caller asked for; else body itself.
func RenameModel(req *provider.Request, m *keygate.Model) []byte {
	if m.UpstreamName() == req.Model {
		return req.Body
	}
	if b, err := sjson.SetBytes(req.Body, "model", m.UpstreamName()); err == nil {
		return b
	}
	return req.Body
}

// Body translates the caller's request into wire's body for model m.
func Body(wire string, req *provider.Request, m *keygate.Model) ([]byte, error) {
	r, err := dialect.ParseRequest(Caller(req.Dialect), req.Body)
	if err != nil {
		return nil, err
	}
	if m.Temperature != nil && r.Temperature == "" {
		r.Temperature = strconv.FormatFloat(*m.Temperature, 'g', -1, 64)
	}
	r.Stream = req.Stream
	return dialect.AppendRequest(make([]byte, 0, len(req.Body)+256), wire, r, m.UpstreamName(), int64(m.MaxTokens)), nil
}

// Answer translates a wire's successful answer into the caller's dialect,
// answering for the model the caller named.
func Answer(wire string, req *provider.Request, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	if !jsonx.Valid(body) {
		return nil, provider.Usage{}, Malformed("the provider's answer is not valid JSON")
	}
	if isErrorObject(wire, body) {
		f := Classify(wire, req, http.StatusOK, http.Header{}, body, now)
		return nil, provider.Usage{}, &f
	}
	resp, err := dialect.ParseResponse(wire, body)
	if err != nil {
		return nil, provider.Usage{}, Malformed("the provider's answer is not a " + wire + " answer")
	}
	out := dialect.AppendResponse(make([]byte, 0, len(body)+256), Caller(req.Dialect), resp, req.Model, now.Unix())
	return out, usage(resp.Usage, resp.HasUsage), nil
}

func usage(u dialect.Usage, known bool) provider.Usage {
	return provider.Usage{PromptTokens: int(u.Input), CompletionTokens: int(u.Output), Known: known}
}

// isErrorObject: a 200 whose body is the wire's error object.
func isErrorObject(wire string, body []byte) bool {
	if wire == dialect.WireAnthropic {
		return gjson.GetBytes(body, "type").Str == "error"
	}
	e := gjson.GetBytes(body, "error")
	return e.Exists() && e.Type != gjson.Null && !gjson.GetBytes(body, "candidates").Exists() && !gjson.GetBytes(body, "choices").Exists()
}

// Malformed is an answer no caller can use: a provider fault, like a 500.
func Malformed(reason string) *provider.Failure {
	return &provider.Failure{
		Verdict: health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true, Reason: reason},
		Status:  http.StatusBadGateway,
	}
}

// Classify judges a wire's error answer (or a 200 error object) and shapes
// its body for the caller: as it is when the caller speaks the wire's
// dialect, else translated.
func Classify(wire string, req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	f := provider.Failure{Status: status, RetryAfter: h.Get("Retry-After")}
	if status >= 300 && status < 400 {
		f.Verdict = health.Verdict{Class: health.ClassInternal, Scope: health.ScopeKeyModel, Failover: true,
			Reason: "the provider answered a redirect (" + strconv.Itoa(status) + "), which keygate does not follow"}
		f.Status = http.StatusBadGateway
		return f
	}
	f.Verdict = health.Classify(status, h, body, now)
	if status < 300 {
		f.Status = provider.ErrorObjectStatus(f.Verdict.Class)
	}
	if !jsonx.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return f // keygate writes its own
	}
	caller := Caller(req.Dialect)
	if dialect.WireOf(caller) == wire && wire != dialect.WireGemini {
		f.Body = body
	} else {
		f.Body = dialect.TranslateError(nil, wire, caller, f.Status, body)
	}
	return f
}

// NewStream translates a wire's stream into the caller's dialect.
func NewStream(wire string, req *provider.Request, now time.Time) provider.Stream {
	includeUsage := req.Dialect == provider.DialectChat && gjson.GetBytes(req.Body, "stream_options.include_usage").Bool()
	return &stream{wire: wire, req: req, s: dialect.NewStream(wire, Caller(req.Dialect), req.Model, now.Unix(), includeUsage)}
}

type stream struct {
	wire string
	req  *provider.Request
	s    *dialect.Stream
}

func (s *stream) Event(ev sse.Event, out []byte) ([]byte, *provider.Failure) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || bytes.Equal(data, []byte("[DONE]")) {
		return out, nil
	}
	if !jsonx.Valid(data) {
		return out, Malformed("the provider sent a stream event that is not valid JSON")
	}
	n := len(out)
	out = s.s.Translate(out, ev.Name, data)
	if _, _, failed := s.s.Failed(); failed {
		// Before the caller saw anything it fails over like an error
		// answer; after, the loop ends the stream.
		f := Classify(s.wire, s.req, http.StatusOK, http.Header{}, data, time.Now())
		return out[:n], &f
	}
	return out, nil
}

func (s *stream) End(out []byte) []byte { return s.s.Finish(out) }

func (s *stream) Usage() provider.Usage { return usage(s.s.Usage, s.s.HasUsage) }

func (s *stream) Text() string { return "" }
