package keysource_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/mockprovider"
)

// once makes a source try a single attempt per round, so that run returns
// after the first attempt's outcome.
func once(s *keygate.KeySource) { s.Retries = 1 }

func TestCommand(t *testing.T) {
	t.Run("prints the key; stderr is logged masked", func(t *testing.T) {
		e := newCommandEnv(t, "key", nil)
		e.run()
		l := e.src.Current()
		if l.Secret != helperKey(1) || l.ExpiresAt.Sub(l.FetchedAt) != 600*time.Second {
			t.Errorf("lease %+v: want the printed key for expire_seconds", l)
		}
		if logs := e.logs.String(); !strings.Contains(logs, `msg="key command wrote to stderr"`) ||
			!strings.Contains(logs, "using cached login for "+keygate.Mask(helperKey(1))) {
			t.Errorf("stderr not logged masked:\n%s", logs)
		}
	})

	t.Run("prints JSON with an expiry", func(t *testing.T) {
		e := newCommandEnv(t, "json", nil)
		e.run()
		l := e.src.Current()
		if l.Secret != helperKey(1) || l.ExpiresAt.Sub(l.FetchedAt) != 300*time.Second {
			t.Errorf("lease %+v: want the key for its expires_in of 300 s", l)
		}
		// Refreshed refresh_before_seconds (120) before its own expiry.
		e.advance(179 * time.Second)
		if n := e.issued(); n != 1 {
			t.Errorf("refreshed early: %d runs", n)
		}
		e.advance(time.Second)
		if n := e.issued(); n != 2 {
			t.Errorf("%d runs by 180 s, want a refresh at 180 s", n)
		}
	})

	for _, tt := range []struct{ mode, want string }{
		{"hang", "did not finish within 1s"},
		{"fail", "exit status 3 (its stderr is in the log)"},
		{"empty", "printed nothing on stdout"},
		{"words", "printed more than one word on stdout"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			e := newCommandEnv(t, tt.mode, func(s *keygate.KeySource) {
				once(s)
				if tt.mode == "hang" {
					s.TimeoutSeconds = 1
				}
			})
			began := time.Now()
			e.run()
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("the failed run took %v", took)
			}
			v := e.src.View()
			if v.State != keysource.StateDown || !strings.Contains(v.LastError, tt.want) || v.Target != "command "+os.Args[0] {
				t.Errorf("view %+v: want state down and an error with %q", v, tt.want)
			}
			if tt.mode == "fail" && !strings.Contains(e.logs.String(), "permission denied for token "+keygate.Mask("hvs-0123456789abcdefXYZ")) {
				t.Errorf("stderr not logged masked:\n%s", e.logs)
			}
		})
	}

	t.Run("keygate's own variables stay out of its environment", func(t *testing.T) {
		t.Setenv("KEYGATE_MASTER_KEY", "0123456789abcdef0123456789abcdef")
		e := newCommandEnv(t, "env", once)
		e.run()
		if v := e.src.View(); v.State != keysource.StateReady {
			t.Errorf("view %+v", v)
		}
	})

	t.Run("argv is not given to a shell", func(t *testing.T) {
		e := newCommandEnv(t, "key", func(s *keygate.KeySource) { s.Command = []string{"echo sk-from-a-shell-0123456789"}; once(s) })
		e.run()
		if v := e.src.View(); v.State != keysource.StateDown || !strings.Contains(v.LastError, "executable file not found") {
			t.Errorf("view %+v", v)
		}
	})
}

func TestOAuth2(t *testing.T) {
	t.Run("client credentials", func(t *testing.T) {
		e := newOAuth2Env(t, false, nil)
		e.run()
		l := e.src.Current()
		if !e.issuer.Valid(l.Secret) || l.ExpiresAt.Sub(l.FetchedAt) != 600*time.Second {
			t.Errorf("lease %+v: want the access token for its expires_in", l)
		}
		if c := e.issuer.Calls(); len(c) != 1 || c[0].Grant != "client_credentials" || c[0].Error != "" {
			t.Errorf("token endpoint calls %+v", c)
		}
	})

	t.Run("a wrong client secret", func(t *testing.T) {
		e := newOAuth2Env(t, false, func(s *keygate.KeySource) { s.ClientSecret = "cs-wrong-0123456789abcdef"; once(s) })
		e.run()
		v := e.src.View()
		if v.State != keysource.StateDown || !strings.Contains(v.LastError, "token endpoint answered 401 invalid_client") ||
			strings.Contains(v.LastError, "cs-wrong-0123456789abcdef") {
			t.Errorf("view %+v", v)
		}
	})

	t.Run("a rotated refresh token is kept across a restart", func(t *testing.T) {
		e := newOAuth2Env(t, true, nil)
		e.run()
		if !e.src.Current().Valid(e.clock.Now()) || e.issuer.RefreshTokenValid(refreshToken) {
			t.Fatalf("first refresh: %+v", e.src.View())
		}
		var rec struct{ Token string }
		stored := e.vault.values()
		if len(stored) != 1 || json.Unmarshal([]byte(stored[0]), &rec) != nil || !e.issuer.RefreshTokenValid(rec.Token) {
			t.Fatalf("the vault holds %d values, not the rotated refresh token", len(stored))
		}
		// A restart: a new source from the same config finds the rotated token.
		restarted := e.newSource()
		l, err := restarted.Wait(context.Background())
		if err != nil || !e.issuer.Valid(l.Secret) {
			t.Fatalf("after a restart: %v, %+v", err, restarted.View())
		}
		// The config's refresh token changes: it wins over what the old one
		// was rotated into (the issuer does not know it, so it is refused).
		e.spec.RefreshToken, e.spec.Retries = "rt-new-in-config-0123456789", 1
		changed := e.newSource()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := changed.Wait(ctx); err == nil {
			t.Fatal("a refresh token the issuer never gave out was accepted")
		}
		if v := changed.View(); !strings.Contains(v.LastError, "invalid_grant") {
			t.Errorf("a new configured refresh token: view %+v, want it used (and refused)", v)
		}
	})

	t.Run("a refresh token another replica rotated is taken from the vault", func(t *testing.T) {
		e := newOAuth2Env(t, true, nil)
		a, b := e.src, e.newSource() // two replicas sharing one store
		ctx := context.Background()
		la, err := a.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(ctx); err != nil { // rotates what a holds
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)            // rounds of fetches are at least 1 s apart
		next, err := a.Rejected(ctx, la.Secret) // a refetches with its spent token
		if err != nil || !e.issuer.Valid(next.Secret) {
			t.Fatalf("a after b rotated: %v, %+v", err, a.View())
		}
		var invalid int
		for _, c := range e.issuer.Calls() {
			if c.Error == "invalid_grant" {
				invalid++
			}
		}
		if invalid != 1 || e.issuer.Issued() != 3 {
			t.Errorf("token endpoint calls %+v: want one invalid_grant, then the stored token used", e.issuer.Calls())
		}
	})

	t.Run("invalid_grant", func(t *testing.T) {
		e := newOAuth2Env(t, true, once)
		e.issuer.DenyRefresh(true)
		e.run()
		v := e.src.View()
		if v.State != keysource.StateDown || !strings.Contains(v.LastError, "token endpoint answered 400 invalid_grant: the refresh token is expired or revoked") {
			t.Errorf("view %+v", v)
		}
		if keys := e.burst(4); keys[backupKey] != 4 {
			t.Errorf("requests used %v, want the backup", keys)
		}
	})

	t.Run("a slow endpoint", func(t *testing.T) {
		e := newOAuth2Env(t, false, func(s *keygate.KeySource) { once(s); s.TimeoutSeconds = 1 })
		release := e.hold()
		t.Cleanup(release)
		e.run()
		v := e.src.View()
		if v.State != keysource.StateDown || !strings.Contains(v.LastError, "deadline exceeded") {
			t.Errorf("view %+v", v)
		}
		if keys := e.burst(4); keys[backupKey] != 4 {
			t.Errorf("requests used %v, want the backup", keys)
		}
		release()
		e.advance(2 * time.Second) // the pause after a failed round
		if !e.src.Current().Valid(e.clock.Now()) {
			t.Errorf("no token once the endpoint answers: %+v", e.src.View())
		}
	})
}

func TestGCPServiceAccount(t *testing.T) {
	t.Run("the signed assertion is accepted", func(t *testing.T) {
		e := newGCPEnv(t, nil)
		e.run()
		l := e.src.Current()
		if !e.issuer.Valid(l.Secret) || l.ExpiresAt.Sub(l.FetchedAt) != 600*time.Second {
			t.Errorf("lease %+v", l)
		}
		if c := e.issuer.Calls(); len(c) != 1 || c[0].Grant != mockprovider.JWTBearerGrant || c[0].Error != "" {
			t.Errorf("token endpoint calls %+v", c)
		}
		if v := e.src.View(); v.Target != "service account "+saEmail {
			t.Errorf("target %q", v.Target)
		}
	})

	t.Run("credentials_json", func(t *testing.T) {
		e := newGCPEnv(t, func(s *keygate.KeySource) {
			b, _ := os.ReadFile(s.CredentialsFile)
			s.CredentialsFile, s.CredentialsJSON = "", string(b)
		})
		e.run()
		if !e.issuer.Valid(e.src.Current().Secret) {
			t.Errorf("view %+v", e.src.View())
		}
	})

	for _, tt := range []struct {
		name string
		edit func(t *testing.T, s *keygate.KeySource)
		want string
	}{
		{"another scope", func(t *testing.T, s *keygate.KeySource) {
			s.Scopes = []string{"https://www.googleapis.com/auth/devstorage.read_only"}
		},
			"invalid_grant: scope is https://www.googleapis.com/auth/devstorage.read_only"},
		{"another key", func(t *testing.T, s *keygate.KeySource) {
			var f map[string]string
			b, _ := os.ReadFile(s.CredentialsFile)
			json.Unmarshal(b, &f)
			other, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(s.CredentialsFile, serviceAccountJSON(t, other, f["token_uri"]), 0o600)
		}, "invalid_grant: invalid JWT signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newGCPEnv(t, func(s *keygate.KeySource) { tt.edit(t, s); once(s) })
			e.run()
			if v := e.src.View(); v.State != keysource.StateDown || !strings.Contains(v.LastError, tt.want) {
				t.Errorf("view %+v, want %q", v, tt.want)
			}
		})
	}
}

func TestNewValidatesEveryType(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user.json")
	os.WriteFile(user, []byte(`{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`), 0o600)
	tests := []struct {
		name string
		spec keygate.KeySource
		want []string
	}{
		{"unknown type", keygate.KeySource{Type: "vault"}, []string{`key_source.type: "vault" must be one of key_service, command, oauth2, gcp_service_account`}},
		{"command", keygate.KeySource{Type: "command"}, []string{"key_source.command: required"}},
		{"command and a key service field", keygate.KeySource{Type: "command", Command: []string{"vault"}, URL: "http://x"},
			[]string{"key_source.url: belongs to type key_service, not command"}},
		{"oauth2", keygate.KeySource{Type: "oauth2", TokenURL: "login/token"}, []string{
			`key_source.token_url: "login/token" must be an absolute http or https URL`, "key_source.client_id: required",
			"key_source.client_secret: required for the client-credentials grant"}},
		{"gcp without credentials", keygate.KeySource{Type: "gcp_service_account"}, []string{"key_source.credentials_file: required"}},
		{"gcp missing file", keygate.KeySource{Type: "gcp_service_account", CredentialsFile: filepath.Join(dir, "none.json")},
			[]string{"key_source.credentials_file: cannot read it: open " + filepath.Join(dir, "none.json") + ": no such file or directory"}},
		{"gcp user credentials", keygate.KeySource{Type: "gcp_service_account", CredentialsFile: user},
			[]string{`key_source.credentials_file: not a service account JSON key: read JWT from JSON credentials: 'type' field is "authorized_user" (expected "service_account")`}},
		{"gcp inline garbage", keygate.KeySource{Type: "gcp_service_account", CredentialsJSON: "-----BEGIN PRIVATE KEY-----abc"},
			[]string{"key_source.credentials_json: not a service account JSON key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keysource.New(tt.spec, keysource.Options{})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("New = %v\nwant %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("the error quotes the credentials: %v", err)
			}
		})
	}
}
