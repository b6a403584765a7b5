package openai

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/sse"
	"github.com/tidwall/gjson"
)

// Anthropic Messages callers (the Anthropic SDK, Claude Code) reach an
// OpenAI-compatible deployment through chat completions: their request,
// answer, stream and errors are translated (package dialect). Every other
// dialect is OpenAI's own and goes as it is.

func translated(d provider.Dialect) bool { return d == provider.DialectMessages }

func translatedRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	body, err := bridge.Body(dialect.WireOpenAI, req, t.Model)
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, join(t.Model.BaseURL, "chat/completions"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	out.Header.Set("Authorization", "Bearer "+t.Secret)
	return out, nil
}

func translatedAnswer(req *provider.Request, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	return bridge.Answer(dialect.WireOpenAI, req, body, now)
}

func translatedFailure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	return bridge.Classify(dialect.WireOpenAI, req, status, h, body, now)
}

// responsesStream relays a Responses API stream as it is, reading the
// usage from its terminal event (response.completed, or .incomplete or
// .failed), where the Responses API puts it.
type responsesStream struct {
	usage provider.Usage
}

func (s *responsesStream) Event(ev sse.Event, out []byte) ([]byte, *provider.Failure) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		return out, nil
	}
	if !jsonx.Valid(data) {
		return out, malformed("the provider sent a stream event that is not valid JSON")
	}
	switch typ := gjson.GetBytes(data, "type").Str; typ {
	case "response.completed", "response.incomplete", "response.failed":
		if u, ok := dialect.ResponsesUsage(gjson.GetBytes(data, "response.usage")); ok {
			s.usage = provider.Usage{PromptTokens: int(u.Input), CompletionTokens: int(u.Output), Known: true}
		}
	case "error":
		f := failure(&provider.Request{Dialect: provider.DialectResponses}, http.StatusOK, http.Header{}, data, time.Now())
		return out, &f
	}
	return sse.AppendEvent(out, ev.Name, data), nil
}

func (s *responsesStream) End(out []byte) []byte { return out }

func (s *responsesStream) Usage() provider.Usage { return s.usage }

func (s *responsesStream) Text() string { return "" }
