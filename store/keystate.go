package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keygate/keygate"
)

var _ keygate.KeyStateStore = (*DB)(nil)

const keyStateColumns = `key_id, model, class, streak, retries, disabled, cooling, blocked_until_ms,
	first_error_ms, last_error_ms, last_error, operator_disabled, requests, successes, failures,
	latency_ms, last_used_ms, prompt_tokens, completion_tokens, cost, updated_ms`

// SaveKeyStates upserts a batch of key states in one transaction. The
// totals are not written here: several replicas share a key, so its totals
// are sums of additions (AddKeyTotals), never overwritten.
func (db *DB) SaveKeyStates(ctx context.Context, states []keygate.KeyState) error {
	if len(states) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save key states: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO key_states (`+keyStateColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id, model) DO UPDATE SET
		class = excluded.class, streak = excluded.streak, retries = excluded.retries,
		disabled = excluded.disabled, cooling = excluded.cooling, blocked_until_ms = excluded.blocked_until_ms,
		first_error_ms = excluded.first_error_ms, last_error_ms = excluded.last_error_ms,
		last_error = excluded.last_error, operator_disabled = excluded.operator_disabled,
		updated_ms = excluded.updated_ms`))
	if err != nil {
		return fmt.Errorf("save key states: prepare: %w", err)
	}
	defer stmt.Close()
	for _, s := range states {
		_, err := stmt.ExecContext(ctx, text(s.KeyID), text(s.Model), text(s.Class), s.Streak, s.Retries,
			s.Disabled, s.Cooling, ms(s.BlockedUntil), ms(s.FirstErrorAt), ms(s.LastErrorAt), text(s.LastError),
			s.OperatorDisabled, 0, 0, 0, 0, 0, 0, 0, 0.0, ms(s.UpdatedAt))
		if err != nil {
			return fmt.Errorf("save key state %s: %w", s.KeyID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save key states: commit: %w", err)
	}
	return nil
}

// LoadKeyStates returns every saved key state.
func (db *DB) LoadKeyStates(ctx context.Context) ([]keygate.KeyState, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("load key states: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT "+keyStateColumns+" FROM key_states ORDER BY key_id, model")
	if err != nil {
		return nil, fmt.Errorf("load key states: %w", err)
	}
	defer rows.Close()
	var out []keygate.KeyState
	for rows.Next() {
		var s keygate.KeyState
		var blocked, first, last, used, updated int64
		if err := rows.Scan(&s.KeyID, &s.Model, &s.Class, &s.Streak, &s.Retries, &s.Disabled, &s.Cooling,
			&blocked, &first, &last, &s.LastError, &s.OperatorDisabled, &s.Requests, &s.Successes,
			&s.Failures, &s.LatencyMS, &used, &s.PromptTokens, &s.CompletionTokens, &s.Cost, &updated); err != nil {
			return nil, fmt.Errorf("load key states: scan: %w", err)
		}
		s.BlockedUntil, s.FirstErrorAt, s.LastErrorAt = fromMS(blocked), fromMS(first), fromMS(last)
		s.LastUsedAt, s.UpdatedAt = fromMS(used), fromMS(updated)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load key states: %w", err)
	}
	return out, tx.Commit()
}

// ms stores a time as UTC unix milliseconds, the zero time as 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
