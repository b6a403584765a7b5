package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate"
)

// UsageFilter selects usage records. Zero values leave a bound open.
type UsageFilter struct {
	From  time.Time // inclusive
	To    time.Time // exclusive
	Limit int       // at most this many records, oldest first
}

const usageColumns = `time_ms, request_id, user_name, token_name, model, upstream_model, key_id,
	status, attempts, prompt_tokens, completion_tokens, latency_ms, ttft_ms, cost, stream, usage_source`

// usageColumnCount is the number of columns in usageColumns.
const usageColumnCount = 16

// insertChunkRows bounds one multi-row INSERT to 7,500 parameters, under
// SQLite's limit of 32,766 and PostgreSQL's of 65,535.
const insertChunkRows = 500

// InsertUsage writes records in one transaction: all of them or none. An
// empty batch does nothing.
func (db *DB) InsertUsage(ctx context.Context, records []keygate.UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert usage batch: %w", err)
	}
	defer tx.Rollback()

	if db.dialect == DialectSQLite {
		// In-process SQLite has no round trips to save: one prepared
		// single-row statement is parsed once and skips the statement
		// journal a multi-row INSERT needs.
		stmt, err := tx.PrepareContext(ctx, db.insertUsageSQL(1))
		if err != nil {
			return fmt.Errorf("insert usage batch: %w", err)
		}
		defer stmt.Close()
		for i := range records {
			if _, err := stmt.ExecContext(ctx, usageArgs(records[i:i+1])...); err != nil {
				return fmt.Errorf("insert usage batch of %d: %w", len(records), err)
			}
		}
	} else {
		// A multi-row INSERT is one round trip per chunk to a PostgreSQL
		// across a network.
		for chunk := range slices.Chunk(records, insertChunkRows) {
			if _, err := tx.ExecContext(ctx, db.insertUsageSQL(len(chunk)), usageArgs(chunk)...); err != nil {
				return fmt.Errorf("insert usage batch of %d: %w", len(records), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert usage batch of %d: commit: %w", len(records), err)
	}
	return nil
}

func (db *DB) insertUsageSQL(rows int) string {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	var b strings.Builder
	b.Grow(64 + len(usageColumns) + rows*(len(row)+2))
	b.WriteString("INSERT INTO usage_records (")
	b.WriteString(usageColumns)
	b.WriteString(") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return db.rebind(b.String())
}

func usageArgs(records []keygate.UsageRecord) []any {
	args := make([]any, 0, len(records)*usageColumnCount)
	for _, r := range records {
		cost := finite(r.Cost)
		args = append(args,
			r.Time.UnixMilli(), text(r.RequestID), text(r.User), text(r.Token),
			text(r.Model), text(r.UpstreamModel), text(r.KeyID),
			r.Status, r.Attempts, r.PromptTokens, r.CompletionTokens,
			r.LatencyMS, r.TTFTMS, cost, r.Stream, text(r.UsageSource))
	}
	return args
}

// finite makes a cost storable. SQLite stores NaN as NULL, which NOT NULL
// rejects, and an infinite cost would poison every sum it joins. The
// recorder retries a failed batch until it lands, so a record must never be
// unwritable.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// text makes s storable in PostgreSQL, which rejects NUL bytes and invalid
// UTF-8 in text columns. Strings such as the model name come from callers,
// and one bad byte must not block the batch it travels in.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// ListUsage returns the records matching f, ordered by time. Times come back
// in UTC, to the millisecond.
func (db *DB) ListUsage(ctx context.Context, f UsageFilter) ([]keygate.UsageRecord, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	defer tx.Rollback()

	var (
		where []string
		args  []any
	)
	if !f.From.IsZero() {
		where, args = append(where, "time_ms >= ?"), append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where, args = append(where, "time_ms < ?"), append(args, f.To.UnixMilli())
	}
	q := "SELECT " + usageColumns + " FROM usage_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time_ms, id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}

	rows, err := tx.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	defer rows.Close()
	var out []keygate.UsageRecord
	for rows.Next() {
		var (
			r  keygate.UsageRecord
			ms int64
		)
		err := rows.Scan(&ms, &r.RequestID, &r.User, &r.Token, &r.Model, &r.UpstreamModel, &r.KeyID,
			&r.Status, &r.Attempts, &r.PromptTokens, &r.CompletionTokens,
			&r.LatencyMS, &r.TTFTMS, &r.Cost, &r.Stream, &r.UsageSource)
		if err != nil {
			return nil, fmt.Errorf("list usage: scan: %w", err)
		}
		r.Time = time.UnixMilli(ms).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return out, nil
}
