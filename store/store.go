// Package store is the persistent state of keygate over database/sql: SQLite
// (embedded, the default) or PostgreSQL (shared by several replicas). Both
// dialects run the same SQL, written with ? placeholders and rebound for
// PostgreSQL in one place; only the schema files differ.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// Dialects, as reported by DB.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// DB is an open store. It implements keygate.Store.
type DB struct {
	dialect string
	// w takes every write. For a SQLite file it is a single connection, so
	// writers queue in Go instead of failing with SQLITE_BUSY.
	w *sql.DB
	// r serves reads. For a SQLite file it is a separate read-only pool, so a
	// long report never holds up the usage writer (WAL lets both run at once);
	// otherwise it is the same pool as w.
	r *sql.DB
	// keyring seals provider keys and names them; set by UseKeyring.
	keyring *keyring
	// stmts are the prepared usage INSERTs of SQLite, by rows per statement.
	stmtMu sync.Mutex
	stmts  map[int]*sql.Stmt
	// prepared are other prepared SQLite statements, by their text.
	prepared map[string]*sql.Stmt
}

var _ keygate.Store = (*DB)(nil)

// Open connects to the database named by url and applies pending migrations.
//
//	sqlite://./data/keygate.db   a file; its directory is created if missing
//	sqlite:///var/lib/keygate.db an absolute path
//	sqlite::memory:              a private in-memory database (tests, demo)
//	postgres://user:pass@host/db (or postgresql://)
func Open(ctx context.Context, url string) (*DB, error) {
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		db, err = openSQLite(strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = openPostgres(url)
	default:
		// Name only the scheme: the rest of a URL may hold a password.
		scheme, _, ok := strings.Cut(url, ":")
		if !ok || scheme == "" {
			return nil, errors.New("open store: database URL has no scheme (want sqlite:// or postgres://)")
		}
		return nil, fmt.Errorf("open store: unsupported database URL scheme %q (want sqlite:// or postgres://)", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := db.firstPing(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return db, nil
}

// sqliteBase applies to every SQLite connection: wait for a lock instead of
// failing at once, and enforce foreign keys (off by default in SQLite).
const sqliteBase = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite URL has no path (want sqlite://./data/keygate.db)")
	}
	if strings.Contains(path, "?") {
		return nil, errors.New("sqlite path must not contain '?'")
	}
	if path == ":memory:" {
		// Every connection to :memory: is its own database, so there must be
		// exactly one, kept open for the life of the pool.
		db, err := sql.Open("sqlite", ":memory:?"+sqliteBase)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
		return &DB{dialect: DialectSQLite, w: db, r: db}, nil
	}

	// The file holds encrypted keys and token hashes: keep its directory private.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way when it upgrades from reader to writer.
	w, err := sql.Open("sqlite", path+"?"+sqliteBase+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	// Readers map the file (256 MB of it) instead of reading it page by
	// page: a report over a large database otherwise evicts the 2 MB page
	// cache, and the next one pays a pread per page (listing a model's
	// 10,000 keys spent most of its time there). Idle readers are kept, and
	// their mappings with them.
	r, err := sql.Open("sqlite", path+"?"+sqliteBase+"&_pragma=query_only(1)&_pragma=mmap_size(268435456)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &DB{dialect: DialectSQLite, w: w, r: r}, nil
}

func openPostgres(url string) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	// Several replicas share one server; an unbounded pool could use up its
	// max_connections under a burst.
	db.SetMaxOpenConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{dialect: DialectPostgres, w: db, r: db}, nil
}

// firstPing opens the first connection. Switching a new SQLite file to WAL
// takes an exclusive lock for which SQLite does not wait (no busy handler),
// so several processes opening the same new file at once may see "database
// is locked": that case is retried for up to five seconds.
func (db *DB) firstPing(ctx context.Context) error {
	for i := 0; ; i++ {
		err := db.Ping(ctx)
		if err == nil || db.dialect != DialectSQLite || i == 50 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Dialect reports DialectSQLite or DialectPostgres.
func (db *DB) Dialect() string { return db.dialect }

// Ping reports whether the database is reachable.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect, err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s: %w", db.dialect, err)
		}
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	var err error
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		err = errors.Join(err, s.Close())
	}
	for _, s := range db.prepared {
		err = errors.Join(err, s.Close())
	}
	db.stmtMu.Unlock()
	if db.r != db.w {
		err = db.r.Close()
	}
	return errors.Join(err, db.w.Close())
}

// rebind turns the ? placeholders of q into PostgreSQL's $1, $2, … . Queries
// in this package never contain a literal '?', so no quoting is parsed.
func (db *DB) rebind(q string) string {
	if db.dialect != DialectPostgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := range len(q) {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
