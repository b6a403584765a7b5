// Package anthropic is the adapter for Anthropic's Messages API:
// `{base_url}/v1/messages` (default base https://api.anthropic.com), the
// key as `x-api-key` with `anthropic-version: 2023-06-01`. Callers of
// /v1/messages get Anthropic's bytes as they are, with only the model
// renamed; OpenAI chat and Responses callers get translated answers and
// streams (package dialect).
package anthropic

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/sse"
	"github.com/tidwall/gjson"
)

func init() { provider.Register(Adapter{}) }

// Version is the anthropic-version keygate sends when the caller sent none.
const Version = "2023-06-01"

// DefaultBaseURL is Anthropic's API.
const DefaultBaseURL = "https://api.anthropic.com"

// Adapter speaks Anthropic's Messages API. The zero value is ready.
type Adapter struct{}

// Name implements provider.Adapter.
func (Adapter) Name() string { return "anthropic" }

// Serves implements provider.Adapter: generation in any caller dialect;
// Anthropic has no embeddings, legacy completions, images or audio.
func (Adapter) Serves(d provider.Dialect) bool { return bridge.Generates(d) }

// Base is the deployment's base URL without a trailing /v1 (both forms
// are accepted), or Anthropic's own.
func Base(baseURL string) string {
	b := strings.TrimSuffix(strings.TrimRight(baseURL, "/"), "/v1")
	if b == "" {
		return DefaultBaseURL
	}
	return b
}

// NewRequest implements provider.Adapter.
func (Adapter) NewRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	var body []byte
	path := "/v1/messages"
	if req.Dialect == provider.DialectMessages {
		body = bridge.RenameModel(req, t.Model)
		if req.Path == "messages/count_tokens" {
			path = "/v1/messages/count_tokens"
		}
	} else {
		var err error
		if body, err = bridge.Body(dialect.WireAnthropic, req, t.Model); err != nil {
			return nil, err
		}
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, Base(t.Model.BaseURL)+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	if out.Header.Get("Anthropic-Version") == "" {
		out.Header.Set("Anthropic-Version", Version)
	}
	out.Header.Set("X-Api-Key", t.Secret)
	return out, nil
}

// Answer implements provider.Adapter.
func (Adapter) Answer(req *provider.Request, status int, h http.Header, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	if req.Dialect != provider.DialectMessages {
		return bridge.Answer(dialect.WireAnthropic, req, body, now)
	}
	if !jsonx.Valid(body) {
		return nil, provider.Usage{}, bridge.Malformed("the provider's answer is not valid JSON")
	}
	doc := gjson.ParseBytes(body)
	switch typ := doc.Get("type").Str; {
	case typ == "error":
		f := bridge.Classify(dialect.WireAnthropic, req, http.StatusOK, h, body, now)
		return nil, provider.Usage{}, &f
	case req.Path == "messages/count_tokens":
		return body, provider.Usage{Known: true}, nil // counting tokens uses none
	case typ != "message":
		return nil, provider.Usage{}, bridge.Malformed("the provider's answer is not an Anthropic message")
	}
	u, ok := dialect.AnthropicUsage(doc.Get("usage"))
	return body, provider.Usage{PromptTokens: int(u.Input), CompletionTokens: int(u.Output), Known: ok}, nil
}

// Failure implements provider.Adapter.
func (Adapter) Failure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	return bridge.Classify(dialect.WireAnthropic, req, status, h, body, now)
}

// Meta implements provider.Adapter: request-id and the
// anthropic-ratelimit-* headers (their resets are RFC 3339 times).
func (Adapter) Meta(h http.Header, now time.Time) provider.Meta {
	m := provider.Meta{RequestID: h.Get("Request-Id"), Limits: provider.NoRateLimits}
	if h.Get("Anthropic-Ratelimit-Requests-Limit") == "" && h.Get("Anthropic-Ratelimit-Tokens-Limit") == "" {
		return m
	}
	l := &m.Limits
	l.LimitRequests = count(h, "Anthropic-Ratelimit-Requests-Limit")
	l.RemainingRequests = count(h, "Anthropic-Ratelimit-Requests-Remaining")
	l.LimitTokens = count(h, "Anthropic-Ratelimit-Tokens-Limit")
	l.RemainingTokens = count(h, "Anthropic-Ratelimit-Tokens-Remaining")
	l.ResetRequests = until(h, "Anthropic-Ratelimit-Requests-Reset", now)
	l.ResetTokens = until(h, "Anthropic-Ratelimit-Tokens-Reset", now)
	return m
}

func count(h http.Header, k string) int64 {
	n, err := strconv.ParseInt(h.Get(k), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func until(h http.Header, k string, now time.Time) time.Duration {
	t, err := time.Parse(time.RFC3339, h.Get(k))
	if err != nil || t.Before(now) {
		return 0
	}
	return t.Sub(now)
}

// CheckRequest implements provider.Adapter: the model list, which costs
// nothing and needs a valid key.
func (Adapter) CheckRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, Base(t.Model.BaseURL)+"/v1/models", nil)
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Del("Content-Type")
	req.Header.Set("Anthropic-Version", Version)
	req.Header.Set("X-Api-Key", t.Secret)
	return req, nil
}

// MinimalRequest implements provider.MinimalCaller: POST /v1/messages
// with max_tokens 1, the smallest generation Anthropic bills.
func (Adapter) MinimalRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	body := append([]byte(`{"model":`), dialect.Quote(t.Model.UpstreamName())...)
	body = append(body, `,"max_tokens":1,"messages":[{"role":"user","content":"`+provider.MinimalPrompt+`"}]}`...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, Base(t.Model.BaseURL)+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Set("Anthropic-Version", Version)
	req.Header.Set("X-Api-Key", t.Secret)
	return req, nil
}

// Stream implements provider.Adapter.
func (Adapter) Stream(req *provider.Request) provider.Stream {
	if req.Dialect != provider.DialectMessages {
		return bridge.NewStream(dialect.WireAnthropic, req, time.Now())
	}
	return &passthrough{req: req}
}

// passthrough relays Anthropic's events as they are to a Messages caller,
// reading the usage from message_start and message_delta.
type passthrough struct {
	req   *provider.Request
	usage dialect.Usage
	known bool
}

func (s *passthrough) Event(ev sse.Event, out []byte) ([]byte, *provider.Failure) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		return out, nil
	}
	if !jsonx.Valid(data) {
		return out, bridge.Malformed("the provider sent a stream event that is not valid JSON")
	}
	doc := gjson.ParseBytes(data)
	switch doc.Get("type").Str {
	case "message_start":
		s.usage, s.known = dialect.AnthropicUsage(doc.Get("message.usage"))
	case "message_delta":
		u := doc.Get("usage")
		s.usage.Output = u.Get("output_tokens").Int()
		if u.Get("input_tokens").Exists() {
			in, _ := dialect.AnthropicUsage(u)
			s.usage.Input, s.usage.CacheRead, s.usage.CacheWrite = in.Input, in.CacheRead, in.CacheWrite
		}
		s.known = true
	case "error":
		f := bridge.Classify(dialect.WireAnthropic, s.req, http.StatusOK, http.Header{}, data, time.Now())
		return out, &f
	}
	return sse.AppendEvent(out, ev.Name, data), nil
}

func (s *passthrough) End(out []byte) []byte { return out }

func (s *passthrough) Usage() provider.Usage {
	return provider.Usage{PromptTokens: int(s.usage.Input), CompletionTokens: int(s.usage.Output), Known: s.known}
}

func (s *passthrough) Text() string { return "" }
