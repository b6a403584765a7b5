package keysource_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/mockprovider"
)

// Secrets the fakes are configured with; none may ever reach a log.
const (
	clientSecret = "cs-entra-0123456789abcdef"
	refreshToken = "rt-initial-0123456789abcdef"
	azureScope   = "https://cognitiveservices.azure.com/.default"
	gcpScope     = "https://www.googleapis.com/auth/cloud-platform"
	saEmail      = "keygate@proj.iam.gserviceaccount.com"
)

// kindEnv is a source of one key_source.type on a fake clock, the fake that
// issues its credentials, and a provider that accepts them (and backupKey).
type kindEnv struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	start  time.Time
	prov   *mockprovider.Provider
	pURL   string
	spec   keygate.KeySource
	opts   keysource.Options
	src    *keysource.Source
	logs   *syncBuffer
	vault  *memVault
	issuer *mockprovider.TokenIssuer // nil for a command
	dir    string                    // a command's state

	mu     sync.Mutex
	leases []keysource.Lease
}

// kinds builds, for each type but the key service (keysource_test.go tests
// that one), its env; edit may change the spec.
var kinds = []struct {
	name string
	new  func(t *testing.T, edit func(*keygate.KeySource)) *kindEnv
}{
	{"command", func(t *testing.T, edit func(*keygate.KeySource)) *kindEnv { return newCommandEnv(t, "key", edit) }},
	{"oauth2 client credentials", func(t *testing.T, edit func(*keygate.KeySource)) *kindEnv { return newOAuth2Env(t, false, edit) }},
	{"oauth2 refresh token", func(t *testing.T, edit func(*keygate.KeySource)) *kindEnv { return newOAuth2Env(t, true, edit) }},
	{"gcp service account", func(t *testing.T, edit func(*keygate.KeySource)) *kindEnv { return newGCPEnv(t, edit) }},
}

func baseEnv(t *testing.T) *kindEnv {
	clock := clockwork.NewFakeClock()
	return &kindEnv{t: t, clock: clock, start: clock.Now(), logs: &syncBuffer{}, vault: &memVault{}}
}

// serve starts the provider; validate judges the fetched credentials (nil:
// every key is good until the test revokes it, as for a command's keys).
func (e *kindEnv) serve(validate func(string) (mockprovider.Behavior, bool)) {
	e.prov = mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{backupKey: mockprovider.OK},
		Validate: validate, Default: mockprovider.OK})
	srv := httptest.NewServer(e.prov)
	e.t.Cleanup(srv.Close)
	e.pURL = srv.URL
}

// serveIssuer starts the token endpoint at path and the provider trusting it.
func (e *kindEnv) serveIssuer(opts mockprovider.TokenIssuerOptions, path string) string {
	e.issuer = mockprovider.NewTokenIssuer(e.clock, 600*time.Second, opts)
	srv := httptest.NewServer(e.issuer)
	e.t.Cleanup(srv.Close)
	e.issuer.SetAudience(srv.URL + path)
	e.serve(e.issuer.Validator())
	return srv.URL + path
}

func newCommandEnv(t *testing.T, mode string, edit func(*keygate.KeySource)) *kindEnv {
	e := baseEnv(t)
	e.serve(nil)
	e.dir = t.TempDir()
	e.spec = keygate.KeySource{Type: keygate.SourceCommand, Command: []string{os.Args[0], "keygate-helper", mode, e.dir},
		ExpireSeconds: 600, RefreshBeforeSeconds: 120}
	return e.finish(edit)
}

func newOAuth2Env(t *testing.T, refresh bool, edit func(*keygate.KeySource)) *kindEnv {
	e := baseEnv(t)
	tokenURL := e.serveIssuer(mockprovider.TokenIssuerOptions{
		ClientID: "keygate-app", ClientSecret: clientSecret, Scope: azureScope,
		RefreshTokens: []string{refreshToken}, Rotate: true,
	}, "/tenant/oauth2/v2.0/token")
	e.spec = keygate.KeySource{Type: keygate.SourceOAuth2, TokenURL: tokenURL,
		ClientID: "keygate-app", ClientSecret: clientSecret, Scope: azureScope, ExpireSeconds: 600, RefreshBeforeSeconds: 120}
	if refresh {
		e.spec.RefreshToken, e.spec.Scope = refreshToken, ""
	}
	return e.finish(edit)
}

// saKey is the service account's private key, made once for the tests.
var saKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// serviceAccountJSON is a Google service account key file holding key,
// whose token_uri is tokenURI.
func serviceAccountJSON(t *testing.T, key *rsa.PrivateKey, tokenURI string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "0123abcd",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": saEmail, "client_id": "1234567890", "token_uri": tokenURI,
	})
	return b
}

func newGCPEnv(t *testing.T, edit func(*keygate.KeySource)) *kindEnv {
	e := baseEnv(t)
	tokenURL := e.serveIssuer(mockprovider.TokenIssuerOptions{Account: saEmail, PublicKey: &saKey().PublicKey, Scopes: gcpScope}, "/token")
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, serviceAccountJSON(t, saKey(), tokenURL), 0o600); err != nil {
		t.Fatal(err)
	}
	e.spec = keygate.KeySource{Type: keygate.SourceGCPServiceAccount, CredentialsFile: file,
		ExpireSeconds: 600, RefreshBeforeSeconds: 120}
	return e.finish(edit)
}

func (e *kindEnv) finish(edit func(*keygate.KeySource)) *kindEnv {
	e.t.Helper()
	if edit != nil {
		edit(&e.spec)
	}
	e.opts = keysource.Options{Clock: e.clock, Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Name: "gpt-4o",
		Vault: e.vault, VaultName: "k_test"}
	e.src = e.newSource()
	e.t.Cleanup(func() {
		logs := e.logs.String()
		e.mu.Lock()
		defer e.mu.Unlock()
		secrets := []string{clientSecret, refreshToken, backupKey, "hvs-0123456789abcdefXYZ", "PRIVATE KEY"}
		for _, l := range e.leases {
			secrets = append(secrets, l.Secret)
		}
		for _, v := range e.vault.values() {
			secrets = append(secrets, v)
		}
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				e.t.Errorf("secret %s in clear in the logs:\n%s", keygate.Mask(s), logs)
			}
		}
	})
	return e
}

func (e *kindEnv) newSource() *keysource.Source {
	src, err := keysource.New(e.spec, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	src.OnChange(func(l keysource.Lease) {
		e.mu.Lock()
		e.leases = append(e.leases, l)
		e.mu.Unlock()
	})
	return src
}

// run runs the source until the test ends, and lets its first fetch finish.
func (e *kindEnv) run() { e.t.Helper(); runSource(e.t, e.clock, e.src) }

func (e *kindEnv) settle() { e.t.Helper(); settle(e.t, e.clock) }

func (e *kindEnv) advance(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	e.settle()
}

func (e *kindEnv) now() int { return int(e.clock.Since(e.start) / time.Second) }

// issued counts the credentials handed out by the fake.
func (e *kindEnv) issued() int {
	if e.issuer != nil {
		return e.issuer.Issued()
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, "count"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (e *kindEnv) setDown(down bool) {
	if e.issuer != nil {
		e.issuer.SetDown(down)
		return
	}
	flag(e.t, filepath.Join(e.dir, "down"), down)
}

// hold makes the next fetch hang (a slow endpoint, a slow command) until released.
func (e *kindEnv) hold() (release func()) {
	if e.issuer != nil {
		return e.issuer.Hold()
	}
	file := filepath.Join(e.dir, "hold")
	flag(e.t, file, true)
	return sync.OnceFunc(func() { flag(e.t, file, false) })
}

// revoke makes the provider reject key before its expiry.
func (e *kindEnv) revoke(key string) {
	if e.issuer != nil {
		e.issuer.Revoke(key)
		return
	}
	e.prov.SetBehavior(key, mockprovider.InvalidKey)
}

func flag(t *testing.T, file string, on bool) {
	if !on {
		os.Remove(file)
		return
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *kindEnv) client() *http.Client {
	return &http.Client{Transport: &keysource.Transport{Source: e.src, Backup: backupKey}}
}

// burst sends n requests at once and returns how often the provider saw
// each key; any answer but 200 fails the test.
func (e *kindEnv) burst(n int) map[string]int {
	e.t.Helper()
	before := len(e.prov.Requests())
	c := e.client()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := c.Post(e.pURL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				e.t.Errorf("at %ds: %v", e.now(), err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				e.t.Errorf("at %ds: status %d", e.now(), resp.StatusCode)
			}
		})
	}
	wg.Wait()
	keys := map[string]int{}
	for _, r := range e.prov.Requests()[before:] {
		keys[r.Key]++
	}
	return keys
}

// memVault is a Vault in memory.
type memVault struct {
	mu sync.Mutex
	m  map[string]string
}

func (v *memVault) LoadSecret(_ context.Context, name string) (string, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[name]
	return s, ok, nil
}

func (v *memVault) SaveSecret(_ context.Context, name, value string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]string{}
	}
	v.m[name] = value
	return nil
}

func (v *memVault) values() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, s := range v.m {
		out = append(out, s)
	}
	return out
}
