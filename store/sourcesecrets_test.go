package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A rotated refresh token is kept sealed, replaced in place, and opens
// only under the master key that sealed it.
func TestSourceSecrets(t *testing.T) {
	run := func(t *testing.T, url string) {
		ctx := context.Background()
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.UseKeyring(testKeyring(t, 7))
		if _, found, err := db.LoadSecret(ctx, "k_1"); found || err != nil {
			t.Fatalf("LoadSecret before any save = %v, %v", found, err)
		}
		for _, v := range []string{"rt-first-0123456789", "rt-second-0123456789"} {
			if err := db.SaveSecret(ctx, "k_1", v); err != nil {
				t.Fatal(err)
			}
		}
		if v, found, err := db.LoadSecret(ctx, "k_1"); v != "rt-second-0123456789" || !found || err != nil {
			t.Errorf("LoadSecret = %q, %v, %v", v, found, err)
		}
		var sealed []byte
		if err := db.r.QueryRowContext(ctx, "SELECT value FROM source_secrets").Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte("rt-second")) {
			t.Error("the refresh token is stored in clear")
		}
		db.UseKeyring(testKeyring(t, 8))
		if _, _, err := db.LoadSecret(ctx, "k_1"); err == nil {
			t.Error("opened under another master key")
		}
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "sqlite://"+filepath.Join(t.TempDir(), "keygate.db")) })
	t.Run("postgres", func(t *testing.T) {
		admin := os.Getenv("KEYGATE_TEST_POSTGRES_URL")
		if admin == "" {
			t.Skip("KEYGATE_TEST_POSTGRES_URL not set; source scripts/pg-test.sh first")
		}
		run(t, newPostgresDatabase(t, admin))
	})
}
