package cluster

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/server"
)

type discard struct{}

func (discard) Record(keygate.UsageRecord) error { return nil }

// BenchmarkGateway is the whole request path (auth, body checks, the
// token's RPM/TPM and budget, the model's RPM/TPM, key pick, the upstream
// call to a local mock, the answer) with Redis off and on. With Redis on,
// every limit is shared and far from exhausted: the path must cost about
// the same, and make no round trip to Redis (redis_rt/op, counted by the
// client's hook; the heartbeats of the background are included).
func BenchmarkGateway(b *testing.B) {
	for _, mode := range []string{"redis_off", "redis_on"} {
		b.Run(mode, func(b *testing.B) {
			var c *Cluster
			if mode == "redis_on" {
				c = replicasB(b)
			}
			benchGateway(b, c)
		})
	}
}

// BenchmarkLimits is the limits' share of the request path alone: a
// token's RPM/TPM and budget and a model's RPM/TPM, checked and settled.
func BenchmarkLimits(b *testing.B) {
	for _, mode := range []string{"redis_off", "redis_on"} {
		b.Run(mode, func(b *testing.B) {
			tok, mod := limit.NewRate(1<<30, 1<<40), limit.NewRate(1<<30, 1<<40)
			bud := limit.NewBudget(1e9, limit.Total)
			var c *Cluster
			if mode == "redis_on" {
				c = replicasB(b)
				tok.Share(c, "token:bench")
				mod.Share(c, "model:bench")
				bud.Share(c, "token:bench")
			}
			now := time.Now()
			run := func() {
				mod.Allow(now, 100)
				tok.Allow(now, 100)
				bud.Reserve(now, 0.001)
				mod.Settle(now, 100, 80)
				tok.Settle(now, 100, 80)
				bud.Settle(now, 0.001, 0.0008)
			}
			run()
			time.Sleep(50 * time.Millisecond) // the first leases
			var before int64
			if c != nil {
				before = c.RoundTrips()
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					run()
				}
			})
			if c != nil {
				b.ReportMetric(float64(c.RoundTrips()-before)/float64(b.N), "redis_rt/op")
			}
		})
	}
}

func replicasB(b *testing.B) *Cluster {
	u := redisURL(b)
	c, err := New(Options{URL: u, Prefix: "kgbench:" + time.Now().Format("150405.000000") + ":",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; c.Close() })
	for i := 0; !c.Up(); i++ {
		if i > 300 {
			b.Fatal("redis not up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

func benchGateway(b *testing.B, c *Cluster) {
	keys := map[string]mockprovider.Behavior{}
	var specs []keygate.KeySpec
	for _, k := range []string{"sk-bench-key-aaaaaaaa1", "sk-bench-key-bbbbbbbb2", "sk-bench-key-cccccccc3"} {
		keys[k] = mockprovider.OK
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	upstream := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: keys, NoRecord: true}))
	defer upstream.Close()
	p := pool.New(keygate.NewKeyHasher([]byte("bench")), keygate.DefaultKeyPolicy())
	if err := p.Load([]keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", APIKeys: specs,
		RPM: 1 << 30, TPM: 1 << 30, InputPrice: 0.01, OutputPrice: 0.01}}); err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := clockwork.NewRealClock()
	auth := server.NewAuth("", clock.Now)
	deps := server.Deps{Logger: logger, Clock: clock, Pool: p, Auth: auth, MaxBodyBytes: 32 << 20,
		Relay: &relay.Relay{Pool: p, Client: &http.Client{Transport: relay.NewTransport(time.Minute)},
			Recorder: discard{}, Logger: logger, Clock: clock, MaxResponseBytes: 64 << 20}}
	if c != nil {
		c.Attach(p, Handlers{})
		p.Watch(c.Changed)
		auth.UseShared(c)
		deps.SharedLimits = c
	}
	auth.SetTokens([]keygate.TokenSpec{{Name: "bench", Token: "kg-bench-token", RPM: 1 << 30, TPM: 1 << 30,
		Budget: &keygate.Budget{Amount: 1e9, Period: limit.Total}}})
	gw := httptest.NewServer(server.New(deps))
	defer gw.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`
	send := func() {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer kg-bench-token")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	send()
	time.Sleep(50 * time.Millisecond)
	var before int64
	if c != nil {
		before = c.RoundTrips()
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send()
		}
	})
	if c != nil {
		b.ReportMetric(float64(c.RoundTrips()-before)/float64(b.N), "redis_rt/op")
	}
}
