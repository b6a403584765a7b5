package anthropic

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/provider"
)

func TestBaseAndCheckRequest(t *testing.T) {
	for in, want := range map[string]string{
		"": DefaultBaseURL, "https://api.anthropic.com": DefaultBaseURL, "https://api.anthropic.com/v1/": DefaultBaseURL,
		"http://relay.local/anthropic": "http://relay.local/anthropic",
	} {
		if got := Base(in); got != want {
			t.Errorf("Base(%q) = %q, want %q", in, got, want)
		}
	}
	req, err := Adapter{}.CheckRequest(context.Background(), provider.Target{Model: &keygate.Model{BaseURL: "https://api.anthropic.com/v1"}, Secret: "sk-ant-x"})
	if err != nil || req.URL.String() != "https://api.anthropic.com/v1/models" || req.Header.Get("X-Api-Key") != "sk-ant-x" ||
		req.Header.Get("Anthropic-Version") != Version || req.Header.Get("Authorization") != "" {
		t.Errorf("check request %v %v %v", req.URL, req.Header, err)
	}
}

// Anthropic's rate-limit headers give reset times, not durations.
func TestMetaRateLimits(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{}
	h.Set("Request-Id", "req_011")
	h.Set("Anthropic-Ratelimit-Requests-Limit", "50")
	h.Set("Anthropic-Ratelimit-Requests-Remaining", "49")
	h.Set("Anthropic-Ratelimit-Requests-Reset", now.Add(20*time.Second).Format(time.RFC3339))
	h.Set("Anthropic-Ratelimit-Tokens-Limit", "40000")
	h.Set("Anthropic-Ratelimit-Tokens-Remaining", "39000")
	m := Adapter{}.Meta(h, now)
	if m.RequestID != "req_011" || m.Limits.LimitRequests != 50 || m.Limits.RemainingRequests != 49 ||
		m.Limits.ResetRequests != 20*time.Second || m.Limits.RemainingTokens != 39000 {
		t.Errorf("meta %+v", m)
	}
	if m := (Adapter{}).Meta(http.Header{}, now); m.Limits.Known() {
		t.Errorf("no headers, limits %+v", m.Limits)
	}
}
