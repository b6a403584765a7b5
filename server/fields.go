package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/jsonx"
	"github.com/keygate/keygate/limit"
	"github.com/tidwall/gjson"
)

// maxReplyTokens is the largest max_tokens keygate passes on: beyond any
// model's output, and small enough that a reservation stays meaningful.
const maxReplyTokens = 10_000_000

// fields are what keygate reads of a request body: its own routing and
// accounting inputs, each type-checked, so that keygate and the provider
// cannot read different things from one body.
type fields struct {
	model, stream gjson.Result
	maxTokens     int
}

// readFields checks the body (well-formed JSON, bounded nesting, no
// top-level key twice) and reads model, stream, the required field and the
// reply caps in one pass.
func readFields(body []byte, required string) (fields, error) {
	var f fields
	if err := jsonx.CheckObject(body); err != nil {
		var je *jsonx.Error
		if errors.As(err, &je) && je.Refused {
			return f, keygate.Errorf(keygate.EInvalidRequest, "request body refused: %v", err)
		}
		return f, keygate.Errorf(keygate.EInvalidRequest, "request body is not valid JSON: %v", err)
	}
	var need gjson.Result
	var bad error
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.model = v
		case "stream":
			f.stream = v
		case required:
			need = v
		case "max_tokens", "max_completion_tokens":
			n, err := replyCap(k.Str, v)
			if err != nil {
				bad = err
				return false
			}
			f.maxTokens = max(f.maxTokens, n)
		}
		return true
	})
	switch {
	case bad != nil:
		return f, bad
	case f.model.Type != gjson.String || f.model.Str == "":
		return f, keygate.Errorf(keygate.EInvalidRequest, "missing required field: model (a string)")
	case !need.Exists():
		return f, keygate.Errorf(keygate.EInvalidRequest, "missing required field: %s", required)
	case required == "messages" && !need.IsArray():
		return f, keygate.Errorf(keygate.EInvalidRequest, "field messages must be an array")
	case required == "input" && need.Type != gjson.String && !need.IsArray():
		return f, keygate.Errorf(keygate.EInvalidRequest, "field input must be a string or an array")
	case f.stream.Exists() && f.stream.Type != gjson.True && f.stream.Type != gjson.False && f.stream.Type != gjson.Null:
		return f, keygate.Errorf(keygate.EInvalidRequest, "field stream must be true or false")
	}
	return f, nil
}

func replyCap(name string, v gjson.Result) (int, error) {
	if v.Type == gjson.Null {
		return 0, nil
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if v.Type != gjson.Number || err != nil || n < 1 || n > maxReplyTokens {
		return 0, keygate.Errorf(keygate.EInvalidRequest, "field %s must be a whole number from 1 to %d", name, maxReplyTokens)
	}
	return int(n), nil
}

// rateHeaders tells a caller with limits where it stands, in OpenAI's
// header names; the provider's own headers describe a pool key and are not
// passed on.
func rateHeaders(h http.Header, r *limit.Rate, now time.Time) {
	if r == nil || (r.RPM <= 0 && r.TPM <= 0) {
		return
	}
	s := r.Status(now)
	if s.LimitRequests > 0 {
		h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(s.LimitRequests))
		h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(s.RemainingRequests))
		h.Set("X-Ratelimit-Reset-Requests", s.ResetRequests.Round(time.Millisecond).String())
	}
	if s.LimitTokens > 0 {
		h.Set("X-Ratelimit-Limit-Tokens", strconv.Itoa(s.LimitTokens))
		h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(s.RemainingTokens))
		h.Set("X-Ratelimit-Reset-Tokens", s.ResetTokens.Round(time.Millisecond).String())
	}
}
