package pool

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pace"
)

func pacedGroup(t *testing.T, specs ...keygate.KeySpec) (*Pool, *Group, time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := New(keygate.NewKeyHasher([]byte("test")), keygate.DefaultKeyPolicy())
	p.SetClock(func() time.Time { return now })
	if err := p.Load([]keygate.Model{{ModelID: "m", BaseURL: "http://x/v1", APIKeys: specs}}); err != nil {
		t.Fatal(err)
	}
	return p, p.Group("m"), now
}

func TestPickSkipsKeysOutOfRoomAndPrefersTheRoomiest(t *testing.T) {
	p, g, now := pacedGroup(t, keygate.KeySpec{Key: "sk-small-000000000001", RPM: 2}, keygate.KeySpec{Key: "sk-large-000000000002", RPM: 100})
	small := p.Key(p.KeyID("sk-small-000000000001"))
	n := now.UnixNano()
	for i := range 20 {
		a, ok := g.Pick(nil, n)
		if !ok {
			t.Fatalf("pick %d: none", i)
		}
		a.Slot.Room().Reserve(now, pace.Cost{})
	}
	// The large key always has the larger share of room left but once.
	used := 0
	for _, s := range small.Slots() {
		used = int(2 - *s.Room().Forecast(now).RemainingRequests)
	}
	if used > 1 {
		t.Errorf("the key with an rpm of 2 took %d of 20 requests; the roomier key should have", used)
	}
	// Out of room, a key is not picked however the selector turns.
	for range 2 - used {
		for _, s := range small.Slots() {
			s.Room().Reserve(now, pace.Cost{})
		}
	}
	for range 10 {
		if a, ok := g.Pick(nil, n); ok && a.Key() == small {
			t.Fatal("a key without room was picked")
		}
	}
	// With every key out of room, PickWaiting names the soonest and how long.
	_, g2, now2 := pacedGroup(t, keygate.KeySpec{Key: "sk-a-00000000000000001", RPM: 1}, keygate.KeySpec{Key: "sk-b-00000000000000002", RPM: 6})
	for range 7 {
		if a, ok := g2.Pick(nil, now2.UnixNano()); ok {
			a.Slot.Room().Reserve(now2, pace.Cost{})
		}
	}
	if _, ok := g2.Pick(nil, now2.UnixNano()); ok {
		t.Fatal("picked with every key out of room")
	}
	a, wait, ok := g2.PickWaiting(nil, now2, pace.Cost{})
	if !ok || a.Key().ID != p.KeyID("sk-b-00000000000000002") || wait < 9*time.Second || wait > 11*time.Second {
		t.Errorf("PickWaiting: ok %v, wait %s; want the rpm-6 key, back in 10 s", ok, wait)
	}
}

func TestPacingOffIgnoresRoom(t *testing.T) {
	p, g, now := pacedGroup(t, keygate.KeySpec{Key: "sk-only-00000000000001", RPM: 1})
	p.SetPacing(false)
	for range 3 {
		a, ok := g.Pick(nil, now.UnixNano())
		if !ok {
			t.Fatal("pacing off, a key over its rpm is still picked")
		}
		a.Slot.Room().Reserve(now, pace.Cost{})
	}
}
