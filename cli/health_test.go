package cli_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// TestOperatorHealthCommands runs the operator's day against fake
// providers of each vendor: import keys, check them, read the dashboard,
// analyze one, reset, and report usage in every format.
func TestOperatorHealthCommands(t *testing.T) {
	s := startServer(t)
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-oa-good-0000000001": mockprovider.OK, "sk-oa-quota-000000002": mockprovider.QuotaExhausted}})
	anth := mockprovider.NewVendor(mockprovider.VendorAnthropic, map[string]mockprovider.Behavior{"sk-ant-good-000000001": mockprovider.OK})
	gem := mockprovider.NewVendor(mockprovider.VendorGemini, map[string]mockprovider.Behavior{"AIza-good-00000000001": mockprovider.OK})
	sf := mockprovider.NewVendor(mockprovider.VendorSiliconFlow, map[string]mockprovider.Behavior{"sk-sf-limited-0000001": mockprovider.RateLimited})
	serve := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	models := []struct {
		id, provider, base string
		keys               []string
	}{
		{"gpt-4o-mini", "openai", serve(openai) + "/v1", []string{"sk-oa-good-0000000001", "sk-oa-quota-000000002", "sk-oa-unknown-0000003"}},
		{"claude", "anthropic", serve(anth) + "/v1", []string{"sk-ant-good-000000001", "sk-ant-revoked-000002"}},
		{"gemini", "gemini", serve(gem) + "/v1beta", []string{"AIza-good-00000000001", "AIza-bad-000000000002"}},
		{"qwen", "siliconflow", serve(sf) + "/v1", []string{"sk-sf-limited-0000001"}},
	}
	for _, m := range models {
		s.mustRun(t, "models", "add", "--model-id", m.id, "--provider", m.provider, "--base-url", m.base)
		path := filepath.Join(t.TempDir(), m.id+".txt")
		os.WriteFile(path, []byte("# keys\n"+strings.Join(m.keys, "\n")+"\n"), 0o600)
		s.mustRun(t, "keys", "import", "--model", m.id, path)
	}

	// check: one line per key, the right verdict for each vendor's answer.
	out := s.mustRun(t, "keys", "check")
	for _, want := range []string{
		"✓ " + keygate.Mask("sk-oa-good-0000000001"),
		"✗ " + keygate.Mask("sk-oa-quota-000000002"), "insufficient_quota",
		"✗ " + keygate.Mask("sk-ant-revoked-000002"), "authentication_error",
		"✗ " + keygate.Mask("AIza-bad-000000000002"),
		"✗ " + keygate.Mask("sk-sf-limited-0000001"), "rate_limit_exceeded",
		"8 keys checked: 3 passed, 5 failed",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("keys check output lacks %q:\n%s", want, out)
		}
	}
	var checked struct{ Checked, Passed int }
	json.Unmarshal([]byte(s.mustRun(t, "keys", "check", "--vendor", "gemini", "--json")), &checked)
	if checked.Checked != 2 || checked.Passed != 1 {
		t.Fatalf("check --vendor gemini --json: %+v", checked)
	}

	// status: the dashboard counts what the check found.
	out = s.mustRun(t, "status")
	for _, want := range []string{"keygate: 8 keys", "disabled", "authentication_error", "insufficient_quota", "rate_limit_exceeded", "Next:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	var dash struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
		ByClass  map[string]int `json:"by_class"`
	}
	json.Unmarshal([]byte(s.mustRun(t, "status", "--json")), &dash)
	if dash.Total != 8 || dash.ByClass["authentication_error"] != 3 || dash.ByStatus["disabled"] != 3 {
		t.Fatalf("status --json: %+v", dash)
	}

	// analyze: by the key itself (sent in a body, never a URL) and by id.
	out = s.mustRun(t, "keys", "analyze", "sk-oa-quota-000000002")
	if !strings.Contains(out, "insufficient_quota") || !strings.Contains(out, "top up") || strings.Contains(out, "sk-oa-quota-000000002") {
		t.Fatalf("analyze must show the class and advice, never the key in clear:\n%s", out)
	}
	var analyzed struct {
		Key struct{ ID string } `json:"key"`
	}
	json.Unmarshal([]byte(s.mustRun(t, "keys", "analyze", "sk-ant-revoked-000002", "--json")), &analyzed)
	if out := s.mustRun(t, "keys", "analyze", analyzed.Key.ID); !strings.Contains(out, "authentication_error") {
		t.Fatalf("analyze by id:\n%s", out)
	}
	if _, err := run(t, s.url, adminToken, "keys", "analyze", "sk-never-seen-0000000"); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("analyze of an unknown key: %v", err)
	}

	// reset: one key, then every failed key (the one just reset still
	// counts as failed: all its calls failed, so its status is error).
	if out := s.mustRun(t, "keys", "reset", analyzed.Key.ID); !strings.Contains(out, "reset") {
		t.Fatalf("reset one: %s", out)
	}
	if out := s.mustRun(t, "keys", "reset", "--failed"); !strings.Contains(out, "5 failed keys reset") {
		t.Fatalf("reset --failed: %s", out)
	}
	if _, err := run(t, s.url, adminToken, "keys", "reset"); err == nil {
		t.Fatal("reset with neither an id nor --failed must fail")
	}

	// report: traffic through the relay, then all three formats.
	relayChat(t, s.url, "gpt-4o-mini")
	relayChat(t, s.url, "gpt-4o-mini")
	waitUsage(t, s, 2)
	out = s.mustRun(t, "report", "--by", "model")
	if !strings.Contains(out, "gpt-4o-mini") || !strings.Contains(out, "total") {
		t.Fatalf("report table:\n%s", out)
	}
	var rows []map[string]any
	json.Unmarshal([]byte(s.mustRun(t, "report", "--by", "token", "--format", "json")), &rows)
	if len(rows) != 1 || rows[0]["group"] != "app" || rows[0]["requests"] != float64(2) {
		t.Fatalf("report json: %v", rows)
	}
	recs, err := csv.NewReader(strings.NewReader(s.mustRun(t, "report", "--by", "key", "--format", "csv"))).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "key" || recs[1][1] != "2" {
		t.Fatalf("report csv: %v %v", recs, err)
	}
	if _, err := run(t, s.url, adminToken, "report", "--format", "xml"); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Fatalf("bad format: %v", err)
	}
}

func TestTokensCommands(t *testing.T) {
	s := startServer(t)
	out := s.mustRun(t, "tokens", "create", "team-a", "--user", "bob", "--rpm", "60", "--budget", "5", "--period", "monthly", "--expires", "720h")
	i := strings.Index(out, "kg-")
	if i < 0 {
		t.Fatalf("create must show the secret once:\n%s", out)
	}
	secret := strings.Fields(out[i:])[0]
	list := s.mustRun(t, "tokens", "list")
	if !strings.Contains(list, "team-a") || !strings.Contains(list, "$5.00 monthly") || strings.Contains(list, secret) {
		t.Fatalf("tokens list:\n%s", list)
	}
	var tokens []struct {
		ID   int64
		Name string
	}
	json.Unmarshal([]byte(s.mustRun(t, "tokens", "list", "--json")), &tokens)
	var id string
	for _, tk := range tokens {
		if tk.Name == "team-a" {
			id = strconv.FormatInt(tk.ID, 10)
		}
	}
	if out := s.mustRun(t, "tokens", "revoke", id); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %s", out)
	}
	if _, err := run(t, s.url, adminToken, "tokens", "create", "bad", "--period", "weekly", "--budget", "1"); err == nil || !strings.Contains(err.Error(), "budget.period") {
		t.Fatalf("a bad period must fail naming the field: %v", err)
	}
}

// relayChat sends one chat completion through the gateway as the app token.
func relayChat(t *testing.T, base, model string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer kg-app-cli-test-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("relay %s: %d", model, resp.StatusCode)
	}
}

// waitUsage waits until n requests are in the store (the recorder writes
// behind the request path, within about a second).
func waitUsage(t *testing.T, s *server, n int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		var rows []map[string]any
		json.Unmarshal([]byte(s.mustRun(t, "report", "--by", "model", "--format", "json")), &rows)
		total := 0.0
		for _, r := range rows {
			total += r["requests"].(float64)
		}
		if int(total) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d requests never reached the store", n)
}
