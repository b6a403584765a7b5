package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keygate/keygate"
)

var _ keygate.KeyTotalsStore = (*DB)(nil)

// AddKeyTotals adds each delta to its key's totals in one transaction:
// several replicas writing at once each add their own traffic.
func (db *DB) AddKeyTotals(ctx context.Context, deltas []keygate.KeyTotals) error {
	if len(deltas) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add key totals: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO key_states (key_id, model, requests, successes, failures,
		latency_ms, prompt_tokens, completion_tokens, cost, last_used_ms)
		VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id, model) DO UPDATE SET
		requests = key_states.requests + excluded.requests, successes = key_states.successes + excluded.successes,
		failures = key_states.failures + excluded.failures, latency_ms = key_states.latency_ms + excluded.latency_ms,
		prompt_tokens = key_states.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = key_states.completion_tokens + excluded.completion_tokens,
		cost = key_states.cost + excluded.cost,
		last_used_ms = CASE WHEN excluded.last_used_ms > key_states.last_used_ms THEN excluded.last_used_ms ELSE key_states.last_used_ms END`))
	if err != nil {
		return fmt.Errorf("add key totals: prepare: %w", err)
	}
	defer stmt.Close()
	for _, d := range deltas {
		if _, err := stmt.ExecContext(ctx, text(d.KeyID), d.Requests, d.Successes, d.Failures, d.LatencyMS,
			d.PromptTokens, d.CompletionTokens, finite(d.Cost), ms(d.LastUsedAt)); err != nil {
			return fmt.Errorf("add key totals %s: %w", d.KeyID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add key totals: commit: %w", err)
	}
	return nil
}

// LoadKeyTotals returns every key's totals by key id.
func (db *DB) LoadKeyTotals(ctx context.Context) (map[string]keygate.KeyTotals, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("load key totals: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT key_id, requests, successes, failures, latency_ms, prompt_tokens,
		completion_tokens, cost, last_used_ms FROM key_states WHERE model = ''`)
	if err != nil {
		return nil, fmt.Errorf("load key totals: %w", err)
	}
	defer rows.Close()
	out := map[string]keygate.KeyTotals{}
	for rows.Next() {
		var t keygate.KeyTotals
		var used int64
		if err := rows.Scan(&t.KeyID, &t.Requests, &t.Successes, &t.Failures, &t.LatencyMS, &t.PromptTokens,
			&t.CompletionTokens, &t.Cost, &used); err != nil {
			return nil, fmt.Errorf("load key totals: scan: %w", err)
		}
		t.LastUsedAt = fromMS(used)
		out[t.KeyID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load key totals: %w", err)
	}
	return out, tx.Commit()
}
