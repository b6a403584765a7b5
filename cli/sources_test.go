package cli_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/mockprovider"
)

// status and keys list show each key source's type, state, expiry and
// last error.
func TestKeySourcesInStatus(t *testing.T) {
	s := startServer(t)
	issuer := httptest.NewServer(mockprovider.NewTokenIssuer(clockwork.NewRealClock(), time.Hour,
		mockprovider.TokenIssuerOptions{ClientID: "kg", ClientSecret: "cs-right-0123456789abcdef"}))
	t.Cleanup(issuer.Close)
	script := filepath.Join(t.TempDir(), "key.sh")
	os.WriteFile(script, []byte("echo sk-from-command-0123456789\n"), 0o700)
	for _, body := range []string{
		`{"model_id":"azure-gpt","base_url":"` + s.upstream + `","key_source":{"type":"oauth2","token_url":"` + issuer.URL +
			`/token","client_id":"kg","client_secret":"cs-wrong-0123456789abcdef","retries":1}}`,
		`{"model_id":"team-gpt","base_url":"` + s.upstream + `","key_source":{"type":"command","command":["/bin/sh","` + script + `"]}}`,
	} {
		req, _ := http.NewRequest("POST", s.url+"/api/v1/llm-models", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("create model: %v %v", err, resp)
		}
		resp.Body.Close()
	}

	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out = s.mustRun(t, "status")
		if strings.Contains(out, "invalid_client") && strings.Contains(out, "ready (") {
			break
		}
	}
	for _, want := range []string{"KEY SOURCE", "oauth2", "down (no valid credential", "command /bin/sh", "ready (credential valid",
		"last error: fetch key from " + issuer.URL + "/token: token endpoint answered 401 invalid_client", "has no valid credential"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cs-wrong-0123456789abcdef") || strings.Contains(out, "sk-from-command-0123456789") {
		t.Fatalf("status shows a secret:\n%s", out)
	}
	out = s.mustRun(t, "keys", "list")
	if !strings.Contains(out, "SOURCE") || !strings.Contains(out, "command ready, in ") || !strings.Contains(out, "oauth2 down, -") {
		t.Fatalf("keys list:\n%s", out)
	}
}
