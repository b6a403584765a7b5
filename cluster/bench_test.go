package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keygate/keygate/limit"
)

// BenchmarkLimits is the limits' share of the request path alone: a
// token's RPM/TPM and budget and a model's RPM/TPM, checked and settled,
// counted in memory and shared through Redis (see also
// server.BenchmarkRelayLimits for the whole path). redis_rt/op counts the
// round trips to Redis per request.
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
