package app_test

import (
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// A deployment's headers: are stored with the model, shown by the admin
// API and sent with every call of it.
func TestDeploymentHeadersReachTheProvider(t *testing.T) {
	p := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-tenant-key-0000001": mockprovider.OK}})
	up := httptest.NewServer(p)
	defer up.Close()
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: up.URL + "/v1", Status: keygate.StatusEnabled,
		APIKeys: []keygate.KeySpec{{Key: "sk-tenant-key-0000001"}}, Headers: map[string]string{"X-Tenant": "bank-a"}}}
	// The pool is loaded from the store, so this is the stored model's header.
	g := start(t, cfg)
	if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if got := last(p).Header.Get("X-Tenant"); got != "bank-a" {
		t.Fatalf("provider got X-Tenant %q", got)
	}
	code, m := jsonCall(t, "GET", g.url+"/api/v1/llm-models", "kg-admin-test-secret", "")
	if h, _ := m["data"].([]any)[0].(map[string]any)["headers"].(map[string]any); code != 200 || h["X-Tenant"] != "bank-a" {
		t.Fatalf("the admin API shows the headers: %d %v", code, m)
	}
}
