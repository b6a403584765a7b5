package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keygate/keygate"
)

var (
	_ keygate.TokenStore  = (*DB)(nil)
	_ keygate.UsageReader = (*DB)(nil)
)

const tokenColumns = `name, hash, user_name, models, rpm, tpm, budget_amount, budget_period, expires_ms, created_ms`

func tokenArgs(t *keygate.TokenSpec) []any {
	models, _ := json.Marshal(t.Models)
	var amount float64
	var period string
	if t.Budget != nil {
		amount, period = t.Budget.Amount, t.Budget.Period
	}
	var expires int64
	if t.ExpiresAt != nil {
		expires = ms(*t.ExpiresAt)
	}
	return []any{text(t.Name), t.Hash, text(t.User), string(models), t.RPM, t.TPM, finite(amount), period, expires, ms(t.CreatedAt)}
}

// CreateToken adds a token; a name or hash already taken is a conflict.
func (db *DB) CreateToken(ctx context.Context, t *keygate.TokenSpec) error {
	if t.Hash == "" {
		return errors.New("create token: no hash")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	defer tx.Rollback()
	var exists int
	if err := tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM tokens WHERE name = ? OR hash = ?`), t.Name, t.Hash).Scan(&exists); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if exists > 0 {
		return keygate.Errorf(keygate.EConflict, "a token named %q (or with the same secret) already exists", t.Name)
	}
	q := db.rebind(`INSERT INTO tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	if err := tx.QueryRowContext(ctx, q, tokenArgs(t)...).Scan(&t.ID); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return tx.Commit()
}

// UpsertToken adds the token or replaces the one with the same name.
func (db *DB) UpsertToken(ctx context.Context, t *keygate.TokenSpec) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("upsert token: %w", err)
	}
	defer tx.Rollback()
	q := db.rebind(`INSERT INTO tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, user_name = excluded.user_name,
		models = excluded.models, rpm = excluded.rpm, tpm = excluded.tpm, budget_amount = excluded.budget_amount,
		budget_period = excluded.budget_period, expires_ms = excluded.expires_ms RETURNING id`)
	if err := tx.QueryRowContext(ctx, q, tokenArgs(t)...).Scan(&t.ID); err != nil {
		return fmt.Errorf("upsert token %s: %w", t.Name, err)
	}
	return tx.Commit()
}

// ListTokens returns every token, by id, with its hash and without secret.
func (db *DB) ListTokens(ctx context.Context) ([]keygate.TokenSpec, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []keygate.TokenSpec
	for rows.Next() {
		var t keygate.TokenSpec
		var models, period string
		var amount float64
		var expires, created int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Hash, &t.User, &models, &t.RPM, &t.TPM, &amount, &period, &expires, &created); err != nil {
			return nil, fmt.Errorf("list tokens: scan: %w", err)
		}
		if err := json.Unmarshal([]byte(models), &t.Models); err != nil {
			return nil, fmt.Errorf("list tokens: models of %s: %w", t.Name, err)
		}
		if period != "" {
			t.Budget = &keygate.Budget{Amount: amount, Period: period}
		}
		if expires != 0 {
			e := fromMS(expires)
			t.ExpiresAt = &e
		}
		t.CreatedAt = fromMS(created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, tx.Commit()
}

// DeleteToken removes a token; an unknown id is ENOTFOUND.
func (db *DB) DeleteToken(ctx context.Context, id int64) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM tokens WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return keygate.Errorf(keygate.ENotFound, "no token with id %d", id)
	}
	return tx.Commit()
}
