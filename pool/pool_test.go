package pool

import (
	"fmt"
	"sync"
	"testing"

	"github.com/keygate/keygate"
)

func testPool(t testing.TB, models ...keygate.Model) *Pool {
	t.Helper()
	p := New(keygate.NewKeyHasher([]byte("test")), keygate.DefaultKeyPolicy())
	if err := p.Load(models); err != nil {
		t.Fatal(err)
	}
	return p
}

// pick returns the key of the next attempt, or nil.
func pick(g *Group, tried ...*Key) *Key {
	a, ok := g.Pick(tried, 0)
	if !ok {
		return nil
	}
	return a.Key()
}

func model(id, mode string, keys ...string) keygate.Model {
	m := keygate.Model{ModelID: id, BaseURL: "http://upstream/v1", KeyUsageMode: mode}
	for _, k := range keys {
		m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: k})
	}
	return m
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-key-number-one", "sk-key-number-two", "sk-key-number-three"))
	g := p.Group("m")
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 300; j++ {
				k := pick(g)
				mu.Lock()
				counts[k.Masked()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(counts) != 3 {
		t.Fatalf("want 3 keys used, got %v", counts)
	}
	for k, n := range counts {
		if n != 800 {
			t.Errorf("key %s picked %d times, want exactly 800 of 2400", k, n)
		}
	}
}

func TestSingleUsesFirstUsableKey(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeSingle, "sk-primary-key-0001", "sk-standby-key-0002"))
	g := p.Group("m")
	for i := 0; i < 5; i++ {
		if k := pick(g); k.Secret() != "sk-primary-key-0001" {
			t.Fatalf("single mode picked %s, want the first key", k.Masked())
		}
	}
	first := pick(g)
	first.SetDisabled(true)
	if k := pick(g); k.Secret() != "sk-standby-key-0002" {
		t.Fatalf("with the first key disabled, want the standby, got %s", k.Masked())
	}
}

func TestPickSkipsTriedAndDisabledKeys(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-aaaa-1111-aaaa", "sk-bbbb-2222-bbbb", "sk-cccc-3333-cccc"))
	g := p.Group("m")
	var tried []*Key
	for i := 0; i < 3; i++ {
		k := pick(g, tried...)
		if k == nil {
			t.Fatalf("pick %d: no key, want one of the untried", i)
		}
		for _, old := range tried {
			if old == k {
				t.Fatalf("pick %d returned a key already tried", i)
			}
		}
		tried = append(tried, k)
	}
	if k := pick(g, tried...); k != nil {
		t.Fatal("every key tried: want nil")
	}
	for _, k := range p.Keys() {
		k.SetDisabled(true)
	}
	if p.Usable(0) {
		t.Fatal("all keys disabled: pool must not be usable")
	}
}

func TestSameKeyAcrossModelsIsOneKey(t *testing.T) {
	p := testPool(t,
		model("a", keygate.ModeRoundRobin, "sk-shared-key-12345"),
		model("b", keygate.ModeRoundRobin, "sk-shared-key-12345", "sk-own-key-67890"))
	if n := len(p.Keys()); n != 2 {
		t.Fatalf("want 2 distinct keys, got %d", n)
	}
	ka := pick(p.Group("a"))
	if kb := p.Group("b").Deployments[0].Slots[0].Key; ka != kb {
		t.Fatal("the same key string under two models must be the same *Key")
	}
	if ka.ID == "" || ka.ID == ka.Secret() || ka.Masked() != "sk-s…2345" {
		t.Fatalf("id %q / masked %q must not reveal the key", ka.ID, ka.Masked())
	}
}

func TestLoadKeepsKeyStateAndGroupsSameModelID(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeRoundRobin, "sk-keep-me-000001"))
	k := pick(p.Group("m"))
	k.Acquire()()
	second := model("m", keygate.ModeSingle, "sk-other-account-02")
	second.BaseURL = "http://other/v1"
	if err := p.Load([]keygate.Model{model("m", keygate.ModeRoundRobin, "sk-keep-me-000001"), second}); err != nil {
		t.Fatal(err)
	}
	g := p.Group("m")
	if len(g.Deployments) != 2 {
		t.Fatalf("two entries with one model_id: want one group of 2 deployments, got %d", len(g.Deployments))
	}
	if g.Deployments[0].Slots[0].Key != k || k.Requests() != 1 {
		t.Fatal("reloading must keep the existing *Key and its counters")
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		a, _ := g.Pick(nil, 0)
		seen[a.Deployment.Model.BaseURL] = true
	}
	if len(seen) != 2 {
		t.Fatalf("deployments of one group must take turns, saw %v", seen)
	}
}

func TestLoadRejectsUnknownMode(t *testing.T) {
	p := New(keygate.NewKeyHasher(nil), keygate.DefaultKeyPolicy())
	if err := p.Load([]keygate.Model{model("m", "random", "sk-x-000000000000")}); err == nil {
		t.Fatal("want an error for an unknown key_usage_mode")
	}
}

func TestDisabledModelIsNotServed(t *testing.T) {
	m := model("m", keygate.ModeSingle, "sk-a-0000000000000")
	m.Status = keygate.StatusDisabled
	p := testPool(t, m)
	if p.Group("m") != nil {
		t.Fatal("a disabled model must not be routable")
	}
}

// BenchmarkPick measures key selection with 64 goroutines at several pool sizes.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("sk-bench-%08d-key", i)
			}
			p := testPool(b, model("m", keygate.ModeRoundRobin, keys...))
			g := p.Group("m")
			b.SetParallelism(32) // 32 × GOMAXPROCS(2) = 64 goroutines
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok := g.Pick(nil, 1); !ok {
						b.Fatal("no key")
					}
				}
			})
		})
	}
}

func TestLeastUsedPrefersIdleKeys(t *testing.T) {
	p := testPool(t, model("m", keygate.ModeLeastUsed, "sk-busy-key-00000001", "sk-idle-key-00000002"))
	g := p.Group("m")
	var busy *Key
	for _, k := range p.Keys() {
		if k.Secret() == "sk-busy-key-00000001" {
			busy = k
		}
	}
	for i := 0; i < 5; i++ {
		busy.Acquire() // five requests in flight on the busy key
	}
	for i := 0; i < 50; i++ {
		if k := pick(g); k == busy {
			t.Fatal("least_used picked the key with requests in flight over an idle one")
		}
	}
}

func TestWeightedFollowsWeights(t *testing.T) {
	m := keygate.Model{ModelID: "m", BaseURL: "http://upstream/v1", KeyUsageMode: keygate.ModeWeighted,
		APIKeys: []keygate.KeySpec{{Key: "sk-heavy-key-0000001", Weight: 9}, {Key: "sk-light-key-0000002", Weight: 1}}}
	p := testPool(t, m)
	g := p.Group("m")
	heavy := 0
	const n = 20000
	for i := 0; i < n; i++ {
		if pick(g).Secret() == "sk-heavy-key-0000001" {
			heavy++
		}
	}
	if share := float64(heavy) / n; share < 0.87 || share > 0.93 {
		t.Fatalf("weights 9:1 should give the heavy key ~90%% of picks, got %.1f%%", share*100)
	}
}
