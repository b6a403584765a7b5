package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// UsageSeries totals usage per time bucket and group. Whole minutes come
// from a per-minute rollup (the narrowest that holds the grouping and
// filters: seriesLevels) when the buckets are whole minutes from a whole
// minute (as the admin route asks), the rest from the raw records, so the
// sums are exact either way. Buckets with no records are left out.
func (db *DB) UsageSeries(ctx context.Context, q keygate.SeriesQuery) ([]keygate.UsageBucket, error) {
	col, ok := groupColumns[q.GroupBy]
	if !ok {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "group_by: %q must be one of key, model, user, token", q.GroupBy)
	}
	bucket := q.Bucket.Milliseconds()
	if bucket <= 0 || q.From.IsZero() || q.To.IsZero() {
		return nil, keygate.Errorf(keygate.EInvalidRequest, "usage series needs from, to and a bucket")
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	args := []any{from, bucket}
	var parts []string
	part := func(table, timeCol, requests, errors string, lo, hi int64) {
		where := []string{timeCol + " >= ?", timeCol + " < ?"}
		args = append(args, lo, hi)
		if q.KeyID != "" {
			where, args = append(where, "key_id = ?"), append(args, q.KeyID)
		}
		if q.Model != "" {
			where, args = append(where, "model = ?"), append(args, q.Model)
		}
		parts = append(parts, "SELECT "+timeCol+" AS t, "+col+" AS g, "+requests+" AS n, "+errors+
			" AS e, prompt_tokens AS p, completion_tokens AS c, cost, latency_ms AS l FROM "+table+" WHERE "+strings.Join(where, " AND "))
	}
	cover(&from, &to, seriesLevels(q), func(l *rollupLevel, lo, hi *int64) {
		if l == nil {
			part("usage_records", "time_ms", "1", "CASE WHEN status >= 400 THEN 1 ELSE 0 END", *lo, *hi)
		} else {
			part(l.table, l.timeCol, "requests", "errors", *lo, *hi)
		}
	})
	sqlText := `SELECT (t - ?) / ? AS bucket, g, CAST(COALESCE(SUM(n), 0) AS BIGINT), CAST(COALESCE(SUM(e), 0) AS BIGINT),
		CAST(COALESCE(SUM(p), 0) AS BIGINT), CAST(COALESCE(SUM(c), 0) AS BIGINT), COALESCE(SUM(cost), 0), CAST(COALESCE(SUM(l), 0) AS BIGINT)
		FROM (` + strings.Join(parts, " UNION ALL ") + `) u GROUP BY bucket, g ORDER BY bucket, g`
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

// seriesLevels are the rollups UsageSeries may read q from: only those
// whose buckets each fall in one of q's buckets.
func seriesLevels(q keygate.SeriesQuery) []rollupLevel {
	l := levelMinutes
	switch {
	case q.KeyID != "" && (q.GroupBy == "" || q.GroupBy == "model" || q.GroupBy == "key"):
		l = levelKeyMinutes
	case q.KeyID == "" && (q.GroupBy == "" || q.GroupBy == "model"):
		l = levelModelMinutes
	}
	if bucket, from := q.Bucket.Milliseconds(), q.From.UnixMilli(); bucket%l.size != 0 || floorTo(from, l.size) != from {
		return nil
	}
	return []rollupLevel{l}
}
