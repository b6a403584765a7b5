package app_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/mockprovider"
)

const (
	e2eClientSecret = "cs-entra-e2e-0123456789abcdef"
	e2eRefreshToken = "rt-e2e-initial-0123456789abcdef"
)

// sourceFake issues credentials of one key_source type and tells which ones
// it issued.
type sourceFake struct {
	source *keygate.KeySource
	issued func() int
	valid  func(token string) bool
	issuer *mockprovider.TokenIssuer
}

func commandFake(t *testing.T, _ clockwork.Clock) sourceFake {
	dir := t.TempDir()
	script := filepath.Join(dir, "print-key.sh")
	os.WriteFile(script, []byte(`n=$(cat "$1/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1/count"
printf '{"key":"cmd-key-%04d-0123456789abcdef","expires_in":600}\n' $n
`), 0o700)
	return sourceFake{
		source: &keygate.KeySource{Type: keygate.SourceCommand, Command: []string{"/bin/sh", script, dir}},
		issued: func() int {
			b, _ := os.ReadFile(filepath.Join(dir, "count"))
			var n int
			fmt.Sscan(string(b), &n)
			return n
		},
		valid: func(tok string) bool { return strings.HasPrefix(tok, "cmd-key-") },
	}
}

func issuerFake(t *testing.T, clock clockwork.Clock, opts mockprovider.TokenIssuerOptions, path string, src keygate.KeySource) sourceFake {
	iss := mockprovider.NewTokenIssuer(clock, 600*time.Second, opts)
	srv := httptest.NewServer(iss)
	t.Cleanup(srv.Close)
	iss.SetAudience(srv.URL + path)
	if src.Type == keygate.SourceOAuth2 {
		src.TokenURL = srv.URL + path
	} else {
		src.CredentialsFile = writeServiceAccount(t, opts.PublicKey, srv.URL+path)
	}
	return sourceFake{source: &src, issued: iss.Issued, valid: iss.Valid, issuer: iss}
}

var e2eKey *rsa.PrivateKey

func writeServiceAccount(t *testing.T, _ *rsa.PublicKey, tokenURI string) string {
	der, _ := x509.MarshalPKCS8PrivateKey(e2eKey)
	b, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "kg@proj.iam.gserviceaccount.com",
		"private_key_id": "k1", "private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": tokenURI})
	file := filepath.Join(t.TempDir(), "sa.json")
	os.WriteFile(file, b, 0o600)
	return file
}

var sourceTypes = []struct {
	name, provider string
	fake           func(t *testing.T, clock clockwork.Clock) sourceFake
}{
	{"command", "openai", commandFake},
	{"oauth2 client credentials (Azure OpenAI with Entra ID)", "azure", func(t *testing.T, clock clockwork.Clock) sourceFake {
		return issuerFake(t, clock, mockprovider.TokenIssuerOptions{ClientID: "kg", ClientSecret: e2eClientSecret,
			Scope: "https://cognitiveservices.azure.com/.default"}, "/tenant/oauth2/v2.0/token",
			keygate.KeySource{Type: keygate.SourceOAuth2, ClientID: "kg", ClientSecret: e2eClientSecret, Scope: "https://cognitiveservices.azure.com/.default"})
	}},
	{"oauth2 refresh token", "openai", func(t *testing.T, clock clockwork.Clock) sourceFake {
		return issuerFake(t, clock, mockprovider.TokenIssuerOptions{ClientID: "kg", ClientSecret: e2eClientSecret,
			RefreshTokens: []string{e2eRefreshToken}, Rotate: true}, "/token",
			keygate.KeySource{Type: keygate.SourceOAuth2, ClientID: "kg", ClientSecret: e2eClientSecret, RefreshToken: e2eRefreshToken})
	}},
	{"gcp service account (Vertex AI)", "openai", func(t *testing.T, clock clockwork.Clock) sourceFake {
		if e2eKey == nil {
			e2eKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		}
		return issuerFake(t, clock, mockprovider.TokenIssuerOptions{Account: "kg@proj.iam.gserviceaccount.com",
			PublicKey: &e2eKey.PublicKey, Scopes: "https://www.googleapis.com/auth/cloud-platform"}, "/token",
			keygate.KeySource{Type: keygate.SourceGCPServiceAccount})
	}},
}

// bearerUpstream is a provider that counts every request whose credential
// is not a valid one from the fake, sent as "Authorization: Bearer" with no
// API-key header, and answers like OpenAI on any chat path (Azure's
// /openai/deployments/… included).
func bearerUpstream(t *testing.T, fake sourceFake) (url string, bad *atomic.Int64) {
	bad = new(atomic.Int64)
	prov := mockprovider.New(mockprovider.Options{Default: mockprovider.OK, Models: []string{"gpt-4o"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, isBearer := strings.CutPrefix(auth, "Bearer ")
		if !isBearer || !fake.valid(tok) || r.Header.Get("Api-Key") != "" || r.Header.Get("X-Api-Key") != "" || r.Header.Get("X-Goog-Api-Key") != "" {
			bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			r.URL.Path = "/v1/chat/completions"
		}
		prov.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, bad
}

func sourceModel(provider, base string, src *keygate.KeySource) keygate.Model {
	s := *src
	s.ExpireSeconds, s.RefreshBeforeSeconds, s.TimeoutSeconds = 600, 120, 10
	return keygate.Model{ModelID: "gpt-4o", Provider: provider, BaseURL: base, KeyUsageMode: keygate.ModeSingle,
		UpstreamModel: "gpt-4o", KeySource: &s}
}

// keySources reads GET /api/v1/key-sources.
func keySources(t *testing.T, url string) []admin.SourceEntry {
	t.Helper()
	resp, b := call(t, "GET", url+"/api/v1/key-sources", "kg-admin-test-secret", "")
	var v struct{ Data []admin.SourceEntry }
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("key-sources: %d %s", resp.StatusCode, b)
	}
	return v.Data
}

// waitForFetches waits (in real time, for the source's goroutine) until
// the gateway has installed n credentials.
func waitForFetches(t *testing.T, url string, n int) admin.SourceEntry {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if s := keySources(t, url); len(s) == 1 && s[0].Fetches >= n {
			return s[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d fetches: %+v", n, keySources(t, url))
		}
	}
}

// An hour of traffic through the gateway for every source type: every
// request succeeds at the first attempt with a valid credential sent as
// Bearer, and the credential is refreshed on schedule, once per window.
func TestEverySourceTypeServesAnHour(t *testing.T) {
	for _, st := range sourceTypes {
		t.Run(st.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			fake := st.fake(t, clock)
			up, bad := bearerUpstream(t, fake)
			cfg := baseConfig(t, t.TempDir())
			cfg.Models = []keygate.Model{sourceModel(st.provider, up+"/v1", fake.source)}
			g := startWith(t, cfg, clock)
			chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`

			s := waitForFetches(t, g.url, 1)
			if s.Type != fake.source.Kind() || s.State != "ready" {
				t.Fatalf("source %+v", s)
			}
			requests := 0
			for elapsed := 10; elapsed <= 3600; elapsed += 10 {
				clock.Advance(10 * time.Second)
				want := 1 + elapsed/480
				if elapsed%480 == 0 {
					waitForFetches(t, g.url, want)
				}
				resp, b := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", chat)
				requests++
				if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != "1" {
					t.Fatalf("at %d s: %d attempts=%s %s", elapsed, resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), b)
				}
			}
			// Fetched at 0, 480, …, 3360 s.
			if n := fake.issued(); n != 8 {
				t.Errorf("%d credentials issued in the hour, want 8", n)
			}
			if n := bad.Load(); n != 0 {
				t.Errorf("%d of %d requests reached the provider without a valid Bearer credential", n, requests)
			}
			s = keySources(t, g.url)[0]
			if s.State != "ready" || s.LastError != "" || s.ExpiresInSeconds <= 0 {
				t.Errorf("source after the hour %+v", s)
			}
			_, m := call(t, "GET", g.url+"/metrics", "kg-admin-test-secret", "")
			if want := fmt.Sprintf(`keygate_key_source_expires_in_seconds{key_id=%q,state="ready",type=%q} %g`, s.KeyID, s.Type, s.ExpiresInSeconds); !bytes.Contains(m, []byte(want)) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}

// A refresh token the server rotated is kept sealed in the store: after a
// restart keygate uses it, not the spent one from the config; the admin
// API shows the config's secrets only masked.
func TestRotatedRefreshTokenSurvivesRestart(t *testing.T) {
	clock := clockwork.NewFakeClock()
	fake := sourceTypes[2].fake(t, clock)
	up, bad := bearerUpstream(t, fake)
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.Models = []keygate.Model{sourceModel("openai", up+"/v1", fake.source)}
	g := startWith(t, cfg, clock)
	waitForFetches(t, g.url, 1)
	if fake.issuer.RefreshTokenValid(e2eRefreshToken) {
		t.Fatal("the issuer did not rotate the refresh token")
	}
	_, b := call(t, "GET", g.url+"/api/v1/llm-models", "kg-admin-test-secret", "")
	if bytes.Contains(b, []byte(e2eClientSecret)) || bytes.Contains(b, []byte(e2eRefreshToken)) ||
		!bytes.Contains(b, []byte(keygate.Mask(e2eClientSecret))) {
		t.Errorf("models answer shows the secrets: %s", b)
	}
	g.shutdown(t)

	for _, f := range []string{"keygate.db", "keygate.db-wal"} {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(raw, []byte("rt-")) || bytes.Contains(raw, []byte(e2eClientSecret)) {
			t.Errorf("%s holds a refresh token or the client secret in clear", f)
		}
	}

	g = startWith(t, cfg, clock)
	s := waitForFetches(t, g.url, 1)
	resp, body := call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || s.State != "ready" || bad.Load() != 0 {
		t.Fatalf("after a restart: %d %s, source %+v", resp.StatusCode, body, s)
	}
}

// A key source created through the admin API starts at once; its secrets
// come back masked, and an answer sent back as it is keeps them; a
// mistake is refused naming the field.
func TestKeySourceThroughTheAdminAPI(t *testing.T) {
	clock := clockwork.NewRealClock()
	fake := sourceTypes[1].fake(t, clock)
	up, bad := bearerUpstream(t, fake)
	cfg := baseConfig(t, t.TempDir())
	g := start(t, cfg)
	body, _ := json.Marshal(sourceModel("azure", up, fake.source))

	resp, b := call(t, "POST", g.url+"/api/v1/llm-models", "kg-admin-test-secret", string(body))
	if resp.StatusCode != 201 || bytes.Contains(b, []byte(e2eClientSecret)) || !bytes.Contains(b, []byte(keygate.Mask(e2eClientSecret))) {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var created struct {
		ID        int64           `json:"id"`
		KeySource json.RawMessage `json:"key_source"`
	}
	json.Unmarshal(b, &created)
	waitForFetches(t, g.url, 1)

	// The masked answer sent back keeps the stored secret.
	resp, b = call(t, "PUT", fmt.Sprintf("%s/api/v1/llm-models/%d", g.url, created.ID), "kg-admin-test-secret",
		`{"key_source":`+string(created.KeySource)+`}`)
	if resp.StatusCode != 200 {
		t.Fatalf("update: %d %s", resp.StatusCode, b)
	}
	// After a restart the source reads what the store kept.
	g.shutdown(t)
	g = start(t, cfg)
	if s := waitForFetches(t, g.url, 1); s.State != "ready" {
		t.Fatalf("after the update and a restart: %+v", s)
	}
	resp, b = call(t, "POST", g.url+"/v1/chat/completions", "kg-app-test-secret", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || bad.Load() != 0 {
		t.Fatalf("after the update: %d %s", resp.StatusCode, b)
	}

	resp, b = call(t, "POST", g.url+"/api/v1/llm-models", "kg-admin-test-secret",
		`{"model_id":"x","base_url":"https://x.example","key_source":{"type":"oauth2","token_url":"https://idp/token","client_id":"a"}}`)
	if resp.StatusCode != 400 || !bytes.Contains(b, []byte("key_source.client_secret: required")) {
		t.Errorf("invalid source: %d %s", resp.StatusCode, b)
	}
}
