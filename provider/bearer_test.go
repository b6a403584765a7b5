package provider_test

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/provider"
)

// An access token replaces whatever API-key header or query parameter an
// adapter set: Azure's api-key, Anthropic's x-api-key, Gemini's key.
func TestUseBearer(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://example.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&key=old", nil)
	req.Header.Set("Api-Key", "old")
	req.Header.Set("X-Api-Key", "old")
	req.Header.Set("X-Goog-Api-Key", "old")
	provider.UseBearer(req, "eyJ0eXAi.access.token")
	if got := req.Header.Get("Authorization"); got != "Bearer eyJ0eXAi.access.token" {
		t.Errorf("Authorization = %q", got)
	}
	for _, h := range []string{"Api-Key", "X-Api-Key", "X-Goog-Api-Key"} {
		if req.Header.Get(h) != "" {
			t.Errorf("%s still set", h)
		}
	}
	if q := req.URL.Query(); q.Has("key") || q.Get("api-version") != "2024-10-21" {
		t.Errorf("query %q", req.URL.RawQuery)
	}
}
