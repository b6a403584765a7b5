package app_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// TestUserBudgetSurvivesRestart: a user spends their budget through their
// login token, keygate restarts on the same database, and the next request
// is still refused budget_exceeded: the budget is re-seeded from the stored
// usage for its period, as a gateway token's is. A day later a daily budget
// is fresh again; a monthly or total one is not.
func TestUserBudgetSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		period      string
		nextDayOpen bool
	}{{"daily", true}, {"monthly", false}, {"total", false}} {
		t.Run(tc.period, func(t *testing.T) {
			srv := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{"sk-good-key-000000001": mockprovider.OK}}))
			defer srv.Close()
			cfg := baseConfig(t, t.TempDir())
			cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: srv.URL + "/v1", InputPrice: 1000, OutputPrice: 1000,
				APIKeys: []keygate.KeySpec{{Key: "sk-good-key-000000001"}}}}
			clock := clockwork.NewFakeClockAt(time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC))
			g := startWith(t, cfg, clock)
			if resp, b := call(t, "POST", g.url+"/api/v1/users", adminToken,
				`{"username":"ana","password":"correct horse","role":"user","budget":{"amount":0.1,"period":"`+tc.period+`"}}`); resp.StatusCode != 201 {
				t.Fatalf("create user: %d %s", resp.StatusCode, b)
			}
			login := func(url string) string { return loginToken(t, url, "ana", "correct horse") }
			chatAs := func(url, tok string) (int, any) {
				t.Helper()
				resp, b := call(t, "POST", url+"/v1/chat/completions", tok,
					`{"model":"gpt-4o-mini","max_tokens":12,"messages":[{"role":"user","content":"hello"}]}`)
				var v map[string]any
				json.Unmarshal(b, &v)
				return resp.StatusCode, errCode(v)
			}
			tok := login(g.url)
			served := 0
			for ; served < 50; served++ {
				code, ec := chatAs(g.url, tok)
				if code == 429 && ec == "budget_exceeded" {
					break
				}
				if code != 200 {
					t.Fatalf("request %d: %d %v", served, code, ec)
				}
			}
			if served == 0 || served == 50 {
				t.Fatalf("%d requests served on a $0.10 budget", served)
			}
			g.shutdown(t) // as SIGTERM: every record is written

			g2 := startWith(t, cfg, clock)
			if code, ec := chatAs(g2.url, login(g2.url)); code != 429 || ec != "budget_exceeded" {
				t.Fatalf("after a restart the spent %s budget must still refuse: %d %v", tc.period, code, ec)
			}
			clock.Advance(24 * time.Hour)
			code, ec := chatAs(g2.url, login(g2.url))
			if open := code == 200; open != tc.nextDayOpen {
				t.Fatalf("the next day a %s budget answers %d %v", tc.period, code, ec)
			}
		})
	}
}
