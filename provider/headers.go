package provider

import (
	"net/http"
	"net/textproto"
)

// forwarded are the caller headers a provider may need (SPEC section 2):
// nothing that authenticates or chooses an account. Everything else a
// caller sends stays at keygate: credentials, cookies, OpenAI-Organization,
// OpenAI-Project, forwarding and tracing headers.
var forwarded = []string{
	"Accept", "Openai-Beta", "Anthropic-Version", "Anthropic-Beta", "Idempotency-Key",
}

// ForwardHeaders returns the caller headers a provider may get: nil when
// the caller sent none of them, as most do (a map made for nothing was
// four allocations a request). The result is only read.
func ForwardHeaders(in http.Header) http.Header {
	var out http.Header
	for _, name := range forwarded {
		if v, ok := in[name]; ok {
			if out == nil {
				out = make(http.Header, len(forwarded))
			}
			out[name] = v
		}
	}
	return out
}

// answerHeaders are the provider's answer headers a caller may get. The
// rest (rate limits, organisation, cookies, anything echoing a key) stay.
var answerHeaders = []string{"Content-Type", "Cache-Control", "Content-Disposition", "Openai-Processing-Ms", "Openai-Version"}

// CopyAnswerHeaders copies the allowed answer headers from src to dst.
func CopyAnswerHeaders(dst, src http.Header) {
	for _, name := range answerHeaders {
		if v, ok := src[name]; ok {
			dst[name] = v
		}
	}
}

// jsonContentType is shared by every request that sends JSON: header value
// slices are only read once set, and replaced, never changed, by Set.
var jsonContentType = []string{"application/json"}

// SetHeaders prepares an upstream request's headers: the forwarded caller
// headers, then the deployment's own headers: (which win), then the
// request id. The adapter sets the authentication last.
func SetHeaders(out *http.Request, req *Request, t Target) {
	h := out.Header
	for name, v := range req.Header {
		h[name] = v
	}
	if req.ContentType == "" {
		h["Content-Type"] = jsonContentType
	} else {
		h["Content-Type"] = []string{req.ContentType}
	}
	for name, v := range t.Model.Headers {
		h[textproto.CanonicalMIMEHeaderKey(name)] = []string{v}
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
}
