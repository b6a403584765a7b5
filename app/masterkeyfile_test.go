package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/app"
)

// TestMasterKeyFileOutsideTheDataDir keeps the master key where
// KEYGATE_MASTER_KEY_FILE says, so a copy of the data directory does not
// carry the key that opens it.
func TestMasterKeyFileOutsideTheDataDir(t *testing.T) {
	data, secrets := t.TempDir(), t.TempDir()
	keyFile := filepath.Join(secrets, "keygate", "master.key")
	open := func() error {
		cfg := baseConfig(t, data)
		cfg.MasterKeyFile = keyFile
		a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			a.Store().Close()
		}
		return err
	}
	if err := open(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the master key must be generated at KEYGATE_MASTER_KEY_FILE with mode 0600: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); !os.IsNotExist(err) {
		t.Fatalf("no master key may be written to the data directory: %v", err)
	}
	if err := open(); err != nil {
		t.Fatalf("a restart must read the key from KEYGATE_MASTER_KEY_FILE: %v", err)
	}
	// Without the variable, the database's key is nowhere to be found.
	cfg := baseConfig(t, data)
	a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		a.Store().Close()
		t.Fatal("a database sealed with a key kept elsewhere must not open with a new key")
	}
}
