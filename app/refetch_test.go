package app_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// A provider that rejects every fetched key must not make one request
// refetch without end: the rejected key is replaced and the request retried
// once; the second rejection is an ordinary failure, and the backup serves.
func TestRejectedFetchedKeyIsReplacedOnce(t *testing.T) {
	e := newKeyServiceEnv(t, map[string]mockprovider.Behavior{"sk-backup-key-0000001": mockprovider.OK})
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{e.model("sk-backup-key-0000001")}
	g := start(t, cfg)
	backup := keyID(t, g.url, "kg-admin-test-secret", "sk-backup-key-0000001")
	// Until the first fetch lands the backup serves; wait for the fetched key.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
		if resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("X-Keygate-Key") != backup {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fetched key never served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls := e.ks.Calls()
	e.provider.Script(mockprovider.FaultRequest401, mockprovider.FaultRequest401)
	resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "3" ||
		resp.Header.Get("X-Keygate-Key") != backup {
		t.Fatalf("fetched key, its one replacement, then the backup: %d attempts=%s %s", resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), b)
	}
	if n := e.ks.Calls() - calls; n != 1 {
		t.Fatalf("one refetch per request, got %d key-service calls", n)
	}
}
