package app_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/store"
)

// A key disabled by its failures is in the store at once, not at the next
// periodic flush: a SIGKILL right after must not bring it back. The clock
// never moves, so the periodic flush cannot have run.
func TestDisableWrittenThroughAtOnce(t *testing.T) {
	g, dbURL := frozenGateway(t, "sk-revoked-key-000002", mockprovider.InvalidKey)

	disabled := func() bool {
		for _, k := range keysByMasked(t, g.url) {
			if k["masked"] == keygate.Mask("sk-revoked-key-000002") {
				return k["status"] == "disabled"
			}
		}
		return false
	}
	for i := 0; i < 5 && !disabled(); i++ {
		if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	}
	if !disabled() {
		t.Fatal("the revoked key was never disabled")
	}

	waitStored(t, dbURL, "the disable", func(s keygate.KeyState) bool {
		return s.Disabled && s.Class == "authentication_error"
	})
}

// frozenAt is the time of frozenGateway's clock, which never moves.
var frozenAt = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// frozenGateway starts a gateway on a clock that never moves, with one
// model whose first key (tried first: single mode) fails as behavior and
// whose second is good. It returns the gateway and its database URL.
func frozenGateway(t *testing.T, bad string, behavior mockprovider.Behavior) (*gateway, string) {
	t.Helper()
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-good-key-000000001": mockprovider.OK, bad: behavior,
	}}))
	t.Cleanup(provider.Close)
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: provider.URL + "/v1",
		KeyUsageMode: keygate.ModeSingle,
		APIKeys:      []keygate.KeySpec{{Key: bad}, {Key: "sk-good-key-000000001"}}}}
	return startWith(t, cfg, clockwork.NewFakeClockAt(frozenAt)), cfg.DatabaseURL
}

// waitStored reads the store directly until a key state matches. The
// write leaves the request path through a channel, so the writer goroutine
// gets a moment (real time; the gateway's clock stays put).
func waitStored(t *testing.T, dbURL, what string, match func(keygate.KeyState) bool) {
	t.Helper()
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		states, err := db.LoadKeyStates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if match(s) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not in the store before the periodic flush: %+v", what, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A long cooldown (an exhausted quota: an hour) is written through at once
// as well; the clock never moves, so no periodic flush ran.
func TestLongCooldownWrittenThroughAtOnce(t *testing.T) {
	g, dbURL := frozenGateway(t, "sk-broke-key-00000003", mockprovider.QuotaExhausted)
	if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	waitStored(t, dbURL, "the hour-long cooldown", func(s keygate.KeyState) bool {
		return s.Class == "insufficient_quota" && s.Cooling && !s.BlockedUntil.Before(frozenAt.Add(time.Hour))
	})
}
