// Package provider is the seam between keygate's provider-neutral attempt
// loop (package relay) and the wire formats of the providers behind it.
//
// An Adapter owns one upstream wire format: it builds the upstream request
// and its authentication for one attempt, translates a successful answer and
// a stream into the dialect the caller speaks, reads usage, normalises
// errors for the classifier, reads rate-limit headers into a neutral form,
// and builds the cheapest request that proves a key. The loop chooses keys,
// runs attempts, fails over and reports outcomes; it knows no wire format.
//
// Adapters register themselves by provider name (Register, in an init
// function); a new provider is a new package plus one blank import.
package provider

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/sse"
)

// Dialect is the wire format a caller speaks (SPEC section 2).
type Dialect string

// The caller dialects.
const (
	DialectChat        Dialect = "chat"        // POST /v1/chat/completions
	DialectResponses   Dialect = "responses"   // POST /v1/responses
	DialectMessages    Dialect = "messages"    // POST /v1/messages (Anthropic)
	DialectEmbeddings  Dialect = "embeddings"  // POST /v1/embeddings
	DialectCompletions Dialect = "completions" // POST /v1/completions
	DialectOther       Dialect = "other"       // any other POST /v1/… route, relayed as it is
)

// Request is one caller request, as every attempt of it sees it. Adapters
// must not modify Body: an attempt that needs other bytes builds them.
type Request struct {
	Dialect Dialect
	// Path is the caller's route below /v1/ ("chat/completions",
	// "images/generations"); DialectOther relays it as it is.
	Path        string
	Body        []byte
	ContentType string // the caller's Content-Type ("" means application/json)
	Model       string // the model_id the caller named
	Stream      bool
	RequestID   string
	// Header holds the caller's headers that may travel to a provider
	// (ForwardHeaders chose them): never credentials or account selectors.
	Header http.Header
}

// Target is the deployment and the key one attempt uses.
type Target struct {
	Model  *keygate.Model
	Secret string
	// Bearer: the secret is a fetched OAuth 2.0 or Google access token,
	// sent as "Authorization: Bearer" whatever the adapter sets (UseBearer).
	Bearer bool
}

// Usage is what an answer says it used.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	Known            bool // the provider reported it (else keygate counts)
	// Reply is the answer's text when Known is false, for keygate's
	// tokenizer to count.
	Reply string
}

// RateLimits is what an answer's rate-limit headers say about the key, in
// a form no provider owns. A negative count means the header was absent.
type RateLimits struct {
	LimitRequests, RemainingRequests int64
	LimitTokens, RemainingTokens     int64
	ResetRequests, ResetTokens       time.Duration
}

// Known reports whether any rate-limit header was read.
func (l RateLimits) Known() bool {
	return l.LimitRequests >= 0 || l.RemainingRequests >= 0 || l.LimitTokens >= 0 || l.RemainingTokens >= 0
}

// NoRateLimits is RateLimits with nothing known.
var NoRateLimits = RateLimits{-1, -1, -1, -1, 0, 0}

// Meta is what the loop reads from an upstream answer's headers.
type Meta struct {
	RequestID string // the provider's request id, for X-Upstream-Request-Id
	Limits    RateLimits
}

// Failure is an upstream answer that is not a success (an error status, a
// 200 carrying an error object, a malformed body, an error event before a
// stream's first event), classified, with what the caller gets if it is
// the last one.
type Failure struct {
	Verdict health.Verdict
	Status  int    // the status for the caller
	Body    []byte // the error body in the caller's dialect; nil: keygate writes its own
	// RetryAfter is the Retry-After header value to pass on, if any.
	RetryAfter string
}

// Adapter is one provider wire format. Its methods are called concurrently
// and must not block but on the network.
type Adapter interface {
	// Name is the provider name deployments use ("openai").
	Name() string
	// Serves reports whether a deployment of this provider can answer a
	// caller speaking d; the caller gets 400 unsupported_endpoint if not.
	Serves(d Dialect) bool
	// NewRequest builds the upstream request of one attempt: URL, body
	// (the caller's bytes with only the model renamed when the caller
	// speaks the upstream's own dialect), the headers ForwardHeaders let
	// through, the deployment's headers, and the key's authentication.
	NewRequest(ctx context.Context, req *Request, t Target) (*http.Request, error)
	// Answer checks a successful (2xx, not streamed) body and returns it in
	// the caller's dialect with its usage. A body that is an error object
	// or not the answer expected is a Failure.
	Answer(req *Request, status int, h http.Header, body []byte, now time.Time) ([]byte, Usage, *Failure)
	// Stream returns the translator of one streamed answer.
	Stream(req *Request) Stream
	// Failure classifies an error answer (status >= 300) and shapes its
	// body for the caller.
	Failure(req *Request, status int, h http.Header, body []byte, now time.Time) Failure
	// Meta reads the provider's request id and rate-limit headers.
	Meta(h http.Header, now time.Time) Meta
	// CheckRequest builds the cheapest request that proves the key, from
	// keygate's own inputs only (the deployment and the key): it confirms
	// an authentication failure before a key is disabled, and keycheck runs it.
	CheckRequest(ctx context.Context, t Target) (*http.Request, error)
}

// MinimalCaller is an adapter that builds the real minimal call of SPEC
// section 4: one generated token, from keygate's own inputs only (the
// deployment and the key). A model list proves only that a key
// authenticates; this call passing proves it has quota and room, so a
// quota, permission or rate-limit state may heal on it. keycheck judges
// its answer with the adapter's Answer and Failure, as live traffic.
type MinimalCaller interface {
	MinimalRequest(ctx context.Context, t Target) (*http.Request, error)
}

// MinimalPrompt is the prompt of every minimal call.
const MinimalPrompt = "hi"

// Stream translates one upstream stream, event by event.
type Stream interface {
	// Event appends what the caller gets for ev to out (nothing, for an
	// event the caller must not see). A Failure is an error event: before
	// anything reached the caller it fails over like any failure, after it
	// ends the stream.
	Event(ev sse.Event, out []byte) ([]byte, *Failure)
	// End appends what closes the caller's stream after the upstream ended.
	End(out []byte) []byte
	// Usage is the usage the stream reported so far.
	Usage() Usage
	// Text is the reply text so far, to count tokens when no usage came.
	Text() string
}

var (
	regMu    sync.RWMutex
	registry = map[string]Adapter{}
)

// Register makes an adapter available under its name. It panics on a
// duplicate, like database/sql drivers.
func Register(a Adapter) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[a.Name()]; dup {
		panic("provider: Register called twice for " + a.Name())
	}
	registry[a.Name()] = a
}

// DefaultName is the provider of a deployment that names none, and of any
// provider name without an adapter of its own: OpenAI-compatible services
// (DeepSeek, SiliconFlow, vLLM, one-api…) speak OpenAI's format.
const DefaultName = "openai"

// For returns the adapter for a deployment's provider name.
func For(name string) Adapter {
	regMu.RLock()
	a, ok := registry[name]
	if !ok {
		a = registry[DefaultName]
	}
	regMu.RUnlock()
	return a
}

// ErrorObjectStatus is the status a 200 error object stands for, by its class.
func ErrorObjectStatus(c health.Class) int {
	switch c {
	case health.ClassAuthentication:
		return http.StatusUnauthorized
	case health.ClassPermissionDenied, health.ClassRegion:
		return http.StatusForbidden
	case health.ClassInsufficientQuota, health.ClassRateLimit:
		return http.StatusTooManyRequests
	case health.ClassServiceUnavailable:
		return http.StatusServiceUnavailable
	case health.ClassClient:
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}
