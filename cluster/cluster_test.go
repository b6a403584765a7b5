package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/secret"
)

// redisURL is the server scripts/redis-test.sh starts.
func redisURL(t testing.TB) string {
	u := os.Getenv("KEYGATE_TEST_REDIS_URL")
	if u == "" {
		t.Skip("KEYGATE_TEST_REDIS_URL not set (source scripts/redis-test.sh)")
	}
	return u
}

// replicas starts n clusters on one Redis under a prefix of their own, as
// n keygate processes would, and waits until each is in sync.
func replicas(t *testing.T, n int, attach func(i int, c *Cluster)) []*Cluster {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "kgtest:" + hex.EncodeToString(b[:]) + ":"
	ring, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var out []*Cluster
	for i := 0; i < n; i++ {
		c, err := New(Options{URL: redisURL(t), Keyring: ring, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if attach != nil {
			attach(i, c)
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(ctx) }()
		out = append(out, c)
	}
	eventually(t, 3*time.Second, func() bool {
		for _, c := range out {
			if !c.Up() || c.Replicas() < int64(n) {
				return false
			}
		}
		return true
	})
	return out
}

func eventually(t *testing.T, within time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestSharedRateNeverExceedsTheLimit drives one RPM limit from three
// replicas at once: together they admit at most the limit, and at least
// the limit minus one per replica (SPEC section 9).
func TestSharedRateNeverExceedsTheLimit(t *testing.T) {
	cs := replicas(t, 3, nil)
	const rpm = 60
	rates := make([]*limit.Rate, len(cs))
	for i, c := range cs {
		rates[i] = limit.NewRate(rpm, 0)
		rates[i].Share(c, "token:test")
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	now := time.Now()
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := rates[i%3].Allow(now, 0); ok {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got > rpm || got < rpm-int64(len(cs)) {
		t.Fatalf("admitted %d of 300 across 3 replicas, want between %d and %d", got, rpm-len(cs), rpm)
	}
}

// TestSharedRateFarFromTheLimitStaysInMemory counts round trips to Redis
// while a limit is far from exhausted: leases, not one per request.
func TestSharedRateFarFromTheLimitStaysInMemory(t *testing.T) {
	cs := replicas(t, 1, nil)
	r := limit.NewRate(1_000_000, 0)
	r.Share(cs[0], "model:far")
	now := time.Now()
	r.Allow(now, 0) // the first lease
	time.Sleep(50 * time.Millisecond)
	before := cs[0].RoundTrips()
	for i := 0; i < 1000; i++ {
		if ok, _ := r.Allow(now, 0); !ok {
			t.Fatal("refused far from the limit")
		}
	}
	// Heartbeats run meanwhile (4 a second); 1,000 requests must not add more.
	if n := cs[0].RoundTrips() - before; n > 3 {
		t.Fatalf("%d Redis round trips for 1,000 requests far from the limit, want ~0", n)
	}
}

// TestSharedBudgetNotOverspent spends one budget from three replicas with
// requests that cost what they reserved.
func TestSharedBudgetNotOverspent(t *testing.T) {
	cs := replicas(t, 3, nil)
	budgets := make([]*limit.Budget, len(cs))
	for i, c := range cs {
		budgets[i] = limit.NewBudget(0.05, limit.Daily)
		budgets[i].Share(c, "token:budget")
	}
	const cost = 0.001
	var spent atomic.Int64
	var wg sync.WaitGroup
	now := time.Now()
	for i := 0; i < 150; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := budgets[i%3]
			if b.Reserve(now, cost) {
				spent.Add(1)
				b.Settle(now, cost, cost)
			}
		}()
	}
	wg.Wait()
	if got := float64(spent.Load()) * cost; got > 0.05+1e-9 || got < 0.05-3*cost-1e-9 {
		t.Fatalf("spent $%.3f of a $0.05 budget across 3 replicas", got)
	}
}

func testPool(t *testing.T) *pool.Pool {
	p := pool.New(keygate.NewKeyHasher([]byte("test")), keygate.DefaultKeyPolicy())
	if err := p.Load([]keygate.Model{{ModelID: "m", BaseURL: "http://upstream/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-shared-key-0001"}, {Key: "sk-shared-key-0002"}}}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeyStateChangeReachesEveryReplica disables a key on one replica (a
// 401) and finds it disabled on the others within a second; an operator's
// switch travels the same way.
func TestKeyStateChangeReachesEveryReplica(t *testing.T) {
	pools := []*pool.Pool{testPool(t), testPool(t), testPool(t)}
	cs := replicas(t, 3, func(i int, c *Cluster) {
		c.Attach(pools[i], Handlers{})
		pools[i].Watch(c.Changed)
	})
	_ = cs
	now := time.Now()
	a, ok := pools[0].Group("m").Pick(nil, now.UnixNano())
	if !ok {
		t.Fatal("no key")
	}
	id := a.Key().ID
	pools[0].Failed(&a, now, health.Verdict{Class: health.ClassAuthentication, Scope: health.ScopeKey, Reason: "401"})
	took := eventually(t, time.Second, func() bool {
		return pools[1].Key(id).View(time.Now()).Status == pool.StatusDisabled &&
			pools[2].Key(id).View(time.Now()).Status == pool.StatusDisabled
	})
	t.Logf("disable in force on the other replicas after %s", took)

	other := pools[0].Key(pools[0].Keys()[0].ID)
	if other.ID == id {
		other = pools[0].Keys()[1]
	}
	pools[2].Key(other.ID).SetDisabled(true)
	eventually(t, time.Second, func() bool { return pools[0].Key(other.ID).OperatorDisabled() })
	pools[2].Key(other.ID).SetDisabled(false)
	eventually(t, time.Second, func() bool { return !pools[0].Key(other.ID).OperatorDisabled() })
}

// TestFetchedKeySharedByReplicas refreshes one key service's key from
// three replicas at once: the service is called once, all get its key.
func TestFetchedKeySharedByReplicas(t *testing.T) {
	var calls atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte(`{"result":"sk-fetched-` + string(rune('a'+n)) + `-000000"}`))
	}))
	defer svc.Close()
	cs := replicas(t, 3, nil)
	var srcs []*keysource.Source
	for _, c := range cs {
		s, err := keysource.New(keygate.KeySource{URL: svc.URL, SceneCode: "S1", ExpireSeconds: 600},
			keysource.Options{Share: c.Sharer("kid")})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	var wg sync.WaitGroup
	got := make([]keysource.Lease, len(srcs))
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			go s.Run(ctx)
			l, err := s.Wait(ctx)
			if err != nil {
				t.Error(err)
			}
			got[i] = l
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("key service called %d times by 3 replicas, want 1", calls.Load())
	}
	for i := range got {
		if got[i].Secret != got[0].Secret || got[i].Secret == "" {
			t.Fatalf("replicas hold different keys: %q vs %q", keygate.Mask(got[i].Secret), keygate.Mask(got[0].Secret))
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		addrs   int
		master  string
		cluster bool
	}{
		{"redis://127.0.0.1:6379/0", 1, "", false},
		{"rediss://user:pw@cache:6380", 1, "", false},
		{"redis://s1:26379?master_name=mymaster&addr=s2:26379", 2, "mymaster", false},
		{"redis+cluster://n1:7000?addr=n2:7000&addr=n3:7000", 3, "", true},
		{"redis://n1:7000?addr=n2:7000", 2, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Addrs) != tt.addrs || o.MasterName != tt.master || o.IsClusterMode != tt.cluster {
				t.Fatalf("got addrs %v master %q cluster %v", o.Addrs, o.MasterName, o.IsClusterMode)
			}
		})
	}
	if _, err := ParseURL("redis://:secret-pw@host:notaport"); err == nil || contains(err.Error(), "secret-pw") {
		t.Fatalf("bad URL: err %v must exist and hide the password", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestOneReplicaProbesACooledKey: when a cooldown ends, the replica that
// started it probes; the others hold back while its probe lease runs.
func TestOneReplicaProbesACooledKey(t *testing.T) {
	pools := []*pool.Pool{testPool(t), testPool(t)}
	replicas(t, 2, func(i int, c *Cluster) {
		c.Attach(pools[i], Handlers{})
		pools[i].Watch(c.Changed)
	})
	now := time.Now()
	g0 := pools[0].Group("m")
	a, _ := g0.Pick(nil, now.UnixNano())
	id := a.Key().ID
	pools[0].Failed(&a, now, health.Verdict{Class: health.ClassRateLimit, Scope: health.ScopeKeyModel,
		RetryAfter: 200 * time.Millisecond, Reason: "429"})
	other := func(p *pool.Pool) []*pool.Key {
		var ks []*pool.Key
		for _, k := range p.Keys() {
			if k.ID != id {
				ks = append(ks, k)
			}
		}
		return ks
	}
	eventually(t, time.Second, func() bool { return pools[1].Key(id).View(time.Now()).Status == pool.StatusCooldown })
	time.Sleep(300 * time.Millisecond) // the cooldown is over
	at := time.Now().UnixNano()
	if b, ok := pools[1].Group("m").Pick(other(pools[1]), at); ok {
		t.Fatalf("replica B probed %s while A holds the probe lease", b.Key().ID)
	}
	if a, ok := g0.Pick(other(pools[0]), at); !ok || a.Key().ID != id {
		t.Fatal("replica A, which cooled the key, does not probe it")
	}
}

// TestOneReplicaChecksAKey: a key's background check is claimed by one
// replica; the others skip it while the claim lasts.
func TestOneReplicaChecksAKey(t *testing.T) {
	cs := replicas(t, 3, nil)
	won := 0
	for _, c := range cs {
		if c.Claim(context.Background(), "k_check") {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d replicas claimed the same key's check, want 1", won)
	}
}
