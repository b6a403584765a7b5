package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keygate/keygate"
)

var _ keygate.SessionStore = (*DB)(nil)

// sessionAAD binds a sealed credential to its session.
func sessionAAD(id string) []byte { return []byte("dashboard_sessions." + id) }

// CreateSession stores s with its credential sealed.
func (db *DB) CreateSession(ctx context.Context, s keygate.DashboardSession) error {
	if db.keyring == nil {
		return errNoKeyring
	}
	sealed, err := db.keyring.sealer.Seal([]byte(s.Credential), sessionAAD(s.ID))
	if err != nil {
		return err
	}
	return db.write(ctx, "create session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.rebind("INSERT INTO dashboard_sessions (id, credential, who, expires_ms, created_ms) VALUES (?, ?, ?, ?, ?)"),
			s.ID, sealed, text(s.Who), s.Expires.UnixMilli(), time.Now().UnixMilli())
		return err
	})
}

// FindSession returns the session id with its credential opened.
func (db *DB) FindSession(ctx context.Context, id string) (*keygate.DashboardSession, error) {
	if db.keyring == nil {
		return nil, errNoKeyring
	}
	s := keygate.DashboardSession{ID: id}
	var (
		sealed  []byte
		expires int64
	)
	err := db.read(ctx, "find session", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.rebind("SELECT credential, who, expires_ms FROM dashboard_sessions WHERE id = ?"), id).
			Scan(&sealed, &s.Who, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keygate.Errorf(keygate.ENotFound, "no such dashboard session")
	}
	if err != nil {
		return nil, err
	}
	plain, err := db.keyring.sealer.Open(sealed, sessionAAD(id))
	if err != nil {
		return nil, err
	}
	s.Credential, s.Expires = string(plain), time.UnixMilli(expires)
	return &s, nil
}

// DeleteSession ends session id; an unknown id is no error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	return db.write(ctx, "delete session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.rebind("DELETE FROM dashboard_sessions WHERE id = ?"), id)
		return err
	})
}

// DeleteExpiredSessions drops the sessions expired at now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	return db.write(ctx, "delete expired sessions", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.rebind("DELETE FROM dashboard_sessions WHERE expires_ms <= ?"), now.UnixMilli())
		return err
	})
}
