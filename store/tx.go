package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// write runs fn in a write transaction, committed when fn returns nil and
// rolled back otherwise. what names the operation in errors.
func (db *DB) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return db.inTx(ctx, db.w, nil, what, fn)
}

// read runs fn in a read-only transaction.
func (db *DB) read(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return db.inTx(ctx, db.r, &sql.TxOptions{ReadOnly: true}, what, fn)
}

func (db *DB) inTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, what string, fn func(tx *sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// insertRows inserts rows (each len(cols) values) into table; tail
// follows the VALUES (an ON CONFLICT clause). PostgreSQL gets multi-row
// INSERT statements of at most insertChunkRows rows, one round trip each;
// SQLite, in process, one prepared single-row statement run per row, which
// spares it compiling a large statement per chunk.
func (db *DB) insertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	row := "(" + placeholders(len(cols)) + ")"
	if db.dialect == DialectSQLite {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES "+row+" "+tail)
		if err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.ExecContext(ctx, r...); err != nil {
				return fmt.Errorf("insert into %s: %w", table, err)
			}
		}
		return nil
	}
	for chunk := range slices.Chunk(rows, insertChunkRows) {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
		args := make([]any, 0, len(chunk)*len(cols))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
			args = append(args, r...)
		}
		b.WriteString(" " + tail)
		if _, err := tx.ExecContext(ctx, db.rebind(b.String()), args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// execOne runs a statement that must change a row, and answers notFound
// when it changed none.
func execOne(ctx context.Context, tx *sql.Tx, notFound error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}
