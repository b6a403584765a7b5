package keygate

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. They are the "code" field of the OpenAI-shaped error body
// (SPEC section 2); admin routes use the same set.
const (
	EInvalidAPIKey    = "invalid_api_key"
	EModelNotAllowed  = "model_not_allowed"
	EModelNotFound    = "model_not_found"
	EInvalidRequest   = "invalid_request"
	ERequestTooLarge  = "request_too_large"
	ERateLimit        = "rate_limit_exceeded"
	EBudgetExceeded   = "budget_exceeded"
	ENoAvailableKey   = "no_available_key"
	ENotFound         = "not_found"
	EConflict         = "conflict"
	EForbidden        = "forbidden"
	EUpstream         = "upstream_error"
	EInternal         = "internal_error"
	EMethodNotAllowed = "method_not_allowed"
)

var statusByCode = map[string]int{
	EInvalidAPIKey:    http.StatusUnauthorized,
	EModelNotAllowed:  http.StatusForbidden,
	EForbidden:        http.StatusForbidden,
	EModelNotFound:    http.StatusNotFound,
	ENotFound:         http.StatusNotFound,
	EInvalidRequest:   http.StatusBadRequest,
	ERequestTooLarge:  http.StatusRequestEntityTooLarge,
	ERateLimit:        http.StatusTooManyRequests,
	EBudgetExceeded:   http.StatusTooManyRequests,
	ENoAvailableKey:   http.StatusServiceUnavailable,
	EConflict:         http.StatusConflict,
	EUpstream:         http.StatusBadGateway,
	EMethodNotAllowed: http.StatusMethodNotAllowed,
	EInternal:         http.StatusInternalServerError,
}

// Error is an error whose Message is safe to show a caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("keygate error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or EInternal when err carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of err; anything that is not
// an *Error becomes "internal error" (the cause is for the log only).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus maps an error code to its HTTP status through one table.
func HTTPStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
