package dialect

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// ProviderError reads a provider's error body: its error type (OpenAI's
// and Anthropic's type, Gemini's status) and message. ok is false when the
// body is no error object of the wire.
func ProviderError(wire string, body []byte) (typ, message string, ok bool) {
	doc := parse(body)
	e := doc.Get("error")
	if !e.IsObject() {
		if e.Type == gjson.String { // some relays: {"error":"…"}
			return "", e.Str, true
		}
		return "", "", false
	}
	switch wire {
	case WireGemini:
		typ = e.Get("status").Str
	default:
		typ = e.Get("type").Str
	}
	return typ, e.Get("message").Str, true
}

// anthropicTypes are Anthropic's error types, which pass through as they are.
var anthropicTypes = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "permission_error": true,
	"not_found_error": true, "request_too_large": true, "rate_limit_error": true,
	"api_error": true, "overloaded_error": true, "billing_error": true, "timeout_error": true,
}

// AnthropicErrorType is the Anthropic error type for a status (SPEC 2).
// Without a status (an error event inside a stream) the provider's own
// type is kept when it is one of Anthropic's.
func AnthropicErrorType(status int, providerType string) string {
	if status < 400 {
		if anthropicTypes[providerType] {
			return providerType
		}
		return "api_error"
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusServiceUnavailable || status == 529:
		return "overloaded_error"
	case status == 0:
		return "api_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// AppendError writes an error in a caller's dialect. code is keygate's
// error code ("" for a provider's error relayed); typ the provider's error
// type if any.
func AppendError(b []byte, caller string, status int, code, typ, message string) []byte {
	if caller == Messages {
		b = append(b, `{"type":"error","error":{"type":`...)
		b = AppendString(b, AnthropicErrorType(status, typ))
		b = append(b, `,"message":`...)
		if code != "" && !strings.HasPrefix(message, code) {
			message = code + ": " + message
		}
		b = AppendString(b, message)
		return append(b, "}}"...)
	}
	if typ == "" {
		typ = OpenAIErrorType(status)
	}
	b = append(b, `{"error":{"message":`...)
	b = AppendString(b, message)
	b = append(b, `,"type":`...)
	b = AppendString(b, typ)
	b = append(b, `,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = AppendString(b, code)
	}
	return append(b, "}}"...)
}

// OpenAIErrorType is the OpenAI error "type" for a status, as OpenAI itself
// sends it (a 503 overloaded answer is a "server_error" there), for
// keygate's own errors and for errors translated into OpenAI's shape alike.
func OpenAIErrorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// TranslateError rewrites a provider's error body into the caller's
// dialect; a body that is no error object of the wire becomes one that
// quotes it.
func TranslateError(b []byte, wire, caller string, status int, body []byte) []byte {
	typ, msg, ok := ProviderError(wire, body)
	if !ok {
		s := strings.TrimSpace(string(body))
		if len(s) > 256 {
			s = s[:256]
		}
		msg = "provider answered " + http.StatusText(status) + ": " + s
	}
	return AppendError(b, caller, status, "", typ, msg)
}
