// Package respond writes JSON answers and errors in the one shape every
// keygate route uses: OpenAI's {"error":{"message","type","code"}}.
package respond

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/dialect"
)

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"internal error","type":"server_error","code":"internal_error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

// Error writes err as an OpenAI-shaped error. Only a *keygate.Error's
// message reaches the caller; anything else is logged and answered as
// "internal error".
func Error(w http.ResponseWriter, logger *slog.Logger, err error) {
	code := keygate.ErrorCode(err)
	if code == keygate.EInternal && logger != nil {
		logger.Error("internal error", "err", err)
	}
	status := keygate.HTTPStatus(code)
	JSON(w, status, errorBody{Error: errorFields{Message: keygate.ErrorMessage(err), Type: dialect.OpenAIErrorType(status), Code: code}})
}

// RetryAfterSeconds is wait as a Retry-After value: whole seconds, rounded
// up, at least 1 (a caller told 0 would ask again at once).
func RetryAfterSeconds(wait time.Duration) string {
	return strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second)))
}
