package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/cli"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
)

const adminToken = "kg-admin-cli-test-secret"

// server is a keygate started the way `keygate serve` starts it, on port 0.
type server struct {
	url      string
	upstream string
}

func startServer(t *testing.T) *server {
	t.Helper()
	cfg, err := config.Load(config.Options{WorkDir: t.TempDir(), Listen: "127.0.0.1:0",
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = "sqlite://" + filepath.Join(t.TempDir(), "keygate.db")
	cfg.AdminToken = adminToken
	cfg.Tokens = []keygate.TokenSpec{{Name: "app", Token: "kg-app-cli-test-secret"}}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	up := httptest.NewServer(mockprovider.New(mockprovider.Options{Default: mockprovider.OK}))
	t.Cleanup(up.Close)
	return &server{url: "http://" + ln.Addr().String(), upstream: up.URL + "/v1"}
}

// run runs the keygate command line against url with token, as a shell would.
func run(t *testing.T, url, token string, args ...string) (stdout string, err error) {
	t.Helper()
	env := map[string]string{"KEYGATE_URL": url, "KEYGATE_ADMIN_TOKEN": token}
	var out, errOut bytes.Buffer
	err = cli.Run(context.Background(), args, cli.Env{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok && v != "" },
		Stdout:    &out, Stderr: &errOut, WorkDir: t.TempDir(),
	})
	return out.String(), err
}

// mustRun is run that fails the test on an error.
func (s *server) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, s.url, adminToken, args...)
	if err != nil {
		t.Fatalf("keygate %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestKeysImportTenThousand(t *testing.T) {
	s := startServer(t)
	s.mustRun(t, "models", "add", "--model-id", "gpt-4o-mini", "--base-url", s.upstream, "--name", "Mini")

	const n = 10_000
	var file strings.Builder
	file.WriteString("# keys bought on 2026-01-02\n\n")
	for i := range n {
		fmt.Fprintf(&file, "sk-import-%020d\n", i)
		if i%1000 == 0 {
			file.WriteString("   \n# another batch\n")
		}
	}
	file.WriteString("sk-import-00000000000000000042\n") // a repeat
	path := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	out := s.mustRun(t, "keys", "import", "--model", "gpt-4o-mini", path)
	took := time.Since(began)
	if budget := importBudgetFactor * 5 * time.Second; took > budget {
		t.Errorf("importing %d keys took %s, want under %s", n, took, budget)
	}
	t.Logf("imported %d keys in %s", n, took)
	if !strings.Contains(out, "added 10000 keys to gpt-4o-mini") || !strings.Contains(out, "1 duplicate ") ||
		!strings.Contains(out, keygate.Mask("sk-import-00000000000000000042")) {
		t.Fatalf("import report: %s", out)
	}

	var keys []map[string]any
	if err := json.Unmarshal([]byte(s.mustRun(t, "keys", "list", "--model", "gpt-4o-mini", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != n {
		t.Fatalf("keys list --model: %d keys, want %d", len(keys), n)
	}

	// Importing the same file again adds nothing and reports every key.
	var res keygate.AddedKeys
	if err := json.Unmarshal([]byte(s.mustRun(t, "keys", "import", "--model", "gpt-4o-mini", "--json", path)), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 0 || len(res.Duplicates) != n+1 {
		t.Fatalf("second import: %d added, %d duplicates", len(res.Added), len(res.Duplicates))
	}
}

func TestModelsAndKeysCommands(t *testing.T) {
	s := startServer(t)
	keysFile := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keysFile, []byte("sk-cli-key-one-00000001\n# spare\nsk-cli-key-two-00000002\n"), 0o600)
	out := s.mustRun(t, "models", "add", "--model-id", "gpt-4o", "--base-url", s.upstream, "--provider", "openai",
		"--mode", "single", "--keys-file", keysFile, "--input-price", "2.5")
	if !strings.Contains(out, "created model gpt-4o (id 1) with 2 keys") {
		t.Fatalf("models add: %s", out)
	}
	modelFile := filepath.Join(t.TempDir(), "model.json")
	os.WriteFile(modelFile, []byte(`{"model_id":"embed","provider":"openai","type":"embedding","base_url":"`+s.upstream+`","api_keys":[{"key":"sk-cli-key-one-00000001"}]}`), 0o600)
	s.mustRun(t, "models", "add", "-f", modelFile)

	out = s.mustRun(t, "models", "list")
	for _, want := range []string{"ID", "MODEL", "gpt-4o", "embed", "single", "api"} {
		if !strings.Contains(out, want) {
			t.Errorf("models list lacks %q:\n%s", want, out)
		}
	}
	var models []map[string]any
	json.Unmarshal([]byte(s.mustRun(t, "models", "list", "--json", "--type", "embedding")), &models)
	if len(models) != 1 || models[0]["model_id"] != "embed" {
		t.Fatalf("models list --json --type: %v", models)
	}

	out = s.mustRun(t, "keys", "add", "--model", "gpt-4o", "sk-cli-key-one-00000001", "sk-cli-key-three-0000003")
	if !strings.Contains(out, "added 1 key to gpt-4o") || !strings.Contains(out, "1 duplicate ") || !strings.Contains(out, "sk-c…0001") {
		t.Fatalf("keys add must report the duplicate: %s", out)
	}

	out = s.mustRun(t, "keys", "list")
	shared := strings.Contains(out, "gpt-4o,embed") || strings.Contains(out, "embed,gpt-4o")
	if !strings.Contains(out, "sk-c…0001") || !shared || !strings.Contains(out, "3 keys") {
		t.Fatalf("keys list: the shared key is one key of both models:\n%s", out)
	}
	var keys []map[string]any
	json.Unmarshal([]byte(s.mustRun(t, "keys", "list", "--json")), &keys)
	id := ""
	for _, k := range keys {
		if k["masked"] == "sk-c…0002" {
			id = k["id"].(string)
		}
	}
	if out := s.mustRun(t, "keys", "disable", id); !strings.Contains(out, "key "+id+" (sk-c…0002) disabled") {
		t.Fatalf("keys disable: %s", out)
	}
	if out := s.mustRun(t, "keys", "list", "--status", "disabled"); !strings.Contains(out, id) || !strings.Contains(out, "1 key\n") {
		t.Fatalf("keys list --status disabled:\n%s", out)
	}
	s.mustRun(t, "keys", "enable", id)
	if out := s.mustRun(t, "keys", "rm", id); !strings.Contains(out, "removed") {
		t.Fatalf("keys rm: %s", out)
	}
	if _, err := run(t, s.url, adminToken, "keys", "rm", id); err == nil || !strings.Contains(err.Error(), "no key with id") {
		t.Fatalf("removing a removed key: %v", err)
	}

	if out := s.mustRun(t, "models", "rm", "embed"); !strings.Contains(out, "removed model embed") {
		t.Fatalf("models rm: %s", out)
	}
	if _, err := run(t, s.url, adminToken, "models", "rm", "embed"); err == nil || !strings.Contains(err.Error(), `no model "embed"`) {
		t.Fatalf("models rm of a missing model: %v", err)
	}

	// No output ever shows a key in clear.
	for _, args := range [][]string{{"keys", "list"}, {"keys", "list", "--json"}, {"models", "list"}, {"models", "list", "--json"}} {
		out := s.mustRun(t, args...)
		for _, k := range []string{"sk-cli-key-one-00000001", "sk-cli-key-three-0000003"} {
			if strings.Contains(out, k) {
				t.Errorf("keygate %s shows %s in clear", strings.Join(args, " "), keygate.Mask(k))
			}
		}
	}
}

func TestOperatorCommandFailures(t *testing.T) {
	s := startServer(t)
	s.mustRun(t, "models", "add", "--model-id", "gpt-4o", "--base-url", s.upstream)
	s.mustRun(t, "models", "add", "--model-id", "gpt-4o", "--base-url", s.upstream)
	missing := filepath.Join(t.TempDir(), "none.txt")
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n\n"), 0o600)

	for _, c := range []struct {
		name, url, token string
		args             []string
		want             string
	}{
		{"unreachable server", "http://127.0.0.1:1", adminToken, []string{"keys", "list"}, "cannot reach keygate at http://127.0.0.1:1"},
		{"no token", s.url, "", []string{"models", "list"}, "set KEYGATE_ADMIN_TOKEN"},
		{"bad token", s.url, "kg-wrong", []string{"keys", "list"}, "refused KEYGATE_ADMIN_TOKEN"},
		{"gateway token", s.url, "kg-app-cli-test-secret", []string{"keys", "list"}, "not an admin credential"},
		{"validation", s.url, adminToken, []string{"models", "add", "--model-id", "x", "--base-url", "ftp://x", "--mode", "random"},
			`invalid model: base_url: "ftp://x" is not an absolute http(s) URL; key_usage_mode: "random" must be one of`},
		{"ambiguous model", s.url, adminToken, []string{"keys", "add", "--model", "gpt-4o", "sk-ambiguous-000000001"}, `2 models answer to "gpt-4o" (ids 1, 2)`},
		{"unknown model", s.url, adminToken, []string{"keys", "add", "--model", "nope", "sk-x-000000000000001"}, `no model "nope"`},
		{"unknown model id", s.url, adminToken, []string{"keys", "add", "--model", "99", "sk-x-000000000000001"}, "no model with id 99"},
		{"bad key", s.url, adminToken, []string{"keys", "add", "--model", "1", "sk-with space"}, "keys[0]: must not contain spaces"},
		{"missing file", s.url, adminToken, []string{"keys", "import", "--model", "1", missing}, "none.txt"},
		{"file without keys", s.url, adminToken, []string{"keys", "import", "--model", "1", empty}, "holds no keys"},
		{"model flag required", s.url, adminToken, []string{"keys", "import", empty}, `"model" not set`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, c.url, c.token, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("keygate %s: error %v, want one containing %q", strings.Join(c.args, " "), err, c.want)
			}
		})
	}
}
