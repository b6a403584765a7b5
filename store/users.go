package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate"
)

var _ keygate.UserStore = (*DB)(nil)

// CreateUser adds u; EConflict when its username is taken.
func (db *DB) CreateUser(ctx context.Context, u *keygate.User) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := db.write(ctx, "create user", func(tx *sql.Tx) error {
		limits := ""
		if u.UserLimits.Models != nil || u.RPM != 0 || u.TPM != 0 || u.Budget != nil {
			b, _ := json.Marshal(u.UserLimits)
			limits = string(b)
		}
		err := tx.QueryRowContext(ctx, db.rebind(`INSERT INTO users (username, password_hash, role, created_ms, limits)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING id`),
			text(u.Username), u.PasswordHash, u.Role, now.UnixMilli(), limits).Scan(&u.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return keygate.Errorf(keygate.EConflict, "username %q is taken", u.Username)
		}
		return err
	})
	if err == nil {
		u.CreatedAt = now
	}
	return err
}

const userColumns = "id, username, password_hash, role, created_ms, limits"

// ListUsers returns every user, ordered by id.
func (db *DB) ListUsers(ctx context.Context) ([]keygate.User, error) {
	var out []keygate.User
	err := db.read(ctx, "list users", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			out = append(out, *u)
		}
		return rows.Err()
	})
	return out, err
}

// FindUser returns user id.
func (db *DB) FindUser(ctx context.Context, id int64) (*keygate.User, error) {
	return db.findUser(ctx, "id = ?", id, keygate.Errorf(keygate.ENotFound, "no user with id %d", id))
}

// FindUserByName returns the user called username.
func (db *DB) FindUserByName(ctx context.Context, username string) (*keygate.User, error) {
	return db.findUser(ctx, "username = ?", text(username), keygate.Errorf(keygate.ENotFound, "no user %q", username))
}

func (db *DB) findUser(ctx context.Context, where string, arg any, notFound error) (*keygate.User, error) {
	var u *keygate.User
	err := db.read(ctx, "find user", func(tx *sql.Tx) (err error) {
		u, err = scanUser(tx.QueryRowContext(ctx, db.rebind("SELECT "+userColumns+" FROM users WHERE "+where), arg))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound
		}
		return err
	})
	return u, err
}

func scanUser(row interface{ Scan(...any) error }) (*keygate.User, error) {
	var (
		u       keygate.User
		created int64
		limits  string
	)
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &created, &limits); err != nil {
		return nil, err
	}
	if limits != "" {
		if err := json.Unmarshal([]byte(limits), &u.UserLimits); err != nil {
			return nil, fmt.Errorf("user %s: stored limits: %w", u.Username, err)
		}
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

// DeleteUser removes user id.
func (db *DB) DeleteUser(ctx context.Context, id int64) error {
	return db.write(ctx, "delete user", func(tx *sql.Tx) error {
		return execOne(ctx, tx, keygate.Errorf(keygate.ENotFound, "no user with id %d", id),
			db.rebind("DELETE FROM users WHERE id = ?"), id)
	})
}
