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
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-good-key-000000001": mockprovider.OK, "sk-revoked-key-000002": mockprovider.InvalidKey,
	}}))
	defer provider.Close()
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: provider.URL + "/v1",
		KeyUsageMode: keygate.ModeSingle,
		APIKeys:      []keygate.KeySpec{{Key: "sk-revoked-key-000002"}, {Key: "sk-good-key-000000001"}}}}
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	g := startWith(t, cfg, clock)

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

	db, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The write leaves the request path through a channel: give the
	// writer goroutine a moment (real time; the gateway's clock stays put).
	deadline := time.Now().Add(5 * time.Second)
	for {
		states, err := db.LoadKeyStates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if s.Disabled && s.Class == "authentication_error" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the disable is not in the store before the periodic flush: %+v", states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A long cooldown (an exhausted quota: an hour) is written through at once
// as well; the clock never moves, so no periodic flush ran.
func TestLongCooldownWrittenThroughAtOnce(t *testing.T) {
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-good-key-000000001": mockprovider.OK, "sk-broke-key-00000003": mockprovider.QuotaExhausted,
	}}))
	defer provider.Close()
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: provider.URL + "/v1",
		KeyUsageMode: keygate.ModeSingle,
		APIKeys:      []keygate.KeySpec{{Key: "sk-broke-key-00000003"}, {Key: "sk-good-key-000000001"}}}}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g := startWith(t, cfg, clockwork.NewFakeClockAt(now))
	if resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	db, err := store.Open(context.Background(), cfg.DatabaseURL)
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
			if s.Class == "insufficient_quota" && s.Cooling && !s.BlockedUntil.Before(now.Add(time.Hour)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hour-long cooldown is not in the store before the periodic flush: %+v", states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
