package mockprovider

import (
	"maps"
	"net/http"
	"strconv"
)

// Behavior is how the provider answers requests made with a key.
type Behavior string

// The behaviours a key can have. Every failing one answers with the status,
// headers and body OpenAI sends in that situation (see ErrorBody).
const (
	OK             Behavior = "ok"
	InvalidKey     Behavior = "invalid_key"     // 401 invalid_api_key
	RateLimited    Behavior = "rate_limited"    // 429 rate_limit_exceeded, Retry-After: 20
	QuotaExhausted Behavior = "quota_exhausted" // 429 insufficient_quota
	ServerError    Behavior = "server_error"    // 500
	Overloaded     Behavior = "overloaded"      // 503
	Garbage        Behavior = "garbage"         // 200 with a body that is not JSON
)

// response is a complete answer built once and written many times.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (e response) write(w http.ResponseWriter) {
	// The header slices are shared between requests; net/http only reads them.
	maps.Copy(w.Header(), e.header)
	w.WriteHeader(e.status)
	w.Write(e.body)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// behaviorErrors holds what a failing key gets. The messages are OpenAI's
// own; the key in the 401 message is a fixed masked placeholder, so that
// ErrorBody is byte for byte what a request receives.
var behaviorErrors = map[Behavior]response{
	InvalidKey: {http.StatusUnauthorized, jsonHeader, openAIError(
		"Incorrect API key provided: sk-ab***yz. You can find your API key at https://platform.openai.com/account/api-keys.",
		"invalid_request_error", "invalid_api_key")},
	RateLimited: {http.StatusTooManyRequests, http.Header{
		"Content-Type":                   {"application/json"},
		"Retry-After":                    {"20"},
		"X-Ratelimit-Limit-Requests":     {"3"},
		"X-Ratelimit-Remaining-Requests": {"0"},
		"X-Ratelimit-Reset-Requests":     {"20s"},
	}, openAIError(
		"Rate limit reached for gpt-4o-mini in organization org-xxx on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
		"requests", "rate_limit_exceeded")},
	QuotaExhausted: {http.StatusTooManyRequests, jsonHeader, openAIError(
		"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
		"insufficient_quota", "insufficient_quota")},
	ServerError: {http.StatusInternalServerError, jsonHeader, openAIError(
		"The server had an error while processing your request. Sorry about that!",
		"server_error", "")},
	Overloaded: {http.StatusServiceUnavailable, jsonHeader, openAIError(
		"The engine is currently overloaded, please try again later",
		"server_error", "")},
	// What a misconfigured proxy in front of a provider returns: a 200 that
	// is not the JSON (or the event stream) the caller asked for.
	Garbage: {http.StatusOK, http.Header{"Content-Type": {"text/html; charset=utf-8"}},
		[]byte("<html><head><title>Welcome</title></head><body>This is not an API response.</body></html>\n")},
}

// Errors that do not depend on the key.
var (
	errMissingKey = response{http.StatusUnauthorized, jsonHeader, openAIError(
		"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.",
		"invalid_request_error", "invalid_api_key")}
	errBadJSON = response{http.StatusBadRequest, jsonHeader, openAIError(
		"We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
		"invalid_request_error", "")}
	errMissingModel = response{http.StatusBadRequest, jsonHeader, openAIError(
		"you must provide a model parameter", "invalid_request_error", "")}
	errReadBody = response{http.StatusBadRequest, jsonHeader, openAIError(
		"We could not read the body of your request.", "invalid_request_error", "")}
)

func errUnknownModel(model string) response {
	return response{http.StatusNotFound, jsonHeader, openAIError(
		"The model `"+model+"` does not exist or you do not have access to it.",
		"invalid_request_error", "model_not_found")}
}

func errInvalidURL(r *http.Request) response {
	return response{http.StatusNotFound, jsonHeader, openAIError(
		"Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")}
}

// ErrorBody returns exactly the status, headers and body the provider sends
// for a failing behaviour, for tests that assert on what a caller receives.
// OK has no error: it returns 200 and nil. An unknown behaviour is answered
// as a 500 naming it.
func ErrorBody(b Behavior) (status int, header http.Header, body []byte) {
	if b == OK {
		return http.StatusOK, nil, nil
	}
	e := behaviorError(b)
	return e.status, e.header.Clone(), append([]byte(nil), e.body...)
}

func behaviorError(b Behavior) response {
	if e, ok := behaviorErrors[b]; ok {
		return e
	}
	return response{http.StatusInternalServerError, jsonHeader, openAIError(
		"mockprovider: unknown behavior "+strconv.Quote(string(b)), "server_error", "")}
}

// openAIError is OpenAI's error envelope; an empty code is sent as null.
func openAIError(message, typ, code string) []byte {
	b := append([]byte(`{"error":{"message":`), quote(message)...)
	b = append(append(b, `,"type":`...), quote(typ)...)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, quote(code)...)
	}
	return append(b, "}}"...)
}

func quote(s string) []byte { return appendString(nil, s) }
