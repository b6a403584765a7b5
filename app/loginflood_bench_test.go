package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/secret"
)

// BenchmarkRelayDuringLoginFlood measures relay throughput alone, then
// while sixteen unauthenticated clients loop on wrong passwords for a
// real user (bcrypt at its default cost), and reports both and their
// ratio; the target is a ratio of at least 0.8. Run it once:
//
//	go test ./app/ -run '^$' -bench RelayDuringLoginFlood -benchtime 1x
func BenchmarkRelayDuringLoginFlood(b *testing.B) {
	cost := secret.PasswordCost
	secret.PasswordCost = bcrypt.DefaultCost
	defer func() { secret.PasswordCost = cost }()
	upstream := httptest.NewServer(mockprovider.New(mockprovider.Options{NoRecord: true,
		Keys: map[string]mockprovider.Behavior{"sk-flood-key-0000000001": mockprovider.OK}}))
	defer upstream.Close()
	t := &testing.T{}
	cfg := baseConfig(t, b.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", APIKeys: []keygate.KeySpec{{Key: "sk-flood-key-0000000001"}}}}
	g := start(t, cfg)
	defer g.shutdown(t)
	req, _ := http.NewRequest("POST", g.url+"/api/v1/users", strings.NewReader(`{"username":"root","password":"root-password","role":"admin"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		b.Fatalf("create user: %v %v", resp, err)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	relay := func(d time.Duration) float64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for range 8 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest("POST", g.url+"/v1/chat/completions", strings.NewReader(chat))
					req.Header.Set("Authorization", "Bearer "+appToken)
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / d.Seconds()
	}

	b.ResetTimer()
	for range b.N {
		alone := relay(3 * time.Second)
		stop := make(chan struct{})
		var logins, throttled atomic.Int64
		var flood sync.WaitGroup
		for range 16 {
			flood.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := client.Post(g.url+"/api/v1/auth/login", "application/json",
						strings.NewReader(`{"username":"root","password":"wrong-password"}`))
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					logins.Add(1)
					if resp.StatusCode == 429 {
						throttled.Add(1)
					}
				}
			})
		}
		during := relay(3 * time.Second)
		close(stop)
		flood.Wait()
		b.ReportMetric(alone, "relay_rps_alone")
		b.ReportMetric(during, "relay_rps_flood")
		b.ReportMetric(during/alone, "ratio")
		b.ReportMetric(float64(logins.Load())/3, "logins/s")
		b.ReportMetric(float64(throttled.Load())/float64(max(1, logins.Load())), "throttled_share")
	}
}
