package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/cluster"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/server"
	"go.opentelemetry.io/otel/trace"
)

type discard struct{}

func (discard) Record(keygate.UsageRecord) error { return nil }

// BenchmarkRelay measures the whole request path (auth, body checks, key
// pick, upstream call, response copy) against a local mock provider. It
// touches no database: the recorder here discards, as the real one only
// queues in memory.
func BenchmarkRelay(b *testing.B) { benchRelay(b, false, nil, nil) }

// BenchmarkRelayLimits is the same path with a token's RPM, TPM and budget
// and a model's RPM and TPM, all far from exhausted: counted in memory
// (redis_off), and shared through Redis (redis_on, when
// KEYGATE_TEST_REDIS_URL is set: see scripts/redis-test.sh). With Redis on
// the path must cost the same and make no round trip to Redis: redis_rt/op
// counts them (the background's heartbeats, four a second, included).
func BenchmarkRelayLimits(b *testing.B) {
	b.Run("redis_off", func(b *testing.B) { benchRelay(b, true, nil, nil) })
	b.Run("redis_on", func(b *testing.B) {
		u := os.Getenv("KEYGATE_TEST_REDIS_URL")
		if u == "" {
			b.Skip("KEYGATE_TEST_REDIS_URL not set")
		}
		c, err := cluster.New(cluster.Options{URL: u, Prefix: "kgbench:" + time.Now().Format("150405.000000") + ":",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done; c.Close() }()
		for i := 0; !c.Up(); i++ {
			if i > 300 {
				b.Fatal("redis not up")
			}
			time.Sleep(10 * time.Millisecond)
		}
		benchRelay(b, true, c, nil)
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchRelay(b *testing.B, limits bool, c *cluster.Cluster, tr trace.Tracer) {
	keys := map[string]mockprovider.Behavior{}
	var specs []keygate.KeySpec
	for _, k := range []string{"sk-bench-key-aaaaaaaa1", "sk-bench-key-bbbbbbbb2", "sk-bench-key-cccccccc3"} {
		keys[k] = mockprovider.OK
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	upstream := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: keys, NoRecord: true}))
	defer upstream.Close()
	p := pool.New(keygate.NewKeyHasher([]byte("bench")), keygate.DefaultKeyPolicy())
	m := keygate.Model{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", APIKeys: specs}
	token := keygate.TokenSpec{Name: "bench", Token: "kg-bench-token"}
	if limits {
		m.RPM, m.TPM, m.InputPrice, m.OutputPrice = 1<<30, 1<<30, 0.01, 0.01
		token.RPM, token.TPM, token.Budget = 1<<30, 1<<30, &keygate.Budget{Amount: 1e9, Period: limit.Total}
	}
	if err := p.Load([]keygate.Model{m}); err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := clockwork.NewRealClock()
	auth := server.NewAuth("", clock.Now)
	deps := server.Deps{Logger: logger, Clock: clock, Pool: p, Auth: auth, MaxBodyBytes: 32 << 20,
		Relay: &relay.Relay{Pool: p, Client: &http.Client{Transport: upstreamTransport(time.Minute)},
			Recorder: discard{}, Logger: logger, Clock: clock, MaxResponseBytes: 64 << 20, Tracer: tr}, Tracer: tr}
	if c != nil {
		c.Attach(p, cluster.Handlers{})
		p.Watch(c.Changed)
		auth.UseShared(c)
		deps.SharedLimits = c
	}
	auth.SetTokens([]keygate.TokenSpec{token})
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
	send() // the first leases
	time.Sleep(50 * time.Millisecond)
	var before int64
	if c != nil {
		before = c.RoundTrips()
	}
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send()
		}
	})
	b.StopTimer()
	// CPU of the whole process (client, gateway and mock provider alike),
	// steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu_ns/op")
	if c != nil {
		b.ReportMetric(float64(c.RoundTrips()-before)/float64(b.N), "redis_rt/op")
	}
}
