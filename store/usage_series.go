package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// UsageSeries totals usage records per time bucket and group, in one
// GROUP BY over the time index: the database aggregates, not the caller.
// Buckets with no records are left out.
func (db *DB) UsageSeries(ctx context.Context, q keygate.SeriesQuery) ([]keygate.UsageBucket, error) {
	col, ok := groupColumns[q.GroupBy]
	if !ok {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "group_by: %q must be one of key, model, user, token", q.GroupBy)
	}
	bucket := q.Bucket.Milliseconds()
	if bucket <= 0 || q.From.IsZero() || q.To.IsZero() {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "usage series needs from, to and a bucket")
	}
	from := q.From.UnixMilli()
	where := []string{"time_ms >= ?", "time_ms < ?"}
	args := []any{from, bucket, from, q.To.UnixMilli()}
	if q.KeyID != "" {
		where, args = append(where, "key_id = ?"), append(args, q.KeyID)
	}
	if q.Model != "" {
		where, args = append(where, "model = ?"), append(args, q.Model)
	}
	sqlText := `SELECT (time_ms - ?) / ? AS bucket, ` + col + `, COUNT(*),
		CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT),
		COALESCE(SUM(cost), 0), CAST(COALESCE(SUM(latency_ms), 0) AS BIGINT)
		FROM usage_records WHERE ` + strings.Join(where, " AND ") + `
		GROUP BY bucket, ` + col + ` ORDER BY bucket, ` + col
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("usage series: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, db.rebind(sqlText), args...)
	if err != nil {
		return nil, fmt.Errorf("usage series: %w", err)
	}
	defer rows.Close()
	out := []keygate.UsageBucket{}
	for rows.Next() {
		var (
			b keygate.UsageBucket
			n int64
		)
		if err := rows.Scan(&n, &b.Group, &b.Requests, &b.Errors, &b.PromptTokens, &b.CompletionTokens, &b.Cost, &b.LatencyMS); err != nil {
			return nil, fmt.Errorf("usage series: scan: %w", err)
		}
		b.Start = time.UnixMilli(from + n*bucket).UTC()
		b.TotalTokens = b.PromptTokens + b.CompletionTokens
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage series: %w", err)
	}
	return out, tx.Commit()
}
