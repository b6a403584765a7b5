package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keygate/keygate"
)

var _ keygate.SettingStore = (*DB)(nil)

// Setting returns the value stored under name.
func (db *DB) Setting(ctx context.Context, name string) (value []byte, found bool, err error) {
	err = db.read(ctx, "read setting", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.rebind("SELECT value FROM settings WHERE name = ?"), name).Scan(&value)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return value, found, err
}

// InitSetting stores value under name unless something is stored already
// (another replica got there first), and returns what is stored.
func (db *DB) InitSetting(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	err := db.write(ctx, "init setting", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rebind("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"), name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, db.rebind("SELECT value FROM settings WHERE name = ?"), name).Scan(&stored)
	})
	return stored, err
}
