// Package gemini is the adapter for Google's native Gemini API:
// `{base_url}/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`
// and `:embedContent` / `:batchEmbedContents` (default base
// https://generativelanguage.googleapis.com/v1beta), the key as
// `x-goog-api-key`. Every caller dialect is translated (package dialect);
// embeddings are answered in OpenAI's shape.
package gemini

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/tidwall/gjson"
)

func init() { provider.Register(Adapter{}) }

// DefaultBaseURL is Google's Gemini API.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Adapter speaks Gemini's API. The zero value is ready.
type Adapter struct{}

// Name implements provider.Adapter.
func (Adapter) Name() string { return "gemini" }

// Serves implements provider.Adapter: generation in any dialect, and
// embeddings.
func (Adapter) Serves(d provider.Dialect) bool {
	return bridge.Generates(d) || d == provider.DialectEmbeddings
}

func base(m string) string {
	if b := strings.TrimRight(m, "/"); b != "" {
		return b
	}
	return DefaultBaseURL
}

// NewRequest implements provider.Adapter.
func (Adapter) NewRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	model := url.PathEscape(t.Model.UpstreamName())
	var u string
	var body []byte
	var err error
	switch {
	case req.Dialect == provider.DialectEmbeddings:
		u, body = embedRequest(base(t.Model.BaseURL), model, req.Body)
	case req.Stream:
		u = base(t.Model.BaseURL) + "/models/" + model + ":streamGenerateContent?alt=sse"
		body, err = bridge.Body(dialect.WireGemini, req, t.Model)
	default:
		u = base(t.Model.BaseURL) + "/models/" + model + ":generateContent"
		body, err = bridge.Body(dialect.WireGemini, req, t.Model)
	}
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	out.Header.Set("X-Goog-Api-Key", t.Secret)
	return out, nil
}

// embedRequest is embedContent for one input, batchEmbedContents for a list.
func embedRequest(base, model string, body []byte) (string, []byte) {
	in := gjson.GetBytes(body, "input")
	if !in.IsArray() {
		b := append([]byte(`{"content":{"parts":[{"text":`), quoted(in)...)
		return base + "/models/" + model + ":embedContent", append(b, "}]}}"...)
	}
	b := []byte(`{"requests":[`)
	first := true
	in.ForEach(func(_, v gjson.Result) bool {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `{"model":"models/`...)
		b = append(b, model...)
		b = append(b, `","content":{"parts":[{"text":`...)
		b = append(b, quoted(v)...)
		b = append(b, "}]}}"...)
		first = false
		return true
	})
	return base + "/models/" + model + ":batchEmbedContents", append(b, "]}"...)
}

func quoted(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Raw
	}
	return dialect.Quote(v.String())
}

// Answer implements provider.Adapter.
func (Adapter) Answer(req *provider.Request, status int, h http.Header, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	if req.Dialect != provider.DialectEmbeddings {
		return bridge.Answer(dialect.WireGemini, req, body, now)
	}
	if !jsonx.Valid(body) {
		return nil, provider.Usage{}, bridge.Malformed("the provider's answer is not valid JSON")
	}
	doc := gjson.ParseBytes(body)
	vectors := doc.Get("embeddings")
	if one := doc.Get("embedding"); one.IsObject() {
		vectors = gjson.Parse("[" + one.Raw + "]")
	}
	if !vectors.IsArray() {
		f := bridge.Classify(dialect.WireGemini, req, http.StatusOK, h, body, now)
		return nil, provider.Usage{}, &f
	}
	out := []byte(`{"object":"list","data":[`)
	i := 0
	vectors.ForEach(func(_, v gjson.Result) bool {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		i++
		out = append(out, `,"embedding":`...)
		out = append(out, v.Get("values").Raw...)
		out = append(out, '}')
		return true
	})
	out = append(out, `],"model":`...)
	out = dialect.AppendString(out, req.Model)
	out = append(out, `,"usage":{"prompt_tokens":0,"total_tokens":0}}`...)
	return out, provider.Usage{}, nil // Gemini reports no embedding usage: keygate counts
}

// Failure implements provider.Adapter.
func (Adapter) Failure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	return bridge.Classify(dialect.WireGemini, req, status, h, body, now)
}

// Meta implements provider.Adapter. Gemini sends no rate-limit headers;
// its quotas come in 429 bodies, which the classifier reads.
func (Adapter) Meta(h http.Header, now time.Time) provider.Meta {
	return provider.Meta{RequestID: h.Get("X-Request-Id"), Limits: provider.NoRateLimits}
}

// CheckRequest implements provider.Adapter: the model list, which costs
// nothing and needs a valid key.
func (Adapter) CheckRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base(t.Model.BaseURL)+"/models", nil)
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Del("Content-Type")
	req.Header.Set("X-Goog-Api-Key", t.Secret)
	return req, nil
}

// MinimalRequest implements provider.MinimalCaller: generateContent with
// generationConfig.maxOutputTokens 1.
func (Adapter) MinimalRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	u := base(t.Model.BaseURL) + "/models/" + url.PathEscape(t.Model.UpstreamName()) + ":generateContent"
	body := `{"contents":[{"role":"user","parts":[{"text":"` + provider.MinimalPrompt + `"}]}],"generationConfig":{"maxOutputTokens":1}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Set("X-Goog-Api-Key", t.Secret)
	return req, nil
}

// Stream implements provider.Adapter.
func (Adapter) Stream(req *provider.Request) provider.Stream {
	return bridge.NewStream(dialect.WireGemini, req, time.Now())
}
