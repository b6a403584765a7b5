package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sourceSecretAAD binds a sealed source secret to its row.
func sourceSecretAAD(name string) []byte { return []byte("source_secrets." + name) }

// LoadSecret returns the source secret stored under name, opened.
func (db *DB) LoadSecret(ctx context.Context, name string) (value string, found bool, err error) {
	if db.keyring == nil {
		return "", false, errNoKeyring
	}
	var sealed []byte
	err = db.read(ctx, "read source secret", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.rebind("SELECT value FROM source_secrets WHERE name = ?"), name).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil || !found {
		return "", false, err
	}
	plain, err := db.keyring.sealer.Open(sealed, sourceSecretAAD(name))
	if err != nil {
		return "", false, fmt.Errorf("source secret %s: %w", name, err)
	}
	return string(plain), true, nil
}

// SaveSecret seals value and stores it under name, replacing what was there.
func (db *DB) SaveSecret(ctx context.Context, name, value string) error {
	if db.keyring == nil {
		return errNoKeyring
	}
	sealed, err := db.keyring.sealer.Seal([]byte(value), sourceSecretAAD(name))
	if err != nil {
		return fmt.Errorf("seal source secret: %w", err)
	}
	return db.write(ctx, "save source secret", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO source_secrets (name, value, updated_ms) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms`),
			name, sealed, time.Now().UnixMilli())
		return err
	})
}
