package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/mockprovider"
)

// TestSeveralReplicas is SPEC section 9 end to end: a real PostgreSQL, a
// real redis-server (killed and restarted mid-run) and three keygate
// processes built from this package, behind no load balancer: the test
// talks to each replica directly. Each promise of the section is a subtest.
func TestSeveralReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three replicas")
	}
	pgAdmin := os.Getenv("KEYGATE_TEST_POSTGRES_URL")
	if pgAdmin == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_URL not set (source scripts/pg-test.sh)")
	}
	redisBin := os.Getenv("KEYGATE_TEST_REDIS_SERVER")
	if redisBin == "" {
		var err error
		if redisBin, err = exec.LookPath("redis-server"); err != nil {
			t.Skip("redis-server not installed (source scripts/redis-test.sh)")
		}
	}
	c := newReplicaCluster(t, pgAdmin, redisBin)
	A, B, C := c.r[0], c.r[1], c.r[2]

	t.Run("1_key_rejected_on_A_unused_by_B_and_C_after_1s", func(t *testing.T) {
		const bad = "sk-e2e-bad-0000001"
		for i := 0; c.mock.Count(bad) == 0; i++ {
			if i > 10 {
				t.Fatal("replica A never tried the bad key")
			}
			if st, _ := A.chat(t, "kg-e2e-app", "m401"); st != 200 {
				t.Fatalf("A answered %d; the good key should have served", st)
			}
		}
		seen := c.mock.Count(bad)
		time.Sleep(time.Second)
		for i := 0; i < 10; i++ {
			for _, r := range []*replica{B, C} {
				if st, _ := r.chat(t, "kg-e2e-app", "m401"); st != 200 {
					t.Fatalf("%s answered %d", r.name, st)
				}
			}
		}
		if n := c.mock.Count(bad) - seen; n != 0 {
			t.Fatalf("B and C sent the key A found revoked %d more times", n)
		}
	})

	t.Run("2_admin_disable_on_A_skipped_by_B_and_C_within_1s", func(t *testing.T) {
		const k1 = "sk-e2e-dis-0000001"
		id := A.keyID(t, k1)
		A.admin(t, "PATCH", "/api/v1/keys/"+id, `{"status":"disabled"}`, nil)
		start := time.Now()
		for _, r := range []*replica{B, C} {
			waitFor(t, time.Second-time.Since(start), r.name+" sees the key disabled", func() bool { return r.keyStatus(t, id) == "disabled" })
		}
		t.Logf("disabled everywhere %s after A", time.Since(start).Round(time.Millisecond))
		before := c.mock.Count(k1)
		for i := 0; i < 6; i++ {
			B.chat(t, "kg-e2e-app", "mdis")
			C.chat(t, "kg-e2e-app", "mdis")
		}
		if c.mock.Count(k1) != before {
			t.Fatal("a replica used the key disabled through A")
		}
		A.admin(t, "PATCH", "/api/v1/keys/"+id, `{"status":"enabled"}`, nil)
		start = time.Now()
		for _, r := range []*replica{B, C} {
			waitFor(t, time.Second-time.Since(start), r.name+" sees the key enabled", func() bool { return r.keyStatus(t, id) != "disabled" })
			before := c.mock.Count(k1)
			for i := 0; i < 6 && c.mock.Count(k1) == before; i++ {
				r.chat(t, "kg-e2e-app", "mdis")
			}
			if c.mock.Count(k1) == before {
				t.Fatalf("%s does not use the re-enabled key", r.name)
			}
		}
	})

	t.Run("3_token_rpm_60_over_three_replicas", func(t *testing.T) {
		var ok, refused atomic.Int64
		parallel(300, 30, func(i int) {
			switch st, _ := c.r[i%3].chat(t, "kg-e2e-rl", "mrl"); st {
			case 200:
				ok.Add(1)
			case 429:
				refused.Add(1)
			default:
				t.Errorf("status %d", st)
			}
		})
		t.Logf("admitted %d, refused %d", ok.Load(), refused.Load())
		if ok.Load() > 63 || ok.Load() < 57 {
			t.Fatalf("admitted %d of 300 with RPM 60 over 3 replicas; want 57..63", ok.Load())
		}
	})

	t.Run("4_budget_overspent_by_at_most_one_request_per_replica", func(t *testing.T) {
		var ok atomic.Int64
		parallel(60, 12, func(i int) {
			if st, _ := c.r[i%3].chat(t, "kg-e2e-bud", "mbud"); st == 200 {
				ok.Add(1)
			}
		})
		var got usageRow
		waitFor(t, 5*time.Second, "usage of the budget token recorded", func() bool {
			got = A.usage(t, "token", "bud")
			return got.Requests == ok.Load()
		})
		each := got.Cost / float64(got.Requests)
		t.Logf("admitted %d requests costing $%.5f in all ($%.5f each) against $0.05", got.Requests, got.Cost, each)
		if got.Cost > 0.05+3*each+1e-9 {
			t.Fatalf("spent $%.5f of a $0.05 budget: more than one request ($%.5f) per replica over", got.Cost, each)
		}
		// Requests reserve an estimate ($0.01 here: the prompt's bytes/3 and
		// max_tokens) and settle the real cost, so requests are refused
		// while less than an estimate is left: the bound is on overspending.
	})

	t.Run("5_key_service_called_once_per_refresh", func(t *testing.T) {
		for _, r := range c.r {
			waitFor(t, 5*time.Second, r.name+" serves the fetched key", func() bool {
				st, _ := r.chat(t, "kg-e2e-app", "mks")
				return st == 200
			})
		}
		// One fetch at start and one per refresh since, not one per replica.
		first := c.keys.Calls()
		if most := int(time.Since(c.started)/(2*time.Second)) + 2; first > most {
			t.Errorf("the key service was called %d times in %s by three replicas, want at most %d", first, time.Since(c.started).Round(time.Second), most)
		}
		// The key lives 4 s and is refreshed 2 s before it expires: two
		// refreshes in 4.5 s, whatever the number of replicas.
		time.Sleep(4500 * time.Millisecond)
		for _, r := range c.r {
			if st, _ := r.chat(t, "kg-e2e-app", "mks"); st != 200 {
				t.Fatalf("%s answered %d with the refreshed key", r.name, st)
			}
		}
		// 4.5 s hold two or three refresh times (every 2 s); one replica
		// fetching for each would make six to nine calls.
		if n := c.keys.Calls() - first; n < 1 || n > 4 {
			t.Fatalf("%d key service calls in 4.5 s of 2 s refreshes by 3 replicas, want 2 or 3", n)
		}
	})

	t.Run("6_model_created_on_A_answers_on_B_and_C_within_1s", func(t *testing.T) {
		A.admin(t, "POST", "/api/v1/llm-models", fmt.Sprintf(`{"model_id":"mnew","provider":"openai","base_url":"%s/v1","api_keys":[{"key":"sk-e2e-new-0000001"}]}`, c.provider.URL), nil)
		start := time.Now()
		for _, r := range []*replica{B, C} {
			waitFor(t, time.Second-time.Since(start), r.name+" serves the new model", func() bool {
				st, _ := r.chat(t, "kg-e2e-app", "mnew")
				return st == 200
			})
		}
		t.Logf("served everywhere %s after A", time.Since(start).Round(time.Millisecond))
	})

	t.Run("7_key_totals_and_usage_are_the_sum_of_all_replicas", func(t *testing.T) {
		const key = "sk-e2e-tot-0000001"
		id := A.keyID(t, key)
		sent := 0
		for i, n := range []int{10, 7, 5} {
			for j := 0; j < n; j++ {
				if st, _ := c.r[i].chat(t, "kg-e2e-app", "mtot"); st != 200 {
					t.Fatalf("status %d", st)
				}
				sent++
			}
		}
		if c.mock.Count(key) != sent {
			t.Fatalf("provider saw %d, sent %d", c.mock.Count(key), sent)
		}
		for _, r := range c.r {
			waitFor(t, 5*time.Second, r.name+" shows the key's whole totals", func() bool {
				var v struct {
					TotalRequests int64 `json:"total_requests"`
					PromptTokens  int64 `json:"prompt_tokens"`
				}
				r.admin(t, "GET", "/api/v1/keys/"+id, "", &v)
				u := r.usage(t, "key", id)
				return v.TotalRequests == int64(sent) && u.Requests == int64(sent) && v.PromptTokens == u.PromptTokens
			})
		}
	})

	t.Run("8_redis_outage_serves_on_and_converges_after", func(t *testing.T) {
		const k1 = "sk-e2e-out-0000001"
		id := A.keyID(t, k1)
		var failed, served atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // steady traffic through all three, from before the kill to after the return
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if st, _ := c.r[i%3].chat(t, "kg-e2e-app", "mout"); st != 200 {
					failed.Add(1)
				} else {
					served.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		time.Sleep(200 * time.Millisecond)
		c.stopRedis(t)
		for _, r := range c.r {
			waitFor(t, 3*time.Second, r.name+" /readyz names redis", func() bool {
				st, body := r.get(t, "/readyz")
				return st == 503 && strings.Contains(strings.ToLower(body), "redis")
			})
		}
		A.admin(t, "PATCH", "/api/v1/keys/"+id, `{"status":"disabled"}`, nil) // during the outage
		time.Sleep(500 * time.Millisecond)
		c.startRedis(t)
		start := time.Now()
		for _, r := range c.r {
			waitFor(t, 5*time.Second-time.Since(start), r.name+" in sync again", func() bool {
				st, _ := r.get(t, "/readyz")
				return st == 200 && r.keyStatus(t, id) == "disabled"
			})
		}
		t.Logf("converged %s after Redis returned", time.Since(start).Round(time.Millisecond))
		before := c.mock.Count(k1)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := c.mock.Count(k1) - before; n != 0 {
			t.Errorf("the key disabled during the outage was used %d times after convergence", n)
		}
		if failed.Load() != 0 {
			t.Fatalf("%d of %d client requests failed across the outage", failed.Load(), failed.Load()+served.Load())
		}
		t.Logf("%d requests served across the outage, none failed", served.Load())
	})
}

type replicaCluster struct {
	t         *testing.T
	mock      *mockprovider.Provider
	keys      *mockprovider.KeyService
	provider  *httptest.Server
	redisBin  string
	redisPort int
	redisDir  string
	redis     *exec.Cmd
	r         [3]*replica
	started   time.Time // when the first replica started
}

type replica struct {
	name string
	base string
	cmd  *exec.Cmd
	logs *lockedBuffer
}

func newReplicaCluster(t *testing.T, pgAdmin, redisBin string) *replicaCluster {
	dir := t.TempDir()
	bin := filepath.Join(dir, "keygate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	c := &replicaCluster{t: t, redisBin: redisBin, redisPort: freePort(t), redisDir: t.TempDir()}
	c.keys = mockprovider.NewKeyService(clockwork.NewRealClock(), time.Minute)
	c.mock = mockprovider.New(mockprovider.Options{
		Keys:     map[string]mockprovider.Behavior{"sk-e2e-bad-0000001": mockprovider.InvalidKey},
		Default:  mockprovider.OK,
		Validate: c.keys.Validator(),
		Models:   []string{"m401", "mdis", "mrl", "mbud", "mks", "mnew", "mtot", "mout"},
		Latency:  5 * time.Millisecond,
	})
	mux := http.NewServeMux()
	mux.Handle("/getApikey", c.keys)
	mux.Handle("/", c.mock)
	c.provider = httptest.NewServer(mux)
	t.Cleanup(c.provider.Close)
	c.startRedis(t)
	t.Cleanup(func() { c.stopRedis(t) })

	db := newDatabase(t, pgAdmin)
	p := c.provider.URL
	cfg := fmt.Sprintf(`database_url: %s
redis_url: redis://127.0.0.1:%d/0
admin_token: kg-e2e-admin
tokens:
  - {name: app, token: kg-e2e-app}
  - {name: rl, token: kg-e2e-rl, rpm: 60}
  - {name: bud, token: kg-e2e-bud, budget: {amount: 0.05, period: daily}}
models:
  - {model_id: m401, base_url: %[3]s/v1, key_usage_mode: round_robin, api_keys: [sk-e2e-bad-0000001, sk-e2e-good-000001]}
  - {model_id: mdis, base_url: %[3]s/v1, key_usage_mode: round_robin, api_keys: [sk-e2e-dis-0000001, sk-e2e-dis-0000002]}
  - {model_id: mrl, base_url: %[3]s/v1, api_keys: [sk-e2e-rl-00000001]}
  - {model_id: mbud, base_url: %[3]s/v1, input_price: 200, output_price: 200, api_keys: [sk-e2e-bud-0000001]}
  - {model_id: mks, base_url: %[3]s/v1, key_source: {url: %[3]s/getApikey, scene_code: E2E, expire_seconds: 4, refresh_before_seconds: 2}}
  - {model_id: mtot, base_url: %[3]s/v1, api_keys: [sk-e2e-tot-0000001]}
  - {model_id: mout, base_url: %[3]s/v1, key_usage_mode: round_robin, api_keys: [sk-e2e-out-0000001, sk-e2e-out-0000002]}
`, db, c.redisPort, p)
	cfgPath := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.started = time.Now()
	master := make([]byte, 32)
	rand.Read(master)
	for i, name := range []string{"A", "B", "C"} {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		r := &replica{name: name, base: "http://" + addr, logs: &lockedBuffer{}}
		r.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--listen", addr)
		r.cmd.Dir = dir
		r.cmd.Env = append(os.Environ(), "KEYGATE_MASTER_KEY="+hex.EncodeToString(master))
		r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.cmd.Process.Kill()
			r.cmd.Wait()
			if t.Failed() {
				t.Logf("replica %s log:\n%s", r.name, r.logs.String())
			}
		})
		// One at a time: each upserts the configured models at start.
		waitFor(t, 20*time.Second, "replica "+name+" ready", func() bool {
			st, _ := r.get(t, "/readyz")
			return st == 200
		})
		c.r[i] = r
	}
	return c
}

func (c *replicaCluster) startRedis(t *testing.T) {
	c.redis = exec.Command(c.redisBin, "--port", fmt.Sprint(c.redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", c.redisDir)
	if err := c.redis.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "redis-server up", func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.redisPort))
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.Write([]byte("PING\r\n"))
		b := make([]byte, 7)
		n, _ := io.ReadAtLeast(conn, b, 7)
		return string(b[:n]) == "+PONG\r\n"
	})
}

func (c *replicaCluster) stopRedis(t *testing.T) {
	if c.redis == nil || c.redis.Process == nil {
		return
	}
	c.redis.Process.Kill()
	c.redis.Wait()
	c.redis = nil
}

func (r *replica) do(t *testing.T, method, path, token, body string) (int, []byte, http.Header) {
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// chat sends one chat completion and returns the status and the key used.
func (r *replica) chat(t *testing.T, token, model string) (int, string) {
	st, _, h := r.do(t, "POST", "/v1/chat/completions", token,
		`{"model":"`+model+`","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]}`)
	if h == nil {
		return st, ""
	}
	return st, h.Get("X-Keygate-Key")
}

func (r *replica) get(t *testing.T, path string) (int, string) {
	st, b, _ := r.do(t, "GET", path, "", "")
	return st, string(b)
}

func (r *replica) admin(t *testing.T, method, path, body string, out any) {
	t.Helper()
	st, b, _ := r.do(t, method, path, "kg-e2e-admin", body)
	if st/100 != 2 {
		t.Fatalf("%s %s on %s: %d %s", method, path, r.name, st, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (r *replica) keyID(t *testing.T, key string) string {
	var v struct {
		ID string `json:"id"`
	}
	r.admin(t, "POST", "/api/v1/keys/lookup", `{"key":"`+key+`"}`, &v)
	return v.ID
}

func (r *replica) keyStatus(t *testing.T, id string) string {
	var v struct {
		Status string `json:"status"`
	}
	st, b, _ := r.do(t, "GET", "/api/v1/keys/"+id, "kg-e2e-admin", "")
	if st != 200 || json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Status
}

type usageRow struct {
	Group        string  `json:"group"`
	Requests     int64   `json:"requests"`
	PromptTokens int64   `json:"prompt_tokens"`
	Cost         float64 `json:"cost"`
}

func (r *replica) usage(t *testing.T, by, group string) usageRow {
	var v struct {
		Data []usageRow `json:"data"`
	}
	r.admin(t, "GET", "/api/v1/usage?group_by="+by+"&from="+url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), "", &v)
	for _, row := range v.Data {
		if row.Group == group {
			return row
		}
	}
	return usageRow{}
}

// parallel runs n calls of fn on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within.Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newDatabase creates an empty PostgreSQL database for the test.
func newDatabase(t *testing.T, admin string) string {
	a, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "keygate_e2e_" + hex.EncodeToString(b)
	if _, err := a.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		a.Close()
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
