// Package azure is the adapter for Azure OpenAI:
// `{base_url}/openai/deployments/{upstream_model}/{route}?api-version={api_version}`,
// the key as `api-key`. Azure speaks OpenAI's bodies, so OpenAI callers'
// bytes go as they are and answers come back through the openai adapter's
// readers; Responses and Messages callers are translated to chat.
package azure

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/provider/openai"
)

func init() { provider.Register(Adapter{}) }

// DefaultAPIVersion is sent when a deployment names no api_version.
const DefaultAPIVersion = "2024-10-21"

// Adapter speaks Azure OpenAI. The zero value is ready.
type Adapter struct{}

// Name implements provider.Adapter.
func (Adapter) Name() string { return "azure" }

// Serves implements provider.Adapter: OpenAI's routes (as Azure serves
// them per deployment), and Responses and Messages callers through chat.
func (Adapter) Serves(d provider.Dialect) bool { return true }

// native: the caller's own OpenAI route, relayed without translation.
func native(d provider.Dialect) bool {
	return d != provider.DialectResponses && d != provider.DialectMessages
}

// NewRequest implements provider.Adapter.
func (Adapter) NewRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	path, body := req.Path, req.Body
	if native(req.Dialect) {
		body = openai.UpstreamBody(req, t)
	} else {
		var err error
		if body, err = bridge.Body(dialect.WireOpenAI, req, t.Model); err != nil {
			return nil, err
		}
		path = "chat/completions"
	}
	v := t.Model.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	u := strings.TrimRight(t.Model.BaseURL, "/") + "/openai/deployments/" + url.PathEscape(t.Model.UpstreamName()) +
		"/" + path + "?api-version=" + url.QueryEscape(v)
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	if req.ContentType != "" {
		out.Header.Set("Content-Type", req.ContentType) // a multipart upload keeps its boundary
	}
	out.Header.Set("Api-Key", t.Secret)
	return out, nil
}

// Answer implements provider.Adapter.
func (Adapter) Answer(req *provider.Request, status int, h http.Header, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	if native(req.Dialect) {
		return openai.Adapter{}.Answer(req, status, h, body, now)
	}
	return bridge.Answer(dialect.WireOpenAI, req, body, now)
}

// Failure implements provider.Adapter.
func (Adapter) Failure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	if native(req.Dialect) {
		return openai.Adapter{}.Failure(req, status, h, body, now)
	}
	return bridge.Classify(dialect.WireOpenAI, req, status, h, body, now)
}

// Meta implements provider.Adapter: Azure sends OpenAI's x-ratelimit-*
// headers, and its request id as apim-request-id.
func (Adapter) Meta(h http.Header, now time.Time) provider.Meta {
	m := openai.Adapter{}.Meta(h, now)
	if id := h.Get("Apim-Request-Id"); id != "" {
		m.RequestID = id
	}
	return m
}

// CheckRequest implements provider.Adapter: the resource's model list,
// which costs nothing and needs a valid key.
func (Adapter) CheckRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	v := t.Model.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(t.Model.BaseURL, "/")+"/openai/models?api-version="+url.QueryEscape(v), nil)
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(req, &provider.Request{}, t)
	req.Header.Del("Content-Type")
	req.Header.Set("Api-Key", t.Secret)
	return req, nil
}

// MinimalRequest implements provider.MinimalCaller: the deployment's chat
// completions with max_tokens 1, built as a caller's request would be. A
// spent or throttled Azure key still lists the resource's models.
func (a Adapter) MinimalRequest(ctx context.Context, t provider.Target) (*http.Request, error) {
	body := append([]byte(`{"messages":[{"role":"user","content":"`+provider.MinimalPrompt+`"}],"max_tokens":1,"model":`), dialect.Quote(t.Model.UpstreamName())...)
	return a.NewRequest(ctx, &provider.Request{Dialect: provider.DialectChat, Path: "chat/completions", Body: append(body, '}'),
		Model: t.Model.UpstreamName()}, t)
}

// Stream implements provider.Adapter.
func (Adapter) Stream(req *provider.Request) provider.Stream {
	if native(req.Dialect) {
		return openai.Adapter{}.Stream(req)
	}
	return bridge.NewStream(dialect.WireOpenAI, req, time.Now())
}
