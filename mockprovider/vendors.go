package mockprovider

import (
	"net/http"
	"strings"
	"sync"
)

// Vendors other than OpenAI whose errors keygate must read. A Vendor
// answers GET …/models — the call keygate uses to check a key — as that
// vendor does: a model list for a good key, the vendor's own error body
// (status, headers and JSON exactly as it sends them) for a bad one.
const (
	VendorAnthropic   = "anthropic"
	VendorGemini      = "gemini"
	VendorSiliconFlow = "siliconflow"
	VendorAzure       = "azure"
)

// Vendor is a fake non-OpenAI provider for key checks.
type Vendor struct {
	name  string
	mu    sync.RWMutex
	keys  map[string]Behavior
	count map[string]int
}

// NewVendor returns a fake of vendor (VendorAnthropic, VendorGemini or
// VendorSiliconFlow) with a behaviour per key; unknown keys are invalid.
func NewVendor(vendor string, keys map[string]Behavior) *Vendor {
	k := map[string]Behavior{}
	for key, b := range keys {
		k[key] = b
	}
	return &Vendor{name: vendor, keys: k, count: map[string]int{}}
}

// SetBehavior changes a key's behaviour at runtime.
func (v *Vendor) SetBehavior(key string, b Behavior) {
	v.mu.Lock()
	v.keys[key] = b
	v.mu.Unlock()
}

// Count is how many requests came with key.
func (v *Vendor) Count(key string) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.count[key]
}

func (v *Vendor) key(r *http.Request) string {
	switch v.name {
	case VendorAnthropic:
		return r.Header.Get("x-api-key")
	case VendorGemini:
		if k := r.Header.Get("x-goog-api-key"); k != "" {
			return k
		}
		return r.URL.Query().Get("key")
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (v *Vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := v.key(r)
	v.mu.Lock()
	v.count[key]++
	b, ok := v.keys[key]
	v.mu.Unlock()
	if !ok {
		b = InvalidKey
	}
	w.Header().Set("Content-Type", "application/json")
	if b == OK {
		w.Write([]byte(`{"data":[{"id":"mock-model","type":"model"}],"models":[{"name":"models/mock-model"}]}`))
		return
	}
	status, header, body := v.errorFor(b)
	for name, vals := range header {
		w.Header()[name] = vals
	}
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// errorFor is what the vendor really answers for a failing behaviour.
func (v *Vendor) errorFor(b Behavior) (int, http.Header, string) { return vendorError(v.name, b) }

// vendorError is what vendor (VendorAnthropic, VendorGemini, VendorAzure
// or VendorSiliconFlow) really answers for a failing behaviour.
func vendorError(vendor string, b Behavior) (int, http.Header, string) {
	h := http.Header{}
	switch vendor {
	case VendorAzure:
		switch b {
		case RateLimited:
			h.Set("retry-after", "20")
			return 429, h, `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 20 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}`
		case QuotaExhausted:
			return 429, h, `{"error":{"code":"insufficient_quota","message":"You exceeded your current quota, please check your plan and billing details."}}`
		case Overloaded:
			return 503, h, `{"error":{"code":"ServiceUnavailable","message":"The service is temporarily unable to process your request. Please try again later."}}`
		case ServerError:
			return 500, h, `{"error":{"code":"InternalServerError","message":"The server had an error while processing your request. Sorry about that!"}}`
		}
		return 401, h, `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}`
	case VendorAnthropic:
		switch b {
		case RateLimited:
			h.Set("retry-after", "20")
			return 429, h, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."}}`
		case QuotaExhausted:
			return 400, h, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`
		case Overloaded:
			return 529, h, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
		case ServerError:
			return 500, h, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`
		}
		return 401, h, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`
	case VendorGemini:
		switch b {
		case RateLimited:
			return 429, h, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"15"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}`
		case QuotaExhausted:
			return 429, h, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"200"}]}]}}`
		case Overloaded:
			return 503, h, `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`
		case ServerError:
			return 500, h, `{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}`
		}
		return 400, h, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	default: // SiliconFlow
		switch b {
		case RateLimited:
			return 429, h, `{"code":50603,"message":"System is too busy now. Please try again later.","data":null}`
		case QuotaExhausted:
			return 403, h, `{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}`
		case Overloaded:
			return 503, h, `{"code":50501,"message":"Model service overloaded. Please try again later.","data":null}`
		case ServerError:
			return 500, h, `{"code":50500,"message":"Internal Server Error","data":null}`
		}
		return 401, h, `"Invalid token"`
	}
}
