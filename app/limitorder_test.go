package app_test

import (
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// TestRefusedRequestChargesNothing: a token over its own RPM, or out of
// budget, must not use up the model's RPM that every other token shares.
func TestRefusedRequestChargesNothing(t *testing.T) {
	e := newLimitsEnv(t, []keygate.TokenSpec{
		{Name: "greedy", Token: "kg-greedy-token-secret", RPM: 1},
		{Name: "broke", Token: "kg-broke-token-secret", Budget: &keygate.Budget{Amount: 0.000001, Period: "daily"}},
	}, func(m *keygate.Model) { m.RPM = 2 })
	if resp, _ := e.chat(t, "kg-greedy-token-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	for range 10 {
		if resp, v := e.chat(t, "kg-greedy-token-secret", chat); resp.StatusCode != 429 || errCode(v) != "rate_limit_exceeded" {
			t.Fatalf("over the token's RPM: %d %v", resp.StatusCode, v)
		}
		if resp, v := e.chat(t, "kg-broke-token-secret", chat); resp.StatusCode != 429 || errCode(v) != "budget_exceeded" {
			t.Fatalf("over the budget: %d %v", resp.StatusCode, v)
		}
	}
	// One of the model's two requests a minute is still free.
	if resp, v := e.chat(t, appToken, chat); resp.StatusCode != 200 {
		t.Fatalf("another token after refused requests of others: %d %v", resp.StatusCode, v)
	}
}

// TestFallbackModelKeepsItsOwnLimits: traffic that falls back to another
// model is held to that model's RPM.
func TestFallbackModelKeepsItsOwnLimits(t *testing.T) {
	p := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-dead-key-000000001": mockprovider.ServerError, "sk-good-key-000000001": mockprovider.OK}})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{
		{ModelID: "gpt-4o-mini", BaseURL: srv.URL + "/v1", Fallbacks: []string{"gpt-4o"},
			APIKeys: []keygate.KeySpec{{Key: "sk-dead-key-000000001"}}},
		{ModelID: "gpt-4o", BaseURL: srv.URL + "/v1", RPM: 1, APIKeys: []keygate.KeySpec{{Key: "sk-good-key-000000001"}}},
	}
	g := start(t, cfg)
	if resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat); resp.StatusCode != 200 {
		t.Fatalf("served by the fallback: %d %s", resp.StatusCode, b)
	}
	served := len(p.Requests())
	resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode == 200 {
		t.Fatalf("the fallback's RPM of 1 was exceeded: %d %s", resp.StatusCode, b)
	}
	for _, r := range p.Requests()[served:] {
		if r.Key == "sk-good-key-000000001" {
			t.Fatal("the fallback model was called past its RPM")
		}
	}
}
