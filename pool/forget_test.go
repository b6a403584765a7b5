package pool

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// A key deleted from every model leaves memory at once, secret included,
// and a key dropped by one model stops listing it.
func TestLoadForgetsWhatIsGone(t *testing.T) {
	const shared, gone = "sk-shared-0123456789", "sk-gone-0123456789"
	p := testPool(t,
		keygate.Model{ModelID: "a", APIKeys: []keygate.KeySpec{{Key: shared}, {Key: gone}}},
		keygate.Model{ModelID: "b", APIKeys: []keygate.KeySpec{{Key: shared}}})
	old := p.Key(p.KeyID(gone))
	if err := p.Load([]keygate.Model{{ModelID: "a", APIKeys: []keygate.KeySpec{{Key: shared}}}}); err != nil {
		t.Fatal(err)
	}
	if p.Key(p.KeyID(gone)) != nil || old.Secret() != "" {
		t.Fatalf("a deleted key must leave memory with its secret: %q", old.Secret())
	}
	p.mu.Lock()
	_, kept := p.keys[p.KeyID(gone)]
	slots := len(p.slots)
	p.mu.Unlock()
	if kept || slots != 1 {
		t.Fatalf("the pool still holds the deleted key (%v) or dropped slots (%d, want 1)", kept, slots)
	}
	if m := p.Key(p.KeyID(shared)).View(time.Unix(1_700_000_000, 0)).Models; len(m) != 1 || m[0] != "a" {
		t.Fatalf("the shared key must list only the model that still uses it: %v", m)
	}
}
