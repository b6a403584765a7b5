package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/server"
)

type discard struct{}

func (discard) Record(keygate.UsageRecord) error { return nil }

// BenchmarkRelay measures the whole request path (auth, body checks, key
// pick, upstream call, response copy) against a local mock provider. It
// touches no database: the recorder here discards, as the real one only
// queues in memory.
func BenchmarkRelay(b *testing.B) {
	keys := map[string]mockprovider.Behavior{}
	var specs []keygate.KeySpec
	for _, k := range []string{"sk-bench-key-aaaaaaaa1", "sk-bench-key-bbbbbbbb2", "sk-bench-key-cccccccc3"} {
		keys[k] = mockprovider.OK
		specs = append(specs, keygate.KeySpec{Key: k})
	}
	upstream := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: keys, NoRecord: true}))
	defer upstream.Close()
	p := pool.New(keygate.NewKeyHasher([]byte("bench")), keygate.DefaultKeyPolicy())
	if err := p.Load([]keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", APIKeys: specs}}); err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := clockwork.NewRealClock()
	auth := server.NewAuth("", clock.Now)
	auth.SetTokens([]keygate.TokenSpec{{Name: "bench", Token: "kg-bench-token"}})
	h := server.New(server.Deps{Logger: logger, Clock: clock, Pool: p, Auth: auth, MaxBodyBytes: 32 << 20,
		Relay: &relay.Relay{Pool: p, Client: &http.Client{Transport: relay.NewTransport(time.Minute)},
			Recorder: discard{}, Logger: logger, Clock: clock, MaxResponseBytes: 64 << 20}})
	gw := httptest.NewServer(h)
	defer gw.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
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
	})
}
