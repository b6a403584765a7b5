// Package pace keeps, per key and model, how much room a provider key has
// left before its rate limits refuse it: from the rate-limit headers of
// every answer (OpenAI, Anthropic, Azure) and Gemini's quota details, and
// from the key's configured rpm/tpm. The relay reserves a request's
// estimated tokens before it goes and settles them after; the pool skips a
// key without room and prefers the one with the most. From the same data it
// forecasts when a key runs dry, caps hedged requests, and tracks each
// key's time to first byte.
//
// Nothing here reads a clock: every call takes the time, so callers pass
// their injected clock's now and tests control it.
package pace

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Limits is what one answer says about its key's rate limits, in a form
// that is the same for every vendor. Provider adapters fill it from their
// answer's headers (and body); Room.Observe reads it.
type Limits struct {
	Requests     Window
	Tokens       Window // input and output together (OpenAI, Azure; Anthropic's legacy total)
	InputTokens  Window // Anthropic's input-tokens limit
	OutputTokens Window // Anthropic's output-tokens limit
}

// Window is one limit as an answer reported it.
type Window struct {
	Set       bool
	Limit     int64     // the limit per window; 0 when not given (Azure gives only what remains)
	Remaining int64     // what is left
	Reset     time.Time // OpenAI, Anthropic: when the limit is full again; fixed windows: when it resets; zero when not given
	// Fixed says the limit comes back all at once at Reset (Azure's and
	// Gemini's windows); otherwise it refills continuously until Reset
	// (OpenAI's and Anthropic's token buckets).
	Fixed bool
	// Span is the length of a fixed window, for the windows after Reset.
	Span time.Duration
}

// Any reports whether the answer said anything about a limit.
func (l *Limits) Any() bool {
	return l.Requests.Set || l.Tokens.Set || l.InputTokens.Set || l.OutputTokens.Set
}

// Vendors whose headers Parse knows. An OpenAI-compatible service that
// copies OpenAI's headers (Groq, OpenRouter, vLLM behind a proxy…) parses
// as openai.
const (
	VendorOpenAI    = "openai"
	VendorAnthropic = "anthropic"
	VendorAzure     = "azure"
	VendorGemini    = "gemini"
)

// Azure's documented windows: requests are counted per 10 s (RPM/6), tokens
// per minute. It sends no reset header, so these stand in for one.
const (
	azureRequestSpan = 10 * time.Second
	azureTokenSpan   = time.Minute
)

// Parse reads the rate-limit information of an answer from vendor (the
// deployment's provider). body is read only for Gemini's 429s. An unknown
// or empty vendor is guessed from the headers present.
func Parse(vendor string, status int, h http.Header, body []byte, now time.Time) Limits {
	switch vendor {
	case VendorAnthropic:
		return ParseAnthropic(h, now)
	case VendorAzure:
		return ParseAzure(h, now)
	case VendorGemini:
		return ParseGemini(status, body, now)
	}
	if h.Get("Anthropic-Ratelimit-Requests-Remaining") != "" || h.Get("Anthropic-Ratelimit-Tokens-Remaining") != "" ||
		h.Get("Anthropic-Ratelimit-Input-Tokens-Remaining") != "" {
		return ParseAnthropic(h, now)
	}
	if h.Get("X-Ratelimit-Reset-Requests") == "" && h.Get("X-Ratelimit-Reset-Tokens") == "" &&
		(h.Get("X-Ratelimit-Remaining-Requests") != "" || h.Get("X-Ratelimit-Remaining-Tokens") != "") {
		return ParseAzure(h, now) // remaining counts with no reset: Azure's shape
	}
	return ParseOpenAI(h, now)
}

// ParseOpenAI reads x-ratelimit-{limit,remaining,reset}-{requests,tokens}.
// Resets are durations until the bucket is full again: "1m30s", "6ms", "20s".
func ParseOpenAI(h http.Header, now time.Time) Limits {
	return Limits{
		Requests: window(h, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", now, false, 0),
		Tokens:   window(h, "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens", now, false, 0),
	}
}

// ParseAnthropic reads anthropic-ratelimit-{requests,tokens,input-tokens,
// output-tokens}-{limit,remaining,reset}; resets are RFC 3339 times at
// which the bucket is full again.
func ParseAnthropic(h http.Header, now time.Time) Limits {
	w := func(name string) Window {
		p := "Anthropic-Ratelimit-" + name + "-"
		return window(h, p+"Limit", p+"Remaining", p+"Reset", now, false, 0)
	}
	return Limits{Requests: w("Requests"), Tokens: w("Tokens"), InputTokens: w("Input-Tokens"), OutputTokens: w("Output-Tokens")}
}

// ParseAzure reads Azure OpenAI's x-ratelimit-remaining-{requests,tokens}
// (and limit/reset when an API Management gateway in front adds them; its
// reset is in seconds). Azure's windows are fixed: 10 s for requests, a
// minute for tokens.
func ParseAzure(h http.Header, now time.Time) Limits {
	return Limits{
		Requests: window(h, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", now, true, azureRequestSpan),
		Tokens:   window(h, "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens", now, true, azureTokenSpan),
	}
}

func window(h http.Header, limitName, remName, resetName string, now time.Time, fixed bool, span time.Duration) Window {
	rem, ok := count(h.Get(remName))
	if !ok {
		return Window{}
	}
	w := Window{Set: true, Remaining: rem, Fixed: fixed, Span: span}
	if l, ok := count(h.Get(limitName)); ok {
		w.Limit = l
	}
	if r, ok := ParseReset(h.Get(resetName), now); ok {
		w.Reset = r
	} else if fixed {
		w.Reset = now.Add(span) // the window ends at the latest one span away
	}
	return w
}

// count parses a non-negative count; Azure's -1 ("not reported") is not one.
func count(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n >= 0
}

// ParseReset reads a reset value in any of the forms vendors send: a Go
// duration ("1m30s", "6ms", "20s", "1h2m3s"), a number of seconds ("20",
// "0.5"), or an RFC 3339 time. It returns the absolute time.
func ParseReset(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(d), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		return now.Add(time.Duration(f * float64(time.Second))), true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ParseGemini reads a Gemini 429's google.rpc.QuotaFailure: each violation
// names a quota (quotaId …PerMinute… or …PerDay…, quotaMetric …requests or
// …token_count) and its quotaValue, the limit, now used up; RetryInfo's
// retryDelay says when it comes back. Gemini sends no headers to read.
func ParseGemini(status int, body []byte, now time.Time) Limits {
	var l Limits
	if status != http.StatusTooManyRequests || len(body) == 0 {
		return l
	}
	details := gjson.GetBytes(body, "error.details")
	if !details.IsArray() {
		details = gjson.GetBytes(body, "0.error.details") // the array form some SDK paths return
	}
	var delay time.Duration
	details.ForEach(func(_, d gjson.Result) bool {
		if strings.HasSuffix(d.Get("@type").Str, "google.rpc.RetryInfo") {
			delay, _ = time.ParseDuration(d.Get("retryDelay").Str)
		}
		return true
	})
	details.ForEach(func(_, d gjson.Result) bool {
		if !strings.HasSuffix(d.Get("@type").Str, "google.rpc.QuotaFailure") {
			return true
		}
		d.Get("violations").ForEach(func(_, v gjson.Result) bool {
			id, metric := v.Get("quotaId").Str, v.Get("quotaMetric").Str
			span := time.Minute
			if strings.Contains(id, "PerDay") {
				span = 24 * time.Hour
			}
			reset := now.Add(span)
			if delay > 0 {
				reset = now.Add(delay)
			} else if span == 24*time.Hour {
				reset = nextPacificMidnight(now)
			}
			limit, _ := strconv.ParseInt(v.Get("quotaValue").Str, 10, 64)
			w := Window{Set: true, Limit: limit, Remaining: 0, Reset: reset, Fixed: true, Span: span}
			switch {
			case strings.Contains(metric, "input_token"):
				l.InputTokens = w
			case strings.Contains(metric, "token"):
				l.Tokens = w
			default:
				l.Requests = w
			}
			return true
		})
		return true
	})
	return l
}

// nextPacificMidnight is when Google resets daily quotas.
func nextPacificMidnight(now time.Time) time.Time {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		loc = time.FixedZone("PST", -8*3600)
	}
	t := now.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
}
