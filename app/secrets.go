package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/secret"
	"github.com/keygate/keygate/store"
)

// Settings the server keeps in the store, sealed with the master key.
const (
	// settingKeyringCheck holds a sealed random value: if it does not open,
	// the master key is not the one the stored keys were encrypted with.
	settingKeyringCheck = "keyring_check"
	settingJWTSecret    = "jwt_secret"
)

// minJWTSecret is the shortest KEYGATE_JWT_SECRET accepted (HS256 wants 32 bytes).
const minJWTSecret = 32

// openSecrets returns the keyring that seals provider keys and the key
// that signs login tokens. The master key is KEYGATE_MASTER_KEY, else the
// one kept in the data directory, generated there on first start; a
// database written under another master key is refused at start.
func openSecrets(ctx context.Context, cfg *config.Config, db *store.DB, log *slog.Logger) (*secret.Keyring, []byte, error) {
	check, sealedBefore, err := db.Setting(ctx, settingKeyringCheck)
	if err != nil {
		return nil, nil, err
	}
	master, where, err := masterKey(cfg, sealedBefore, log)
	if err != nil {
		return nil, nil, err
	}
	kr, err := secret.NewKeyring(master)
	if err != nil {
		return nil, nil, err
	}
	if !sealedBefore {
		sealed, _ := kr.Seal(random(16), []byte(settingKeyringCheck))
		if check, err = db.InitSetting(ctx, settingKeyringCheck, sealed); err != nil {
			return nil, nil, err
		}
	}
	if _, err := kr.Open(check, []byte(settingKeyringCheck)); err != nil {
		return nil, nil, fmt.Errorf("the master key from %s is not the one this database's keys were encrypted with", where)
	}

	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < minJWTSecret {
			return nil, nil, fmt.Errorf("KEYGATE_JWT_SECRET must be at least %d characters", minJWTSecret)
		}
		return kr, []byte(cfg.JWTSecret), nil
	}
	// Generated once and shared through the store, so every replica and
	// every restart accepts the same login tokens.
	sealed, _ := kr.Seal(random(32), []byte(settingJWTSecret))
	stored, err := db.InitSetting(ctx, settingJWTSecret, sealed)
	if err != nil {
		return nil, nil, err
	}
	jwtKey, err := kr.Open(stored, []byte(settingJWTSecret))
	if err != nil {
		return nil, nil, fmt.Errorf("stored login token secret: %w", err)
	}
	return kr, jwtKey, nil
}

// masterKey finds the master key and says where it came from.
// sealedBefore tells that the database already holds sealed values, in
// which case a missing key file is an error rather than a new key.
//
// KEYGATE_MASTER_KEY_FILE puts the key file elsewhere than the data
// directory, so a copy of the data (a backup, a volume snapshot) does not
// carry the key that opens it.
func masterKey(cfg *config.Config, sealedBefore bool, log *slog.Logger) (key []byte, where string, err error) {
	if cfg.MasterKey != "" {
		key, err := secret.ParseMasterKey(cfg.MasterKey)
		if err != nil {
			return nil, "", fmt.Errorf("KEYGATE_MASTER_KEY %w", err)
		}
		return key, "KEYGATE_MASTER_KEY", nil
	}
	path := cfg.MasterKeyFile
	if path == "" {
		dir, persistent := dataDir(cfg.DatabaseURL)
		if !persistent {
			// An in-memory database forgets everything at exit; so may its key.
			return random(secret.MasterKeySize), "memory", nil
		}
		path = filepath.Join(dir, secret.MasterKeyFile)
	}
	key, found, err := secret.ReadMasterKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	if found {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the master key file is readable by others; chmod 600 it", "file", path)
		}
		return key, path, nil
	}
	if sealedBefore {
		return nil, "", fmt.Errorf("this database holds keys encrypted with a master key that is neither in KEYGATE_MASTER_KEY nor in %s: restore that file, point KEYGATE_MASTER_KEY_FILE at it or set KEYGATE_MASTER_KEY", path)
	}
	if key, err = secret.CreateMasterKeyFile(path); err != nil {
		return nil, "", err
	}
	log.Warn("KEYGATE_MASTER_KEY is not set: generated a master key to encrypt provider keys; back it up, since the stored keys cannot be read without it, or set KEYGATE_MASTER_KEY",
		"file", path)
	return key, path, nil
}

// dataDir is where a generated master key lives: beside the SQLite file,
// or ./data for PostgreSQL. persistent is false for an in-memory database.
func dataDir(databaseURL string) (dir string, persistent bool) {
	if path, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
		path = strings.TrimPrefix(path, "//")
		if path == ":memory:" {
			return "", false
		}
		return filepath.Dir(path), true
	}
	return "data", true
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
