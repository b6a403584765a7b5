package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // the daylight-saving test needs America/Los_Angeles on any host
	"unicode/utf8"
)

// now is the clock of every table case: a winter morning, so that midnight
// Pacific is 08:00 UTC with or without tzdata on the host.
var now = time.Date(2025, time.January, 15, 10, 0, 0, 0, time.UTC)

// hdr builds a response header the way net/http does (canonical keys).
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

var jsonHdr = hdr("Content-Type", "application/json")

type classifyCase struct {
	name       string
	status     int
	header     http.Header
	body       string
	class      Class
	scope      Scope
	failover   bool
	retryAfter time.Duration
	reason     string // checked when set
}

// classifyCases are answers as the providers send them: status, the headers
// that matter, and the body byte for byte (OpenAI pretty-prints with four
// spaces, Google with two, Anthropic and the Chinese providers send compact
// JSON). Keys and ids inside are placeholders.
var classifyCases = []classifyCase{
	// OpenAI.
	{
		name:   "openai 401 incorrect API key",
		status: 401, header: jsonHdr,
		body: `{
    "error": {
        "message": "Incorrect API key provided: sk-proj-********************************************7xQA. You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }
}
`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
		reason: "Incorrect API key provided: sk-proj-********************************************7xQA. You can find your API key at https://platform.openai.com/account/api-keys.",
	},
	{
		name:   "openai 429 insufficient_quota",
		status: 429, header: jsonHdr,
		body: `{
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota",
        "param": null,
        "code": "insufficient_quota"
    }
}
`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		// The requests limit is the one at 0: its reset wins over the
		// later reset of the token bucket, which still has room.
		name:   "openai 429 RPM with x-ratelimit headers",
		status: 429,
		header: hdr("Content-Type", "application/json",
			"X-Ratelimit-Limit-Requests", "3", "X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "17.28s",
			"X-Ratelimit-Limit-Tokens", "40000", "X-Ratelimit-Remaining-Tokens", "150", "X-Ratelimit-Reset-Tokens", "59.775s"),
		body: `{
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-9Qz1example on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more. You can increase your rate limit by adding a payment method to your account at https://platform.openai.com/account/billing.",
        "type": "requests",
        "param": null,
        "code": "rate_limit_exceeded"
    }
}
`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 17280 * time.Millisecond,
	},
	{
		name:   "openai 429 TPM with reset duration in minutes",
		status: 429,
		header: hdr("X-Ratelimit-Remaining-Requests", "9999", "X-Ratelimit-Reset-Requests", "6ms",
			"X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", "6m0s"),
		body: `{
    "error": {
        "message": "Rate limit reached for gpt-4o in organization org-9Qz1example on tokens per min (TPM): Limit 30000, Used 30000, Requested 1514. Please try again in 6m0s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "tokens",
        "param": null,
        "code": "rate_limit_exceeded"
    }
}
`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 6 * time.Minute,
	},
	{
		// A relay that forwards the body but not the headers: the message
		// is all there is.
		name:   "openai 429 through a relay, 'Please try again in 6ms'",
		status: 429, header: jsonHdr,
		body:  `{"error":{"message":"Rate limit reached for gpt-4o in organization org-9Qz1example on tokens per min (TPM): Limit 30000, Used 29994, Requested 12. Please try again in 6ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 6 * time.Millisecond,
	},
	{
		name:   "openai 500 server_error",
		status: 500, header: jsonHdr,
		body: `{
    "error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": null,
        "code": null
    }
}
`,
		class: ClassInternal, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "openai 503 engine overloaded",
		status: 503, header: jsonHdr,
		body: `{
    "error": {
        "message": "The engine is currently overloaded, please try again later",
        "type": "server_error",
        "param": null,
        "code": null
    }
}
`,
		class: ClassServiceUnavailable, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "openai 400 context_length_exceeded",
		status: 400, header: jsonHdr,
		body: `{
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130091 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded"
    }
}
`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "openai 404 model_not_found",
		status: 404, header: jsonHdr,
		body: `{
    "error": {
        "message": "The model ` + "`gpt-5-turbo`" + ` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": null,
        "code": "model_not_found"
    }
}
`,
		class: ClassClient, scope: ScopeNone, failover: false,
		reason: "The model `gpt-5-turbo` does not exist or you do not have access to it.",
	},
	{
		// A project without access to a model gets a 403, not a 404: that
		// is this key's permission, and another key may have it.
		name:   "openai 403 project has no access to the model",
		status: 403, header: jsonHdr,
		body: `{
    "error": {
        "message": "Project ` + "`proj_3xAmPl3`" + ` does not have access to model ` + "`o3`" + `",
        "type": "invalid_request_error",
        "param": null,
        "code": "model_not_found"
    }
}
`,
		class: ClassPermissionDenied, scope: ScopeKey, failover: true,
	},
	{
		name:   "openai 400 content_policy_violation (images)",
		status: 400, header: jsonHdr,
		body: `{
  "error": {
    "code": "content_policy_violation",
    "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
    "param": null,
    "type": "invalid_request_error"
  }
}
`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "openai 403 unsupported_country_region_territory",
		status: 403, header: jsonHdr,
		body: `{
    "error": {
        "code": "unsupported_country_region_territory",
        "message": "Country, region, or territory not supported",
        "param": null,
        "type": "request_forbidden"
    }
}
`,
		class: ClassRegion, scope: ScopeNone, failover: false,
	},
	{
		name:   "openai 429 billing_not_active",
		status: 429, header: jsonHdr,
		body: `{
    "error": {
        "message": "Your account is not active, please check your billing details on our website.",
        "type": "billing_not_active",
        "param": null,
        "code": "billing_not_active"
    }
}
`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "openai 400 billing_hard_limit_reached",
		status: 400, header: jsonHdr,
		body: `{
    "error": {
        "code": "billing_hard_limit_reached",
        "message": "Billing hard limit has been reached",
        "param": null,
        "type": "invalid_request_error"
    }
}
`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},

	// Anthropic.
	{
		name:   "anthropic 401 authentication_error",
		status: 401, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`,
		class: ClassAuthentication, scope: ScopeKey, failover: true, reason: "invalid x-api-key",
	},
	{
		name:   "anthropic 403 permission_error",
		status: 403, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."},"request_id":"req_011CSHoFq3yR2vP9kT5sWm1N"}`,
		class: ClassPermissionDenied, scope: ScopeKey, failover: true,
	},
	{
		name:   "anthropic 429 rate_limit_error with retry-after",
		status: 429,
		header: hdr("Content-Type", "application/json", "Retry-After", "24",
			"Anthropic-Ratelimit-Requests-Limit", "50", "Anthropic-Ratelimit-Requests-Remaining", "49", "Anthropic-Ratelimit-Requests-Reset", "2025-01-15T10:00:01Z",
			"Anthropic-Ratelimit-Input-Tokens-Limit", "30000", "Anthropic-Ratelimit-Input-Tokens-Remaining", "0", "Anthropic-Ratelimit-Input-Tokens-Reset", "2025-01-15T10:00:24Z",
			"Anthropic-Ratelimit-Output-Tokens-Limit", "8000", "Anthropic-Ratelimit-Output-Tokens-Remaining", "8000", "Anthropic-Ratelimit-Output-Tokens-Reset", "2025-01-15T10:00:00Z",
			"Anthropic-Ratelimit-Tokens-Limit", "38000", "Anthropic-Ratelimit-Tokens-Remaining", "8000", "Anthropic-Ratelimit-Tokens-Reset", "2025-01-15T10:00:24Z"),
		body:  `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (5f2c3e9a-0b1d-4c5e-8f7a-2b3c4d5e6f70) of 30,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."},"request_id":"req_011CSHoJ8bq4mG2sYvP3dL6e"}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 24 * time.Second,
	},
	{
		// A gateway in front of Anthropic that dropped retry-after: the
		// exhausted limits (input tokens and tokens, both at 0) reset in
		// 24 s; the requests limit has room and its later reset is ignored.
		name:   "anthropic 429 without retry-after: anthropic-ratelimit-*-reset",
		status: 429,
		header: hdr("Content-Type", "application/json",
			"Anthropic-Ratelimit-Requests-Remaining", "49", "Anthropic-Ratelimit-Requests-Reset", "2025-01-15T10:00:59Z",
			"Anthropic-Ratelimit-Input-Tokens-Remaining", "0", "Anthropic-Ratelimit-Input-Tokens-Reset", "2025-01-15T10:00:24Z",
			"Anthropic-Ratelimit-Output-Tokens-Remaining", "7800", "Anthropic-Ratelimit-Output-Tokens-Reset", "2025-01-15T10:00:02Z",
			"Anthropic-Ratelimit-Tokens-Remaining", "0", "Anthropic-Ratelimit-Tokens-Reset", "2025-01-15T10:00:24Z"),
		body:  `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (5f2c3e9a-0b1d-4c5e-8f7a-2b3c4d5e6f70) of 30,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 24 * time.Second,
	},
	{
		name:   "anthropic 529 overloaded_error",
		status: 529, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoLsP1wq8Jx5Yc2nR4T"}`,
		class: ClassServiceUnavailable, scope: ScopeKeyModel, failover: true, reason: "Overloaded",
	},
	{
		name:   "anthropic 500 api_error",
		status: 500, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_011CSHoMf4Zt7Qa9Lk3vB2Xy"}`,
		class: ClassInternal, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "anthropic 400 prompt is too long",
		status: 400, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208343 tokens > 200000 maximum"},"request_id":"req_011CSHoNa7Vb3Hc6Te1pK9Mw"}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "anthropic 400 credit balance is too low",
		status: 400, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."},"request_id":"req_011CSHoPz2Kc8Wd4Rf6gT1Ya"}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "anthropic 413 request_too_large",
		status: 413, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes. The maximum request size is 32 MB."}}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "anthropic 404 not_found_error",
		status: 404, header: jsonHdr,
		body:  `{"type":"error","error":{"type":"not_found_error","message":"model: claude-3-5-sonnet-20240621"},"request_id":"req_011CSHoQb5Nd2Xe7Sg8hU3Zb"}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},

	// Google Gemini.
	{
		name:   "gemini 400 API_KEY_INVALID",
		status: 400, header: jsonHdr,
		body: `{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "generativelanguage.googleapis.com"
        }
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key not valid. Please pass a valid API key."
      }
    ]
  }
}
`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
		reason: "API key not valid. Please pass a valid API key.",
	},
	{
		name:   "gemini 400 API key expired",
		status: 400, header: jsonHdr,
		body: `{
  "error": {
    "code": 400,
    "message": "API key expired. Please renew the API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "generativelanguage.googleapis.com"
        }
      },
      {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key expired. Please renew the API key."
      }
    ]
  }
}
`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
	},
	{
		name:   "gemini 403 key reported as leaked",
		status: 403, header: jsonHdr,
		body: `{
  "error": {
    "code": 403,
    "message": "Your API key was reported as leaked. Please use another API key.",
    "status": "PERMISSION_DENIED"
  }
}
`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
	},
	{
		name:   "gemini 403 PERMISSION_DENIED service disabled",
		status: 403, header: jsonHdr,
		body: `{
  "error": {
    "code": 403,
    "message": "Generative Language API has not been used in project 123456789012 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123456789012 then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.",
    "status": "PERMISSION_DENIED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "SERVICE_DISABLED",
        "domain": "googleapis.com",
        "metadata": {
          "consumer": "projects/123456789012",
          "service": "generativelanguage.googleapis.com"
        }
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [
          {
            "description": "Google developers console API activation",
            "url": "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123456789012"
          }
        ]
      }
    ]
  }
}
`,
		class: ClassPermissionDenied, scope: ScopeKey, failover: true,
	},
	{
		name:   "gemini 403 billing required",
		status: 403, header: jsonHdr,
		body: `{
  "error": {
    "code": 403,
    "message": "This API method requires billing to be enabled. Please enable billing on project #123456789012 by visiting https://console.developers.google.com/billing/enable?project=123456789012 then retry. If you enabled billing for this project recently, wait a few minutes for the action to propagate to our systems and retry.",
    "status": "PERMISSION_DENIED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "BILLING_DISABLED",
        "domain": "googleapis.com",
        "metadata": {
          "consumer": "projects/123456789012",
          "service": "generativelanguage.googleapis.com"
        }
      }
    ]
  }
}
`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		// The message says "exceeded your current quota" and "billing",
		// yet the quota id is per minute: a rate limit, with RetryInfo.
		name:   "gemini 429 RESOURCE_EXHAUSTED per minute with RetryInfo",
		status: 429, header: jsonHdr,
		body: `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.0-flash\nPlease retry in 38.919839906s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": {
              "location": "global",
              "model": "gemini-2.0-flash"
            },
            "quotaValue": "10"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [
          {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "38s"
      }
    ]
  }
}
`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 38 * time.Second,
	},
	{
		// The free tier's requests per day for one model: a quota until
		// midnight Pacific (08:00 UTC in January), not the 51 s RetryInfo
		// Google also attaches; counted per model, so only this model on
		// the key cools down.
		name:   "gemini 429 RESOURCE_EXHAUSTED daily free-tier quota",
		status: 429, header: jsonHdr,
		body: `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 250, model: gemini-2.5-flash\nPlease retry in 51.104927813s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "quotaDimensions": {
              "location": "global",
              "model": "gemini-2.5-flash"
            },
            "quotaValue": "250"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [
          {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "51s"
      }
    ]
  }
}
`,
		class: ClassInsufficientQuota, scope: ScopeKeyModel, failover: true, retryAfter: 22 * time.Hour,
	},
	{
		name:   "gemini 429 RESOURCE_EXHAUSTED without details",
		status: 429, header: jsonHdr,
		body: `{
  "error": {
    "code": 429,
    "message": "Resource has been exhausted (e.g. check quota).",
    "status": "RESOURCE_EXHAUSTED"
  }
}
`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		// The older wording says "Quota exceeded", per minute, in words.
		name:   "gemini 429 'Quota exceeded for quota metric … per minute'",
		status: 429, header: jsonHdr,
		body: `{
  "error": {
    "code": 429,
    "message": "Quota exceeded for quota metric 'Generate Content API requests per minute' and limit 'GenerateContent request limit per minute for a region' of service 'generativelanguage.googleapis.com' for consumer 'project_number:123456789012'.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "googleapis.com",
        "metadata": {
          "quota_limit_value": "60",
          "consumer": "projects/123456789012",
          "quota_limit": "GenerateContentRequestsPerMinutePerProjectPerRegion",
          "quota_metric": "generativelanguage.googleapis.com/generate_content_requests",
          "service": "generativelanguage.googleapis.com",
          "quota_location": "us-east1"
        }
      }
    ]
  }
}
`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "gemini 400 FAILED_PRECONDITION user location",
		status: 400, header: jsonHdr,
		body: `{
  "error": {
    "code": 400,
    "message": "User location is not supported for the API use.",
    "status": "FAILED_PRECONDITION"
  }
}
`,
		class: ClassRegion, scope: ScopeNone, failover: false,
	},
	{
		name:   "gemini 500 INTERNAL",
		status: 500, header: jsonHdr,
		body: `{
  "error": {
    "code": 500,
    "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    "status": "INTERNAL"
  }
}
`,
		class: ClassInternal, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "gemini 503 UNAVAILABLE model overloaded",
		status: 503, header: jsonHdr,
		body: `{
  "error": {
    "code": 503,
    "message": "The model is overloaded. Please try again later.",
    "status": "UNAVAILABLE"
  }
}
`,
		class: ClassServiceUnavailable, scope: ScopeKeyModel, failover: true,
	},
	{
		// Gemini's OpenAI-compatible endpoint wraps the error in an array.
		name:   "gemini openai-compatible 400 array body",
		status: 400, header: jsonHdr,
		body: `[{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "generativelanguage.googleapis.com"
        }
      }
    ]
  }
}
]`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
		reason: "API key not valid. Please pass a valid API key.",
	},
	{
		// A relay that put Gemini's whole body in its own message.
		name:   "relay 400 wrapping a Gemini error in its message",
		status: 400, header: jsonHdr,
		body:  `{"error":{"message":"{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"API key not valid. Please pass a valid API key.\",\n    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\",\n        \"reason\": \"API_KEY_INVALID\",\n        \"domain\": \"googleapis.com\",\n        \"metadata\": {\n          \"service\": \"generativelanguage.googleapis.com\"\n        }\n      }\n    ]\n  }\n}\n","code":400,"status":"Bad Request"}}`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
		reason: "API key not valid. Please pass a valid API key.",
	},

	// DeepSeek. The 401 and 402 bodies are as captured; 429/500/503 carry
	// the messages of DeepSeek's error-code table in the same envelope.
	{
		name:   "deepseek 401 Authentication Fails",
		status: 401, header: jsonHdr,
		body:  `{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}`,
		class: ClassAuthentication, scope: ScopeKey, failover: true,
	},
	{
		name:   "deepseek 402 Insufficient Balance",
		status: 402, header: jsonHdr,
		body:  `{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true, reason: "Insufficient Balance",
	},
	{
		name:   "deepseek 429 Rate Limit Reached",
		status: 429, header: jsonHdr,
		body:  `{"error":{"message":"Rate Limit Reached","type":"rate_limit_reached_error","param":null,"code":"invalid_request_error"}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "deepseek 500 Server Error",
		status: 500, header: jsonHdr,
		body:  `{"error":{"message":"Server Error","type":"server_error","param":null,"code":"invalid_request_error"}}`,
		class: ClassInternal, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "deepseek 503 Server Overloaded",
		status: 503, header: jsonHdr,
		body:  `{"error":{"message":"Server overloaded, please try again later.","type":"server_error","param":null,"code":"invalid_request_error"}}`,
		class: ClassServiceUnavailable, scope: ScopeKeyModel, failover: true,
	},

	// SiliconFlow.
	{
		name:   "siliconflow 401 bare JSON string",
		status: 401, header: jsonHdr,
		body:  `"Invalid token"`,
		class: ClassAuthentication, scope: ScopeKey, failover: true, reason: "Invalid token",
	},
	{
		name:   "siliconflow 403 account balance insufficient (30001)",
		status: 403, header: jsonHdr,
		body:  `{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
		reason: "Sorry, your account balance is insufficient",
	},
	{
		name:   "siliconflow 403 paid balance insufficient",
		status: 403, header: jsonHdr,
		body:  `{"code":30011,"message":"The selected model requires paid balance. Your paid balance is insufficient. Please top up and try again.","data":null}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "siliconflow 429 TPM limit reached",
		status: 429, header: jsonHdr,
		body:  `{"message":"Request was rejected due to rate limiting. Details: TPM limit reached.","data":null}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "siliconflow 400 model does not exist",
		status: 400, header: hdr("Content-Type", "application/json; charset=utf-8"),
		body:  `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},

	// Qwen on Alibaba Cloud DashScope: native API, then OpenAI-compatible mode.
	{
		name:   "dashscope 401 InvalidApiKey",
		status: 401, header: jsonHdr,
		body:  `{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"}`,
		class: ClassAuthentication, scope: ScopeKey, failover: true, reason: "Invalid API-key provided.",
	},
	{
		name:   "dashscope 400 Arrearage",
		status: 400, header: jsonHdr,
		body:  `{"code":"Arrearage","message":"Access denied, please make sure your account is in good standing.","request_id":"c7a4e2b1-5d3f-9e8a-b6c2-1f0d4e7a9b3c"}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "dashscope 429 Throttling.RateQuota",
		status: 429, header: jsonHdr,
		body:  `{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later.","request_id":"8e2d6a1c-4b7f-9a3e-b5c8-2d1f0e6a7b4c"}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		// "Allocated quota exceeded" is DashScope's per-minute token limit.
		name:   "dashscope 429 Throttling.AllocationQuota (TPM)",
		status: 429, header: jsonHdr,
		body:  `{"code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit.","request_id":"3b9f1e7d-2c6a-4d8b-a1e5-7f0c3b9d2e6a"}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "dashscope 429 free allocated quota exceeded",
		status: 429, header: jsonHdr,
		body:  `{"code":"Throttling.AllocationQuota","message":"Free allocated quota exceeded.","request_id":"5d1a8c3e-7b2f-4e9d-b6a1-0c8e3d5f7a2b"}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "dashscope 403 AllocationQuota.FreeTierOnly",
		status: 403, header: jsonHdr,
		body:  `{"code":"AllocationQuota.FreeTierOnly","message":"The free tier of the model has been exhausted. If you wish to continue access the model on a paid basis, please disable the \"use free tier only\" mode in the management console.","request_id":"9c4e2a7b-1d5f-4b3e-8a6c-2e0d7f1b9c5a"}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "dashscope 400 DataInspectionFailed",
		status: 400, header: jsonHdr,
		body:  `{"code":"DataInspectionFailed","message":"Input data may contain inappropriate content.","request_id":"6a3d9e1b-8c2f-4a7e-b5d1-3f9c0e2a8b6d"}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "dashscope compatible-mode 400 data_inspection_failed",
		status: 400, header: jsonHdr,
		body:  `{"error":{"code":"data_inspection_failed","param":null,"message":"Input text data may contain inappropriate content.","type":"data_inspection_failed"},"id":"chatcmpl-dedcead3-ce18-9982-84f1-408beb1b1b12","request_id":"dedcead3-ce18-9982-84f1-408beb1b1b12"}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},
	{
		name:   "dashscope compatible-mode 401 invalid_api_key",
		status: 401, header: jsonHdr,
		body:  `{"error":{"message":"Incorrect API key provided. ","type":"invalid_request_error","param":null,"code":"invalid_api_key"},"request_id":"2f8b4d6a-0e3c-9b7f-a1d5-6c2e8f0a4b3d"}`,
		class: ClassAuthentication, scope: ScopeKey, failover: true, reason: "Incorrect API key provided.",
	},

	// Azure OpenAI.
	{
		// retry-after-ms is the precise value; Retry-After rounds it up.
		name:   "azure 429 with retry-after-ms",
		status: 429,
		header: hdr("Content-Type", "application/json", "Retry-After", "6", "Retry-After-Ms", "5424",
			"X-Ratelimit-Remaining-Requests", "59", "X-Ratelimit-Remaining-Tokens", "0"),
		body:  `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 5424 * time.Millisecond,
	},
	{
		name:   "azure 429 through a relay: 'Please retry after 6 seconds'",
		status: 429, header: jsonHdr,
		body:  `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true, retryAfter: 6 * time.Second,
	},
	{
		name:   "azure 400 content_filter ResponsibleAIPolicyViolation",
		status: 400, header: jsonHdr,
		body:  `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":true,"detected":true},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}}}`,
		class: ClassClient, scope: ScopeNone, failover: false,
	},

	// What sits in between: proxies, load balancers, relays.
	{
		name:   "nginx 502 HTML page",
		status: 502, header: hdr("Content-Type", "text/html"),
		body:  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
		class: ClassInternal, scope: ScopeKeyModel, failover: true, reason: "502 Bad Gateway",
	},
	{
		name:   "cloudflare 524 timeout page",
		status: 524, header: hdr("Content-Type", "text/html; charset=UTF-8"),
		body:  "<!DOCTYPE html>\n<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n<head>\n<title>api.example.com | 524: A timeout occurred</title>\n<meta charset=\"UTF-8\" />\n</head>\n<body><div id=\"cf-wrapper\">The origin web server timed out responding to this request.</div></body>\n</html>\n",
		class: ClassInternal, scope: ScopeKeyModel, failover: true, reason: "api.example.com | 524: A timeout occurred",
	},
	{
		name:   "503 with an empty body and Retry-After",
		status: 503, header: hdr("Retry-After", "120", "Content-Length", "0"),
		body:  "",
		class: ClassServiceUnavailable, scope: ScopeKeyModel, failover: true, retryAfter: 2 * time.Minute,
		reason: "Service Unavailable",
	},
	{
		name:   "408 request timeout",
		status: 408, header: hdr("Content-Type", "text/plain"),
		body:  "stream timeout\n",
		class: ClassNetwork, scope: ScopeNone, failover: true, reason: "stream timeout",
	},
	{
		name:   "unlisted 418",
		status: 418, header: hdr("Content-Type", "text/plain"),
		body:  "I'm a teapot",
		class: ClassUnknown, scope: ScopeKey, failover: true, reason: "I'm a teapot",
	},
	{
		name:   "unlisted 409 JSON",
		status: 409, header: jsonHdr,
		body:  `{"error":{"message":"Another request for this key is still being processed.","type":"conflict_error","param":null,"code":null}}`,
		class: ClassUnknown, scope: ScopeKey, failover: true,
	},
	{
		name:   "200 with an OpenAI error object (relay)",
		status: 200, header: jsonHdr,
		body:  `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
		class: ClassInsufficientQuota, scope: ScopeKey, failover: true,
	},
	{
		name:   "200 with a Gemini error object (relay)",
		status: 200, header: jsonHdr,
		body:  `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`,
		class: ClassRateLimit, scope: ScopeKeyModel, failover: true,
	},
	{
		name:   "200 with an error object naming no status",
		status: 200, header: jsonHdr,
		body:  `{"error":{"message":"upstream request failed","type":"new_api_error"}}`,
		class: ClassInternal, scope: ScopeKeyModel, failover: true, reason: "upstream request failed",
	},
	{
		name:   "200 that is not an error object",
		status: 200, header: hdr("Content-Type", "text/html; charset=utf-8"),
		body:  "<html><head><title>Welcome</title></head><body>This is not an API response.</body></html>\n",
		class: ClassInternal, scope: ScopeKeyModel, failover: true, reason: "malformed response",
	},
}

func TestClassify(t *testing.T) {
	if len(classifyCases) < 35 {
		t.Fatalf("only %d cases", len(classifyCases))
	}
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.status, tc.header, []byte(tc.body), now)
			t.Logf("%+v", got)
			if got.Class != tc.class || got.Scope != tc.scope || got.Failover != tc.failover || got.RetryAfter != tc.retryAfter {
				t.Errorf("Classify = {%s scope=%d failover=%t retryAfter=%v}, want {%s scope=%d failover=%t retryAfter=%v}",
					got.Class, got.Scope, got.Failover, got.RetryAfter, tc.class, tc.scope, tc.failover, tc.retryAfter)
			}
			if got.Reason == "" || len(got.Reason) > maxReason || strings.ContainsAny(got.Reason, "\r\n") {
				t.Errorf("Reason %q: want one line of 1..%d bytes", got.Reason, maxReason)
			}
			if tc.reason != "" && got.Reason != tc.reason {
				t.Errorf("Reason = %q, want %q", got.Reason, tc.reason)
			}
		})
	}
}

func TestClassifyRetryAfterHTTPDate(t *testing.T) {
	rateLimited := []byte(`{"error":{"message":"Too many requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"date in 90 s", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"seconds", "7", 7 * time.Second},
		{"absurdly far", now.Add(30 * 24 * time.Hour).Format(http.TimeFormat), maxWait},
		{"garbage", "soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Classify(429, hdr("Retry-After", tc.value), rateLimited, now)
			if v.Class != ClassRateLimit || v.RetryAfter != tc.want {
				t.Errorf("Retry-After %q: got %s %v, want %s %v", tc.value, v.Class, v.RetryAfter, ClassRateLimit, tc.want)
			}
		})
	}
}

// Google resets daily quotas at midnight Pacific time, which moves with
// daylight saving time.
func TestClassifyGeminiDailyQuotaResetsAtPacificMidnight(t *testing.T) {
	body := []byte(`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`)
	summer := time.Date(2025, time.July, 15, 10, 0, 0, 0, time.UTC) // midnight PDT is 07:00 UTC
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{now, 22 * time.Hour},
		{summer, 21 * time.Hour},
		{time.Date(2025, time.July, 15, 6, 59, 0, 0, time.UTC), time.Minute},
	} {
		v := Classify(429, jsonHdr, body, tc.now)
		if v.Class != ClassInsufficientQuota || v.Scope != ScopeKeyModel || v.RetryAfter != tc.want {
			t.Errorf("at %v: got %s scope=%d %v, want %s scope=%d %v",
				tc.now, v.Class, v.Scope, v.RetryAfter, ClassInsufficientQuota, ScopeKeyModel, tc.want)
		}
	}
}

// The reason is cut to 256 bytes on a rune boundary and does not share
// memory with the body, which the caller may reuse.
func TestClassifyReasonIsClippedCopy(t *testing.T) {
	msg := strings.Repeat("配额已用完 ", 60) // 16 bytes a repeat, 960 in all
	body := []byte(`{"error":{"message":"` + msg + `","type":"insufficient_quota","code":"insufficient_quota"}}`)
	v := Classify(429, nil, body, now)
	if len(v.Reason) > maxReason || !utf8.ValidString(v.Reason) || !strings.HasPrefix(msg, v.Reason) {
		t.Fatalf("Reason %q (%d bytes): want a valid UTF-8 prefix of at most %d bytes", v.Reason, len(v.Reason), maxReason)
	}
	before := v.Reason
	for i := range body {
		body[i] = 'x'
	}
	if v.Reason != before {
		t.Fatalf("Reason changed with the body: %q", v.Reason)
	}
}

func TestClassScopeAndFailover(t *testing.T) {
	tests := []struct {
		class    Class
		scope    Scope
		failover bool
	}{
		{ClassAuthentication, ScopeKey, true},
		{ClassPermissionDenied, ScopeKey, true},
		{ClassInsufficientQuota, ScopeKey, true},
		{ClassUnknown, ScopeKey, true},
		{ClassRateLimit, ScopeKeyModel, true},
		{ClassServiceUnavailable, ScopeKeyModel, true},
		{ClassInternal, ScopeKeyModel, true},
		{ClassNetwork, ScopeNone, true},
		{ClassClient, ScopeNone, false},
		{ClassRegion, ScopeNone, false},
		{ClassCanceled, ScopeNone, false},
	}
	for _, tc := range tests {
		if got := tc.class.Scope(); got != tc.scope {
			t.Errorf("%s.Scope() = %d, want %d", tc.class, got, tc.scope)
		}
		if got := tc.class.failover(); got != tc.failover {
			t.Errorf("%s failover = %t, want %t", tc.class, got, tc.failover)
		}
	}
}

// closedAddr returns an address on 127.0.0.1 that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// post sends a request the way the relay does and returns its error.
func post(ctx context.Context, client *http.Client, rawURL string, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(`{"model":"gpt-4o-mini"}`))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		return errors.New("request unexpectedly succeeded")
	}
	return err
}

func TestClassifyErr(t *testing.T) {
	ctx := t.Context()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)

	// Real errors, produced against local servers.
	_, dialErr := net.Dial("tcp", closedAddr(t))
	var opErr *net.OpError
	if !errors.As(dialErr, &opErr) || !errors.Is(dialErr, syscall.ECONNREFUSED) {
		t.Fatalf("dialing a closed port: %v, want a *net.OpError for ECONNREFUSED", dialErr)
	}
	refusedHTTP := post(ctx, client, "http://"+closedAddr(t)+"/v1/chat/completions", nil)

	// hang never answers; it returns when the client goes or the test ends.
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice a client hang-up
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) })
	deadlineCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	deadline := post(deadlineCtx, client, hang.URL, nil)
	if !errors.Is(deadline, context.DeadlineExceeded) {
		t.Fatalf("deadline error %v does not wrap context.DeadlineExceeded", deadline)
	}
	hungUp, hangUp := context.WithCancel(ctx)
	hangUp()
	canceled := post(hungUp, client, hang.URL, nil)
	if !errors.Is(canceled, context.Canceled) {
		t.Fatalf("canceled error %v does not wrap context.Canceled", canceled)
	}

	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsServer.Close)
	untrusted := post(ctx, client, tlsServer.URL, nil)
	var certErr *tls.CertificateVerificationError
	if !errors.As(untrusted, &certErr) {
		t.Fatalf("TLS to an untrusted server: %v, want a *tls.CertificateVerificationError", untrusted)
	}
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	tlsToPlain := post(ctx, client, strings.Replace(plain.URL, "http://", "https://", 1), nil)

	eofAddr := closeAfterRequest(t)
	eof := post(ctx, client, "http://"+eofAddr+"/v1/chat/completions", nil)
	if !errors.Is(eof, io.EOF) {
		t.Fatalf("server closing the connection: %v, want io.EOF", eof)
	}

	badKey := post(ctx, client, plain.URL, http.Header{"Authorization": {"Bearer sk-proj-abc123\n"}})

	// Errors that cannot be produced reliably on a test host, built as the
	// standard library builds them.
	dnsErr := &url.Error{Op: "Post", URL: "https://api.example.invalid/v1/chat/completions",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.example.invalid", IsNotFound: true}}}
	reset := &url.Error{Op: "Post", URL: "https://api.openai.com/v1/chat/completions",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	unexpectedEOF := &url.Error{Op: "Post", URL: "https://api.openai.com/v1/chat/completions", Err: io.ErrUnexpectedEOF}

	tests := []struct {
		name       string
		err        error
		callerGone bool
		class      Class
		failover   bool
	}{
		{"connection refused (*net.OpError)", dialErr, false, ClassNetwork, true},
		{"connection refused through http.Client", refusedHTTP, false, ClassNetwork, true},
		{"upstream deadline exceeded", deadline, false, ClassNetwork, true},
		{"deadline, but the caller is gone", deadline, true, ClassCanceled, false},
		{"caller hung up", canceled, true, ClassCanceled, false},
		{"canceled while the caller is still there", canceled, false, ClassNetwork, true},
		{"bare context.Canceled, caller gone", context.Canceled, true, ClassCanceled, false},
		{"x509 unknown authority", untrusted, false, ClassNetwork, true},
		{"https to a plain HTTP server", tlsToPlain, false, ClassNetwork, true},
		{"server closed the connection (EOF)", eof, false, ClassNetwork, true},
		{"DNS no such host", dnsErr, false, ClassNetwork, true},
		{"connection reset by peer", reset, false, ClassNetwork, true},
		{"unexpected EOF", unexpectedEOF, false, ClassNetwork, true},
		{"key with a newline rejected by net/http", badKey, false, ClassAuthentication, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error to classify")
			}
			v := ClassifyErr(tc.err, tc.callerGone)
			if v.Class != tc.class || v.Failover != tc.failover || v.Scope != tc.class.Scope() || v.RetryAfter != 0 {
				t.Errorf("ClassifyErr(%v, %t) = %+v, want class %s failover %t scope %d",
					tc.err, tc.callerGone, v, tc.class, tc.failover, tc.class.Scope())
			}
			if v.Reason == "" || len(v.Reason) > maxReason {
				t.Errorf("Reason %q: want 1..%d bytes", v.Reason, maxReason)
			}
			if strings.Contains(v.Reason, "sk-proj-abc123") || strings.Contains(v.Reason, "://") {
				t.Errorf("Reason %q contains the key or a URL", v.Reason)
			}
		})
	}
}

// closeAfterRequest starts a server that reads a request and hangs up
// without answering, as a crashing upstream does.
func closeAfterRequest(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(conn)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

func BenchmarkClassify(b *testing.B) {
	cases := map[string]string{
		"openai 429 RPM with x-ratelimit headers":                 "",
		"gemini 429 RESOURCE_EXHAUSTED per minute with RetryInfo": "",
		"anthropic 529 overloaded_error":                          "",
		"dashscope 400 Arrearage":                                 "",
		"nginx 502 HTML page":                                     "",
	}
	found := 0
	for _, tc := range classifyCases {
		if _, ok := cases[tc.name]; !ok {
			continue
		}
		found++
		body := []byte(tc.body)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Classify(tc.status, tc.header, body, now)
			}
		})
	}
	if found != len(cases) {
		b.Fatalf("benchmarked %d of %d cases: a case was renamed", found, len(cases))
	}
}
