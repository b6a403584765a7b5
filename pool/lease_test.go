package pool

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
)

// A new fetched credential is a new key: the quota failure of the one
// before does not follow it.
func TestNewLeaseStartsWithCleanHealth(t *testing.T) {
	p := testPool(t, keygate.Model{ModelID: "m", KeySource: &keygate.KeySource{URL: "http://ks/get", SceneCode: "S"}})
	now := time.Unix(1_700_000_000, 0)
	k := p.FetchedKeys()[0]
	k.SetLease("sk-first-0123456789", now.Add(time.Hour))
	s := p.Group("m").Deployments[0].Fetched
	p.Failed(&Attempt{Slot: s}, now, health.Verdict{Class: health.ClassInsufficientQuota, Scope: health.ScopeKey})
	if st := k.View(now).Status; st != StatusCooldown {
		t.Fatalf("after a quota failure: %s", st)
	}
	k.SetLease("sk-first-0123456789", now.Add(2*time.Hour)) // the same credential again
	if st := k.View(now).Status; st != StatusCooldown {
		t.Fatalf("the same credential keeps its health: %s", st)
	}
	k.SetLease("sk-second-0123456789", now.Add(time.Hour))
	if _, ok := p.Group("m").Pick(nil, now.UnixNano()); !ok {
		t.Fatalf("a new credential must serve at once: %+v", k.View(now))
	}
}
