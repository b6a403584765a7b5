package provider

import (
	"context"
	"net/http"
)

// apiKeyHeaders are where providers take an API key.
var apiKeyHeaders = []string{"Api-Key", "X-Api-Key", "X-Goog-Api-Key"}

// UseBearer makes an upstream request carry secret as "Authorization:
// Bearer" whatever the adapter set: an OAuth 2.0 or Google access token
// (key_source types oauth2 and gcp_service_account: Azure OpenAI with Entra
// ID, Vertex AI) is a bearer token for every provider, never an API key.
func UseBearer(out *http.Request, secret string) {
	for _, h := range apiKeyHeaders {
		out.Header.Del(h)
	}
	if q := out.URL.Query(); q.Has("key") {
		q.Del("key")
		out.URL.RawQuery = q.Encode()
	}
	out.Header.Set("Authorization", "Bearer "+secret)
}

// NewUpstreamRequest builds one attempt's upstream request with a, carrying
// a bearer target's secret as a bearer token: every call of an attempt (a
// hedge's second one included) is built here, so none forgets it.
func NewUpstreamRequest(ctx context.Context, a Adapter, req *Request, t Target) (*http.Request, error) {
	out, err := a.NewRequest(ctx, req, t)
	if err == nil && t.Bearer {
		UseBearer(out, t.Secret)
	}
	return out, err
}
