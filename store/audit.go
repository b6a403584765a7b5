package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// InsertAudit writes a batch of audit entries in one transaction.
func (db *DB) InsertAudit(ctx context.Context, entries []keygate.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert audit: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, db.rebind("INSERT INTO audit_log (time_ms, actor, action, target, source, status) VALUES (?, ?, ?, ?, ?, ?)"))
	if err != nil {
		return fmt.Errorf("insert audit: %w", err)
	}
	defer stmt.Close()
	for _, e := range entries {
		if _, err := stmt.ExecContext(ctx, e.Time.UnixMilli(), text(e.Actor), text(e.Action), text(e.Target), text(e.Source), e.Status); err != nil {
			return fmt.Errorf("insert audit: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert audit: commit: %w", err)
	}
	return nil
}

// ListAudit returns the entries matching f, newest first.
func (db *DB) ListAudit(ctx context.Context, f keygate.AuditFilter) ([]keygate.AuditEntry, error) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "time_ms >= ?"), append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where, args = append(where, "time_ms < ?"), append(args, f.To.UnixMilli())
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	q := "SELECT time_ms, actor, action, target, source, status FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time_ms DESC, id DESC LIMIT ?"
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	args = append(args, limit)
	rows, err := db.r.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []keygate.AuditEntry{}
	for rows.Next() {
		var e keygate.AuditEntry
		var ms int64
		if err := rows.Scan(&ms, &e.Actor, &e.Action, &e.Target, &e.Source, &e.Status); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
