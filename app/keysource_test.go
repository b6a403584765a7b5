package app_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

type keyServiceEnv struct {
	ks       *mockprovider.KeyService
	provider *mockprovider.Provider
	ksURL    string
	base     string
}

func newKeyServiceEnv(t *testing.T, backups map[string]mockprovider.Behavior) *keyServiceEnv {
	t.Helper()
	ks := mockprovider.NewKeyService(clockwork.NewRealClock(), 10*time.Minute)
	ksSrv := httptest.NewServer(ks)
	t.Cleanup(ksSrv.Close)
	p := mockprovider.New(mockprovider.Options{Keys: backups, Validate: ks.Validator()})
	pSrv := httptest.NewServer(p)
	t.Cleanup(pSrv.Close)
	return &keyServiceEnv{ks: ks, provider: p, ksURL: ksSrv.URL + "/getApikey", base: pSrv.URL + "/v1"}
}

func (e *keyServiceEnv) model(backup ...string) keygate.Model {
	m := keygate.Model{ModelID: "gpt-4o-mini", BaseURL: e.base, KeyUsageMode: keygate.ModeSingle,
		KeySource: &keygate.KeySource{URL: e.ksURL, SceneCode: "P2025122", Method: "GET", ResultField: "result",
			ExpireSeconds: 600, RefreshBeforeSeconds: 120, TimeoutSeconds: 5, Retries: 3, RetryIntervalMS: 10}}
	for _, b := range backup {
		m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: b})
	}
	return m
}

func TestFetchedKeyServesAndIsReplacedWhenRevoked(t *testing.T) {
	e := newKeyServiceEnv(t, nil)
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{e.model()} // no backup: the first request waits for the fetch
	g := start(t, cfg)

	resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
	if resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	first := e.provider.Requests()[0].Key
	if !e.ks.Valid(first) {
		t.Fatalf("the provider must get a key issued by the key service, got %s", keygate.Mask(first))
	}

	// The platform revokes the key before its expiry: keygate fetches a new
	// one at once and the request still succeeds.
	e.ks.Revoke(first)
	resp, b = call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "2" {
		t.Fatalf("after revocation: %d attempts=%s %s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), b)
	}
	if n := e.ks.Calls(); n != 2 {
		t.Fatalf("one refetch after the revocation: key service called %d times, want 2", n)
	}
	keys := keysByMasked(t, g.url)
	if len(keys) != 1 {
		t.Fatalf("want the one fetched key, got %v", keys)
	}
	for id, k := range keys {
		if k["status"] == "disabled" || k["source"] == nil {
			t.Fatalf("a rejected fetched key must be replaced, not disabled, and show its source: %v", k)
		}
		_, b := call(t, "GET", g.url+"/metrics", "kg-admin-test-secret", "")
		want := `keygate_key_service_fetches_total{key_id="` + k["id"].(string) + `",result="ok"} 2`
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics must count the two fetches of %s: want %s", id, want)
		}
	}
}

func TestKeyServiceDownServesWithBackup(t *testing.T) {
	e := newKeyServiceEnv(t, map[string]mockprovider.Behavior{"sk-backup-key-0000001": mockprovider.OK})
	e.ks.SetDown(true)
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{e.model("sk-backup-key-0000001")}
	g := start(t, cfg)
	for i := 0; i < 3; i++ {
		resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
		if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Key") != keyID(t, g.url, "kg-admin-test-secret", "sk-backup-key-0000001") {
			t.Fatalf("with the key service down the backup key serves: %d %s %s", resp.StatusCode, resp.Header.Get("X-Keygate-Key"), b)
		}
	}
	// The service comes back: keygate picks the fetched key up by itself.
	e.ks.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, _ := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
		if resp.Header.Get("X-Keygate-Key") != keyID(t, g.url, "kg-admin-test-secret", "sk-backup-key-0000001") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the fetched key never replaced the backup after the service came back")
}
