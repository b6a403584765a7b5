package pool

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/mockprovider"
)

// TestStressMixedFailures runs 64 goroutines through a pool whose keys fail
// in every way at once, each request failing over like the relay does, and
// checks the invariants the product promises: no attempt picks a key that
// was disabled before the pick began, no request tries a key twice, and
// every request succeeds while a healthy key exists.
func TestStressMixedFailures(t *testing.T) {
	behaviors := map[string]mockprovider.Behavior{}
	var keys []string
	add := func(b mockprovider.Behavior, n int) {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("sk-stress-%s-%03d-xxxx", b, i)
			behaviors[k] = b
			keys = append(keys, k)
		}
	}
	add(mockprovider.OK, 2)
	add(mockprovider.InvalidKey, 4)
	add(mockprovider.QuotaExhausted, 3)
	add(mockprovider.RateLimited, 3)
	add(mockprovider.ServerError, 2)
	add(mockprovider.Overloaded, 2)
	pol := keygate.DefaultKeyPolicy()
	pol.MaxRetries = len(keys) // room to walk past every bad key
	p := New(keygate.NewKeyHasher([]byte("stress")), pol)
	if err := p.Load([]keygate.Model{model("m", keygate.ModeRoundRobin, keys...)}); err != nil {
		t.Fatal(err)
	}
	g := p.Group("m")

	// disabledAt[key] is the version of the world in which the key was seen
	// disabled; a pick that started at a later version must not return it.
	var version atomic.Int64
	var mu sync.Mutex
	disabledAt := map[*Key]int64{}

	var clockNS atomic.Int64
	clockNS.Store(t0.UnixNano())
	var failed, violations atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 200; r++ {
				// Time moves on so cooldowns end and probes happen.
				now := time.Unix(0, clockNS.Add(int64(rand.IntN(50))*int64(time.Millisecond)))
				var tried []*Key
				ok := false
				for attempt := 0; attempt <= pol.MaxRetries; attempt++ {
					v0 := version.Load()
					a, picked := g.Pick(tried, now.UnixNano())
					if !picked {
						break
					}
					k := a.Key()
					mu.Lock()
					if at, dis := disabledAt[k]; dis && at <= v0 {
						violations.Add(1)
					}
					mu.Unlock()
					for _, old := range tried {
						if old == k {
							violations.Add(1)
						}
					}
					tried = append(tried, k)
					b := behaviors[k.Secret()]
					if b == mockprovider.OK {
						p.Succeeded(&a, now, time.Millisecond)
						ok = true
						break
					}
					status, header, body := mockprovider.ErrorBody(b)
					v := health.Classify(status, header, body, now)
					p.Failed(&a, now, v)
					if k.View(now).Status == StatusDisabled {
						mu.Lock()
						if _, seen := disabledAt[k]; !seen {
							disabledAt[k] = version.Add(1)
						}
						mu.Unlock()
					}
				}
				if !ok {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := violations.Load(); n != 0 {
		t.Fatalf("%d attempts used a disabled key or a key already tried", n)
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed although two keys were always healthy", n)
	}
	for _, k := range p.Keys() {
		if behaviors[k.Secret()] == mockprovider.InvalidKey && k.View(time.Unix(0, clockNS.Load())).Status != StatusDisabled {
			t.Errorf("invalid key %s is not disabled", k.Masked())
		}
	}
}
