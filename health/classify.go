// Package health turns one failed upstream call into a verdict: which class
// of failure it was, what should cool down (the key, the key for one model,
// or nothing), how long the provider asked us to wait, and whether another
// key may succeed where this one failed.
//
// Classification runs on the request path, so it reads the error body with
// gjson and one pass of substring matching: no full unmarshal, no regular
// expressions, and no allocation but the short reason it returns (and
// gjson's copy of a message that contains JSON escapes).
package health

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Class is the kind of a failure, as named in the key-health table (SPEC §4).
type Class string

// The classes. The first seven put a key (or a key for one model) in
// cooldown; the last four never count against a key.
const (
	ClassAuthentication     Class = "authentication_error"
	ClassPermissionDenied   Class = "permission_denied"
	ClassInsufficientQuota  Class = "insufficient_quota"
	ClassRateLimit          Class = "rate_limit_exceeded"
	ClassServiceUnavailable Class = "service_unavailable"
	ClassInternal           Class = "internal_error"
	ClassUnknown            Class = "unknown_error"
	// No cooldown for these:
	ClassNetwork  Class = "network_error"        // DNS, connect refused, TLS, reset, timeouts
	ClassClient   Class = "client_error"         // 400 bad request, 404 model not found, 413, 422, context length, content filter
	ClassRegion   Class = "region_not_supported" // the gateway's egress location, not the key
	ClassCanceled Class = "canceled"             // the caller hung up: never counts against a key
)

// Scope is what a failure cools down.
type Scope uint8

// The scopes.
const (
	ScopeNone     Scope = iota // no cooldown at all
	ScopeKey                   // the key, for every model (auth, permission, quota, unknown)
	ScopeKeyModel              // the key for this model only (rate limit, 5xx)
)

// Verdict is the classification of one failed upstream call.
type Verdict struct {
	Class Class
	// Scope is normally Class.Scope(). The one exception: a quota the
	// provider counts per model (Gemini's daily PerModel quotas) cools down
	// only that model on the key, because the key's other models still work.
	Scope Scope
	// RetryAfter is the provider-given wait (Retry-After, retry-after-ms,
	// x-ratelimit-reset-*, anthropic-ratelimit-*-reset, Gemini
	// RetryInfo.retryDelay, or a "try again in 20s" in the message); 0 if
	// none. It is only set for classes that cool down, and capped at maxWait.
	RetryAfter time.Duration
	// Failover reports whether another key may succeed: true for every class
	// that cools a key and for ClassNetwork; false for ClassClient,
	// ClassRegion and ClassCanceled, which every key would meet alike.
	Failover bool
	// Reason is a short human reason taken from the provider's error message
	// (at most maxReason bytes), for logs and last_error. It may contain the
	// key (providers echo it); the caller masks it.
	Reason string
}

// Scope returns the cooldown scope SPEC §4 gives the class.
func (c Class) Scope() Scope {
	switch c {
	case ClassAuthentication, ClassPermissionDenied, ClassInsufficientQuota, ClassUnknown:
		return ScopeKey
	case ClassRateLimit, ClassServiceUnavailable, ClassInternal:
		return ScopeKeyModel
	default:
		return ScopeNone
	}
}

// failover reports whether another key may do better than the one that
// failed with this class.
func (c Class) failover() bool {
	switch c {
	case ClassClient, ClassRegion, ClassCanceled:
		return false
	default:
		return true
	}
}

const (
	// maxReason bounds Verdict.Reason; SPEC §4 shows last_error as at most
	// 256 characters.
	maxReason = 256
	// maxWait caps a provider-given wait. Nothing legitimate asks for more
	// than a day (a daily quota resets within one); a longer value is far
	// more likely a misread header than an instruction, and an uncapped one
	// would park a key for as long as it says.
	maxWait = 24 * time.Hour
)

func verdict(c Class, reason string) Verdict {
	return Verdict{Class: c, Scope: c.Scope(), Failover: c.failover(), Reason: reason}
}

// Classify classifies an HTTP answer with status >= 400. body is the start
// of the response body (the caller caps it at 64 KiB); it is only read during
// the call. now turns absolute reset times into durations.
//
// Classify(200, …) is for OpenAI-compatible proxies that answer 200 with an
// error object ({"error":{…}} and no "choices" or "data"): the body is
// classified as if its status were the one the error object implies. A 2xx
// body that is not an error object is a malformed answer: ClassInternal.
func Classify(status int, header http.Header, body []byte, now time.Time) Verdict {
	e := parseError(view(body))
	if status < 400 {
		if !e.isError {
			return verdict(ClassInternal, "malformed response")
		}
		status = e.impliedStatus()
	}
	j := e.judge(status)
	v := verdict(j.class, e.reason(status))
	if j.perModel && v.Scope == ScopeKey {
		v.Scope = ScopeKeyModel
	}
	if v.Scope != ScopeNone {
		v.RetryAfter = retryAfter(header, &e, now)
		if j.dailyReset {
			v.RetryAfter = max(v.RetryAfter, untilPacificMidnight(now))
		}
	}
	return v
}

// ClassifyErr classifies a transport error: the call got no HTTP answer.
// callerGone reports whether the caller's context was cancelled; then the
// verdict is ClassCanceled whatever err says, so a client that hangs up never
// counts against a key.
//
// Every other transport error (DNS, refused or reset connections, TLS and
// certificate errors, timeouts, an unexpected EOF, an upstream context
// deadline) is ClassNetwork: the provider never judged the key, so nothing
// cools down, but another key (over another connection) may get through.
// The one exception is net/http refusing the key's own header, which only
// this key will ever do.
func ClassifyErr(err error, callerGone bool) Verdict {
	if callerGone {
		return verdict(ClassCanceled, "caller went away")
	}
	if err == nil {
		return verdict(ClassNetwork, "transport error")
	}
	// Drop url.Error's method and URL: last_error does not need them, and a
	// URL may carry the key (Gemini accepts ?key=).
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := err.Error()
	if keyHeaderRejected(msg) {
		return verdict(ClassAuthentication, "the key contains characters not allowed in an HTTP header")
	}
	return verdict(ClassNetwork, clip(msg))
}

// keyHeaderNames are the headers providers read the key from. net/http
// rejects a header value with a control character (a key pasted with its
// trailing newline) before sending anything; only this key will ever fail
// that way, so it is the key's fault.
var keyHeaderNames = [...]string{`"authorization"`, `"x-api-key"`, `"x-goog-api-key"`, `"api-key"`}

func keyHeaderRejected(msg string) bool {
	i := indexFold(msg, "invalid header field value for ")
	if i < 0 {
		return false
	}
	rest := msg[i+len("invalid header field value for "):]
	for _, h := range keyHeaderNames {
		if hasPrefixFold(rest, h) {
			return true
		}
	}
	return false
}

// view returns the body as a string without copying it. Nothing derived
// from the view outlives Classify: the only string that escapes, Reason, is
// cloned by clip.
func view(body []byte) string {
	return unsafe.String(unsafe.SliceData(body), len(body))
}

// errorBody is what Classify reads from an error body. Its strings point
// into the body and must not be kept.
type errorBody struct {
	hay       string // where markers are searched: the error object's JSON, or the start of a non-JSON body
	message   string // error.message, or a top-level message (DashScope, SiliconFlow)
	code      string // error.code or a top-level code: "invalid_api_key", "InvalidApiKey", "429", "30001"
	typ       string // error.type (OpenAI, Anthropic, DeepSeek)
	rpcStatus string // error.status, the google.rpc code name ("RESOURCE_EXHAUSTED")
	details   gjson.Result
	text      string // a non-JSON body, trimmed
	isError   bool   // a JSON error object without a result next to it
	marks     marks  // the marker groups found in hay
}

// maxPlainHay bounds the marker search in a body that is not JSON: an HTML
// page from a proxy carries no provider markers past its first lines, and
// scanning all 64 KiB of it would be wasted work.
const maxPlainHay = 1 << 10

func parseError(s string) errorBody {
	e := readError(s)
	e.marks = scan(e.hay)
	return e
}

func readError(s string) errorBody {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" {
		return errorBody{}
	}
	top := gjson.Parse(s)
	if top.IsArray() {
		// Gemini's OpenAI-compatible endpoint wraps its error in an array:
		// [{"error":{…}}].
		top = top.Get("0")
	}
	switch {
	case top.IsObject():
	case top.Type == gjson.String:
		// A bare JSON string, like SiliconFlow's 401 "Invalid token".
		return errorBody{hay: top.Str, message: top.Str}
	default:
		t := strings.TrimSpace(s)
		return errorBody{hay: t[:min(len(t), maxPlainHay)], text: t}
	}

	e := errorBody{hay: top.Raw}
	var errObj gjson.Result
	hasResult := false
	top.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "error":
			errObj = v
		case "code":
			e.code = v.String()
		case "message":
			e.message = v.String()
		case "choices", "data", "candidates", "content":
			// SiliconFlow errors carry "data":null; only a real value is a result.
			hasResult = hasResult || (v.Type != gjson.Null)
		}
		return true
	})
	switch {
	case errObj.IsObject():
		e.hay = errObj.Raw
		e.readErrorObject(errObj)
	case errObj.Type == gjson.String:
		e.message = errObj.Str
	}
	e.isError = errObj.Exists() && errObj.Type != gjson.Null && !hasResult
	return e
}

// readErrorObject reads the fields of an {"error":{…}} object, which
// overrides any top-level code or message.
func (e *errorBody) readErrorObject(obj gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "message":
			e.message = v.String()
		case "code":
			e.code = v.String()
		case "type":
			e.typ = v.String()
		case "status":
			e.rpcStatus = v.String()
		case "details":
			e.details = v
		}
		return true
	})
}

// judgement is a class plus what Gemini's quota failures add to it.
type judgement struct {
	class      Class
	perModel   bool // the provider counts this quota per model
	dailyReset bool // the quota resets at midnight Pacific time
}

// marks is a set of marker groups found in an error body.
type marks uint16

const (
	markRegion        marks = 1 << iota // the gateway's egress location is refused
	markAuth                            // the key is invalid, expired or revoked
	markQuota                           // money or allowance is gone
	markClient                          // no key can serve this request
	markQuotaFailure                    // a google.rpc.QuotaFailure detail
	markAllocated                       // DashScope's per-minute "allocated quota exceeded"
	markFreeAllocated                   // DashScope's free allowance is gone
	markPerDay                          // a daily quota window (Gemini quota ids)
	markPerModel                        // a quota counted per model (Gemini quota ids)
)

// markers are the phrases, codes and ids the providers use, lower case;
// they are matched ignoring ASCII case anywhere in the error object.
var markers = [...]struct {
	text string
	mark marks
}{
	{"user location is not supported", markRegion},              // Gemini FAILED_PRECONDITION
	{"unsupported_country_region_territory", markRegion},        // OpenAI 403 code
	{"country, region, or territory not supported", markRegion}, // OpenAI 403 message

	{"api_key_invalid", markAuth}, {"api key not valid", markAuth}, // Gemini 400
	{"api key expired", markAuth}, {"reported as leaked", markAuth}, // Gemini: a key Google expired or revoked
	{"invalid_api_key", markAuth}, {"invalid_authentication", markAuth}, {"incorrect api key", markAuth}, // OpenAI and compatibles
	{"authentication_error", markAuth}, {"authentication fails", markAuth}, // Anthropic type; DeepSeek
	{"invalidapikey", markAuth}, // DashScope

	{"insufficient_quota", markQuota}, {"exceeded your current quota", markQuota}, {"quota exceeded", markQuota},
	{"billing_not_active", markQuota}, {"billing_hard_limit", markQuota}, {"billing_error", markQuota},
	{"billing_disabled", markQuota}, {"requires billing to be enabled", markQuota}, // OpenAI, Anthropic, Gemini
	{"insufficient balance", markQuota}, {"insufficient_balance", markQuota}, {"balance is insufficient", markQuota}, // DeepSeek, SiliconFlow
	{"credit balance is too low", markQuota}, {"reached your specified api usage limits", markQuota}, // Anthropic
	{"arrearage", markQuota}, {"free tier of the model has been exhausted", markQuota}, // DashScope
	{"insufficient_user_quota", markQuota}, {"exceeded_current_quota", markQuota}, // one-api relays, Moonshot

	// Requests no key can serve: too long, or refused by a content filter.
	// They matter where the status alone would say otherwise (a 403 or 413
	// for a context overflow).
	{"context_length_exceeded", markClient}, {"context length", markClient}, {"prompt is too long", markClient},
	{"exceeds the maximum number of tokens", markClient},
	{"content_filter", markClient}, {"content_policy_violation", markClient}, {"responsibleaipolicyviolation", markClient},
	{"datainspectionfailed", markClient}, {"data_inspection_failed", markClient}, {"inappropriate content", markClient},

	{"google.rpc.quotafailure", markQuotaFailure},
	{"allocated quota exceeded", markAllocated},
	{"free allocated quota", markFreeAllocated},
	{"perday", markPerDay}, {"per day", markPerDay},
	{"permodel", markPerModel},
}

// marker is a marker filed under its first byte.
type marker struct {
	rest string // the text after its first byte
	mark marks
}

// markerIndex files the markers by first byte, and markerPairs holds a bit
// for each pair of first two bytes, so that one pass over a body finds all
// markers: most positions cost one bit test, and only at a known pair are
// the few markers starting with it compared.
var markerIndex, markerPairs = func() (idx [256][]marker, pairs [1 << 16 / 64]uint64) {
	for _, m := range markers {
		idx[m.text[0]] = append(idx[m.text[0]], marker{m.text[1:], m.mark})
		k := uint16(m.text[0])<<8 | uint16(m.text[1])
		pairs[k/64] |= 1 << (k % 64)
	}
	return idx, pairs
}()

// scan returns the marker groups found in s.
func scan(s string) marks {
	var found marks
	for i := 0; i+1 < len(s); i++ {
		c := toLower(s[i])
		k := uint16(c)<<8 | uint16(toLower(s[i+1]))
		if markerPairs[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, m := range markerIndex[c] {
			if found&m.mark == 0 && hasPrefixFold(s[i+1:], m.rest) {
				found |= m.mark
			}
		}
	}
	return found
}

func (e *errorBody) has(m marks) bool { return e.marks&m != 0 }

// judge classifies the error at status. The order carries the rules of
// SPEC §4: a region problem wins over a 403, a bad key over everything the
// provider might add, quota markers over the plain 429 rule.
func (e *errorBody) judge(status int) judgement {
	switch {
	case e.has(markRegion):
		return judgement{class: ClassRegion}
	case status == http.StatusUnauthorized:
		return judgement{class: ClassAuthentication}
	case status < 500 && e.has(markAuth):
		return judgement{class: ClassAuthentication}
	}
	if status < 500 {
		if j, ok := e.limit(status); ok {
			return j
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		return judgement{class: ClassRateLimit}
	case status == http.StatusServiceUnavailable || status == 529 || e.typ == "overloaded_error":
		return judgement{class: ClassServiceUnavailable}
	case status >= 500:
		// 500, 502 and 504 per SPEC, and every other 5xx (Cloudflare's
		// 520–524, a 501 from a proxy) with them: a server-side failure
		// says nothing about the key, so it must not take the key's
		// unknown_error path (disabled after two).
		return judgement{class: ClassInternal}
	case status == http.StatusRequestTimeout:
		// The provider gave up waiting for us: a transport problem.
		return judgement{class: ClassNetwork}
	case e.has(markClient):
		return judgement{class: ClassClient}
	case status == http.StatusForbidden:
		return judgement{class: ClassPermissionDenied}
	case status == http.StatusBadRequest, status == http.StatusNotFound,
		status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
		return judgement{class: ClassClient}
	case status == 0:
		// A 200 error object that names no status: most likely the
		// proxy's own upstream failure, not a verdict on the key.
		return judgement{class: ClassInternal}
	default:
		return judgement{class: ClassUnknown}
	}
}

// limit decides between a quota (the account is out of money or of its
// allowance: cool the key down for long) and a rate limit (a per-minute
// window: cool this model down briefly), for a 4xx that carries quota words.
// ok is false when the body says neither.
func (e *errorBody) limit(status int) (judgement, bool) {
	if e.rpcStatus == "RESOURCE_EXHAUSTED" || e.has(markQuotaFailure) {
		return e.geminiLimit(), true
	}
	// DashScope names its per-minute limits Throttling.* and says
	// "Allocated quota exceeded" for a TPM limit (in its OpenAI-compatible
	// mode too, under code insufficient_quota). Only "Free allocated quota
	// exceeded" means the free allowance is gone.
	if hasPrefixFold(e.code, "throttling") || e.has(markAllocated) {
		if e.has(markFreeAllocated) {
			return judgement{class: ClassInsufficientQuota}, true
		}
		return judgement{class: ClassRateLimit}, true
	}
	if status == http.StatusPaymentRequired ||
		containsFold(e.code, "billing") || containsFold(e.typ, "billing") || e.has(markQuota) {
		return judgement{class: ClassInsufficientQuota}, true
	}
	return judgement{}, false
}

// geminiLimit classifies a google.rpc RESOURCE_EXHAUSTED. Its message says
// "You exceeded your current quota" for every limit, per-minute ones
// included, so the message cannot decide; the violated quota's id can:
// "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
// "GenerateContentInputTokensPerModelPerMinute-FreeTier",
// "GenerateRequestsPerDayPerProjectPerModel-FreeTier" (older bodies say
// "… requests per minute" in words).
//
// A per-minute or per-second window is a rate limit: it clears within a
// minute and the RetryInfo says when. A per-day window is a quota: nothing
// helps before it resets, which Google does at midnight Pacific time, so the
// wait runs until then. Google counts most daily quotas per model, so such
// a quota cools only this model on the key. A RESOURCE_EXHAUSTED that names
// no window ("Resource has been exhausted (e.g. check quota).", Vertex's
// shared capacity) is a rate limit: it is usually gone in seconds.
func (e *errorBody) geminiLimit() judgement {
	if e.has(markPerDay) {
		return judgement{class: ClassInsufficientQuota, perModel: e.has(markPerModel), dailyReset: true}
	}
	return judgement{class: ClassRateLimit}
}

// impliedStatus is the HTTP status a 200 error object stands for, or 0.
func (e *errorBody) impliedStatus() int {
	if n, err := strconv.Atoi(e.code); err == nil && n >= 400 && n <= 599 {
		return n // Gemini's "code":429, Azure's "code":"429"
	}
	switch e.rpcStatus {
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "NOT_FOUND":
		return http.StatusNotFound
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	case "INTERNAL", "UNKNOWN":
		return http.StatusInternalServerError
	}
	for _, name := range [...]string{e.code, e.typ} {
		switch name {
		case "invalid_api_key", "authentication_error":
			return http.StatusUnauthorized
		case "permission_error":
			return http.StatusForbidden
		case "rate_limit_exceeded", "rate_limit_error", "insufficient_quota":
			return http.StatusTooManyRequests
		case "overloaded_error":
			return 529
		case "api_error", "server_error":
			return http.StatusInternalServerError
		case "model_not_found", "not_found_error":
			return http.StatusNotFound
		case "request_too_large":
			return http.StatusRequestEntityTooLarge
		case "invalid_request_error", "context_length_exceeded":
			return http.StatusBadRequest
		}
	}
	return 0
}

// reason returns a short, cloned reason for the verdict.
func (e *errorBody) reason(status int) string {
	r := e.message
	if inner := nestedMessage(r); inner != "" {
		r = inner
	}
	if r == "" {
		r = firstNonEmpty(e.code, e.typ, e.rpcStatus)
	}
	if r == "" && e.text != "" {
		r = plainReason(e.text)
	}
	if r = strings.TrimSpace(r); r != "" {
		return clip(r)
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "HTTP " + strconv.Itoa(status)
}

// nestedMessage unwraps a relay that put the upstream's whole error body in
// its own message (`{"error":{"message":"{\n \"error\": {…}}"}}`): the inner
// message is the one worth reading.
func nestedMessage(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" || (s[0] != '{' && s[0] != '[') {
		return ""
	}
	r := gjson.Get(s, "error.message")
	if !r.Exists() {
		r = gjson.Get(s, "0.error.message")
	}
	return r.String()
}

// plainReason is the title of an HTML error page, or the first line of a
// plain-text body.
func plainReason(s string) string {
	if i := indexFold(s, "<title>"); i >= 0 {
		t := s[i+len("<title>"):]
		if j := indexFold(t, "</title>"); j >= 0 {
			return t[:j]
		}
		return ""
	}
	if s[0] == '<' {
		return "" // markup without a title: nothing readable
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// clip returns a copy of s cut to maxReason bytes at a rune boundary, on
// one line: Gemini's messages hold newlines, which do not belong in a log
// field or in last_error. The copy matters: s may point into the caller's
// body buffer.
func clip(s string) string {
	if len(s) > maxReason {
		n := maxReason
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// resetHeader is a pair of rate-limit headers: when a limit resets and how
// much of it is left.
type resetHeader struct{ reset, remaining string }

// resetHeaders are OpenAI's (durations: "1s", "6m0s", "20ms") and
// Anthropic's (RFC 3339 times).
var resetHeaders = [...]resetHeader{
	{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Remaining-Requests"},
	{"X-Ratelimit-Reset-Tokens", "X-Ratelimit-Remaining-Tokens"},
	{"Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Requests-Remaining"},
	{"Anthropic-Ratelimit-Tokens-Reset", "Anthropic-Ratelimit-Tokens-Remaining"},
	{"Anthropic-Ratelimit-Input-Tokens-Reset", "Anthropic-Ratelimit-Input-Tokens-Remaining"},
	{"Anthropic-Ratelimit-Output-Tokens-Reset", "Anthropic-Ratelimit-Output-Tokens-Remaining"},
}

// retryAfter is the provider-given wait, most explicit source first:
// retry-after-ms (Azure, more precise than its Retry-After), Retry-After,
// the rate-limit reset headers, Gemini's RetryInfo, and last a "try again
// in 20s" in the message (relays often drop the headers but keep the body).
func retryAfter(h http.Header, e *errorBody, now time.Time) time.Duration {
	if v := get(h, "Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return seconds(ms / 1000)
		}
	}
	if d := parseWait(get(h, "Retry-After"), now); d > 0 {
		return d
	}
	if d := resetWait(h, now); d > 0 {
		return d
	}
	if d := retryInfo(e.details); d > 0 {
		return d
	}
	return hintWait(e.message)
}

// get is h.Get for a key already in canonical form, as every key in a
// response header from net/http is; it skips Get's canonicalisation, which
// checks each byte of the key on every call.
func get(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// resetWait reads the reset headers. A 429 names the limit it hit by a
// remaining count of 0; the wait is the latest reset among those. When no
// remaining count is 0 (a token request larger than what is left), it is the
// latest reset of all, as the limit hit is among them.
func resetWait(h http.Header, now time.Time) time.Duration {
	var exhausted, any time.Duration
	for _, r := range resetHeaders {
		d := parseWait(get(h, r.reset), now)
		if d <= 0 {
			continue
		}
		any = max(any, d)
		if get(h, r.remaining) == "0" {
			exhausted = max(exhausted, d)
		}
	}
	if exhausted > 0 {
		return exhausted
	}
	return any
}

// retryInfo reads the retryDelay of a google.rpc.RetryInfo detail ("38s").
func retryInfo(details gjson.Result) time.Duration {
	var d time.Duration
	details.ForEach(func(_, detail gjson.Result) bool {
		var typ, delay string
		detail.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "@type":
				typ = v.Str
			case "retryDelay":
				delay = v.Str
			}
			return true
		})
		if !strings.HasSuffix(typ, "google.rpc.RetryInfo") {
			return true
		}
		if v, err := time.ParseDuration(delay); err == nil {
			d = clampWait(v)
		}
		return false
	})
	return d
}

// hintPhrases introduce a wait in a provider message: OpenAI's "Please try
// again in 6ms.", Gemini's "Please retry in 38.9s.", Azure's "Please retry
// after 6 seconds."
var hintPhrases = [...]string{"try again in ", "retry in ", "retry after "}

func hintWait(msg string) time.Duration {
	for _, p := range hintPhrases {
		if i := indexFold(msg, p); i >= 0 {
			if d := leadingWait(msg[i+len(p):]); d > 0 {
				return d
			}
		}
	}
	return 0
}

// leadingWait reads a wait at the start of s: a Go-style duration ("20s",
// "1m30.5s", "6ms") or a number and a unit word ("6 seconds").
func leadingWait(s string) time.Duration {
	n := 0
	for n < len(s) && (isDigit(s[n]) || s[n] == '.' || isLetter(s[n])) {
		n++
	}
	tok := strings.TrimRight(s[:n], ".")
	if d, err := time.ParseDuration(tok); err == nil {
		return clampWait(d)
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil || f <= 0 {
		return 0
	}
	unit := strings.TrimLeft(s[n:], " ")
	switch {
	case hasPrefixFold(unit, "ms"), hasPrefixFold(unit, "millisecond"):
		return seconds(f / 1000)
	case hasPrefixFold(unit, "min"):
		return seconds(f * 60)
	case hasPrefixFold(unit, "hour"):
		return seconds(f * 3600)
	default:
		return seconds(f)
	}
}

// parseWait reads a wait from a header value: a Go duration (OpenAI's
// "6m0s", Gemini's "38s"), a number of seconds ("24", "1.5"; above 1e9 a
// Unix time, as some relays send), an RFC 3339 time (Anthropic) or an HTTP
// date (Retry-After). Times in the past, and anything unreadable, give 0.
func parseWait(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		return clampWait(d)
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f > 1e9 {
			return clampWait(time.Unix(int64(f), 0).Sub(now))
		}
		return seconds(f)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return clampWait(t.Sub(now))
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampWait(t.Sub(now))
	}
	return 0
}

// seconds converts a float number of seconds, guarding the conversion
// against overflow.
func seconds(f float64) time.Duration {
	if f >= maxWait.Seconds() {
		return maxWait
	}
	return clampWait(time.Duration(f * float64(time.Second)))
}

func clampWait(d time.Duration) time.Duration {
	return max(0, min(d, maxWait))
}

// pacific is Google's quota clock. Without tzdata on the host it falls back
// to standard time, which in summer waits one hour longer than needed:
// late is harmless, early would only fail again.
var pacific = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("America/Los_Angeles"); err == nil {
		return loc
	}
	return time.FixedZone("PST", -8*60*60)
})

// untilPacificMidnight is how long a Gemini daily quota stays exhausted:
// Google resets them at midnight Pacific time.
func untilPacificMidnight(now time.Time) time.Duration {
	t := now.In(pacific())
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, t.Location()).Sub(now)
}

// ASCII case-insensitive search for short strings, allocation-free. The
// needle must be lower case.

func containsFold(s, lower string) bool { return indexFold(s, lower) >= 0 }

func indexFold(s, lower string) int {
	if lower == "" {
		return 0
	}
	first := lower[0]
	for i := 0; i+len(lower) <= len(s); i++ {
		if toLower(s[i]) == first && hasPrefixFold(s[i+1:], lower[1:]) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		if toLower(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= toLower(c) && toLower(c) <= 'z' }
