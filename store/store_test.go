package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestSQLite(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "keygate.db")
	})
}

func TestPostgres(t *testing.T) {
	admin := os.Getenv("KEYGATE_TEST_POSTGRES_URL")
	if admin == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_URL not set; to run against PostgreSQL: " +
			"source scripts/pg-test.sh && go test ./store/")
	}
	runStoreSuite(t, func(t *testing.T) string { return newPostgresDatabase(t, admin) })
}

// newPostgresDatabase creates an empty database for one test, dropped when
// the test ends, and returns its URL.
func newPostgresDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx := context.Background()
	a, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "keygate_test_" + hex.EncodeToString(b)
	if _, err := a.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		a.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		defer a.Close()
		// FORCE ends connections a failed test may have left open.
		if _, err := a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// runStoreSuite runs every dialect-independent test. newURL returns the URL
// of a fresh, empty database each time it is called.
func runStoreSuite(t *testing.T, newURL func(t *testing.T) string) {
	open := func(t *testing.T, url string) *DB {
		t.Helper()
		db, err := Open(context.Background(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}

	t.Run("AuditInsertAndFilter", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
		in := []keygate.AuditEntry{
			{Time: at, Actor: "admin", Action: "llm-models.create", Target: "1", Source: "10.0.0.1", Status: 201},
			{Time: at.Add(time.Minute), Actor: "root", Action: "login.failed", Source: "10.0.0.2", Status: 401},
			{Time: at.Add(2 * time.Minute), Actor: "user:root", Action: "login", Source: "10.0.0.2", Status: 200},
		}
		if err := db.InsertAudit(ctx, in); err != nil {
			t.Fatal(err)
		}
		all, err := db.ListAudit(ctx, keygate.AuditFilter{})
		if err != nil || len(all) != 3 || all[0] != in[2] || all[2] != in[0] {
			t.Fatalf("newest first, as written: %+v %v", all, err)
		}
		got, err := db.ListAudit(ctx, keygate.AuditFilter{From: at.Add(time.Second), To: at.Add(3 * time.Minute), Action: "login.failed", Actor: "root"})
		if err != nil || len(got) != 1 || got[0] != in[1] {
			t.Fatalf("filtered: %+v %v", got, err)
		}
	})

	t.Run("KeyStatesUpsertAndLoad", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		at := time.Date(2026, 5, 6, 7, 8, 9, 123e6, time.UTC)
		wide := keygate.KeyState{KeyID: "k_1", Class: "insufficient_quota", Streak: 2, Retries: 1, Cooling: true,
			BlockedUntil: at.Add(time.Hour), FirstErrorAt: at, LastErrorAt: at, LastError: "quota",
			OperatorDisabled: true, Requests: 10, Successes: 7, Failures: 3, LatencyMS: 700,
			LastUsedAt: at, PromptTokens: 100, CompletionTokens: 50, Cost: 0.25, UpdatedAt: at}
		slot := keygate.KeyState{KeyID: "k_1", Model: "gpt-4o", Class: "rate_limit_exceeded", Streak: 1, Cooling: true,
			BlockedUntil: at.Add(time.Minute), UpdatedAt: at}
		if err := db.SaveKeyStates(ctx, []keygate.KeyState{wide, slot}); err != nil {
			t.Fatal(err)
		}
		wide.Disabled, wide.Streak, wide.Requests = true, 3, 11
		if err := db.SaveKeyStates(ctx, []keygate.KeyState{wide}); err != nil {
			t.Fatal(err)
		}
		// Totals are additions, one per replica, never overwritten by a state.
		totals := keygate.KeyTotals{KeyID: "k_1", Requests: 10, Successes: 7, Failures: 3, LatencyMS: 700,
			LastUsedAt: at, PromptTokens: 100, CompletionTokens: 50, Cost: 0.25}
		if err := db.AddKeyTotals(ctx, []keygate.KeyTotals{totals}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddKeyTotals(ctx, []keygate.KeyTotals{{KeyID: "k_1", Requests: 1, LastUsedAt: at.Add(-time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveKeyStates(ctx, []keygate.KeyState{wide}); err != nil {
			t.Fatal(err)
		}
		got, err := db.LoadKeyStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("want 2 rows (key-wide and one model), got %d", len(got))
		}
		if !reflect.DeepEqual(got[0], wide) || !reflect.DeepEqual(got[1], slot) {
			t.Fatalf("round trip:\n got %+v\n     %+v\nwant %+v\n     %+v", got[0], got[1], wide, slot)
		}
	})

	t.Run("TokensCreateUpsertListDelete", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		a := keygate.TokenSpec{Name: "app", Hash: "h1", User: "alice", Models: []string{"gpt-4o"}, RPM: 60, TPM: 1000,
			Budget: &keygate.Budget{Amount: 5, Period: "daily"}, ExpiresAt: &exp, CreatedAt: exp.Add(-time.Hour)}
		if err := db.CreateToken(ctx, &a); err != nil || a.ID == 0 {
			t.Fatalf("create: %v (id %d)", err, a.ID)
		}
		dup := keygate.TokenSpec{Name: "app", Hash: "h2"}
		if err := db.CreateToken(ctx, &dup); keygate.ErrorCode(err) != keygate.EConflict {
			t.Fatalf("same name: want a conflict, got %v", err)
		}
		y := keygate.TokenSpec{Name: "yaml", Hash: "h3", Models: []string{"*"}}
		if err := db.UpsertToken(ctx, &y); err != nil {
			t.Fatal(err)
		}
		y.Hash, y.RPM = "h4", 10
		if err := db.UpsertToken(ctx, &y); err != nil {
			t.Fatal(err)
		}
		got, err := db.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !reflect.DeepEqual(got[0], a) || got[1].Hash != "h4" || got[1].RPM != 10 {
			t.Fatalf("list:\n got %+v\nwant %+v and the updated yaml token", got, a)
		}
		if err := db.DeleteToken(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteToken(ctx, a.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Fatalf("second delete: want not found, got %v", err)
		}
	})

	t.Run("SumUsageByGroup", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		recs := []keygate.UsageRecord{
			{Time: at, Model: "a", KeyID: "k1", User: "u1", Token: "t1", PromptTokens: 10, CompletionTokens: 5, Cost: 0.5},
			{Time: at.Add(time.Minute), Model: "a", KeyID: "k2", User: "u1", Token: "t2", PromptTokens: 20, CompletionTokens: 1, Cost: 0.25},
			{Time: at.Add(2 * time.Minute), Model: "b", KeyID: "k1", User: "u2", Token: "t2", PromptTokens: 3, CompletionTokens: 4, Cost: 1},
			{Time: at.Add(24 * time.Hour), Model: "b", KeyID: "k1", User: "u2", Token: "t2", PromptTokens: 100, CompletionTokens: 100, Cost: 9},
		}
		if err := db.InsertUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		day := keygate.UsageQuery{From: at, To: at.Add(time.Hour)}
		cases := []struct {
			group string
			q     keygate.UsageQuery
			want  []keygate.UsageTotal
		}{
			{"model", day, []keygate.UsageTotal{{Group: "a", Requests: 2, PromptTokens: 30, CompletionTokens: 6, TotalTokens: 36, Cost: 0.75}, {Group: "b", Requests: 1, PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, Cost: 1}}},
			{"key", day, []keygate.UsageTotal{{Group: "k1", Requests: 2, PromptTokens: 13, CompletionTokens: 9, TotalTokens: 22, Cost: 1.5}, {Group: "k2", Requests: 1, PromptTokens: 20, CompletionTokens: 1, TotalTokens: 21, Cost: 0.25}}},
			{"user", keygate.UsageQuery{}, []keygate.UsageTotal{{Group: "u1", Requests: 2, PromptTokens: 30, CompletionTokens: 6, TotalTokens: 36, Cost: 0.75}, {Group: "u2", Requests: 2, PromptTokens: 103, CompletionTokens: 104, TotalTokens: 207, Cost: 10}}},
			{"token", keygate.UsageQuery{Token: "t2", From: at}, []keygate.UsageTotal{{Group: "t2", Requests: 3, PromptTokens: 123, CompletionTokens: 105, TotalTokens: 228, Cost: 10.25}}},
			{"", keygate.UsageQuery{User: "u1"}, []keygate.UsageTotal{{Group: "", Requests: 2, PromptTokens: 30, CompletionTokens: 6, TotalTokens: 36, Cost: 0.75}}},
		}
		for _, tc := range cases {
			tc.q.GroupBy = tc.group
			got, err := db.SumUsage(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("group_by %q:\n got %+v\nwant %+v", tc.group, got, tc.want)
			}
		}
		if _, err := db.SumUsage(ctx, keygate.UsageQuery{GroupBy: "planet"}); keygate.ErrorCode(err) != keygate.EInvalidRequest {
			t.Fatalf("unknown group_by: %v", err)
		}
	})

	t.Run("MigrationsAppliedOnce", func(t *testing.T) {
		ctx := context.Background()
		url := newURL(t)
		// Several replicas starting at once on an empty database.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				db, err := Open(ctx, url)
				if err != nil {
					t.Errorf("concurrent Open: %v", err)
					return
				}
				db.Close()
			})
		}
		wg.Wait()
		db := open(t, url)
		if err := db.InsertUsage(ctx, []keygate.UsageRecord{record(0)}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db = open(t, url) // a restart

		want, err := loadMigrations(db.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		var total, distinct int
		err = db.w.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&total, &distinct)
		if err != nil {
			t.Fatal(err)
		}
		if total != len(want) || distinct != len(want) {
			t.Errorf("schema_migrations has %d rows (%d versions), want %d", total, distinct, len(want))
		}
		if got := listAll(t, db); len(got) != 1 {
			t.Errorf("after reopen: %d records, want 1", len(got))
		}
	})

	t.Run("InsertAndReadBack", func(t *testing.T) {
		db := open(t, newURL(t))
		ctx := context.Background()
		// Times in a zone other than UTC, with sub-millisecond parts.
		tz := time.FixedZone("UTC+8", 8*3600)
		recs := []keygate.UsageRecord{
			{
				Time: time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, tz), RequestID: "req-1",
				User: "alice", Token: "app", Model: "gpt-4o-mini", UpstreamModel: "gpt-4o-mini-2024-07-18",
				KeyID: "k_0123456789abcdef", Status: 200, Attempts: 2, PromptTokens: 1200,
				CompletionTokens: 345, LatencyMS: 812, TTFTMS: 95, Cost: 0.000387, Stream: true,
			},
			{
				Time: time.Date(2025, 3, 1, 4, 0, 1, 999_999_999, time.UTC), RequestID: "req-2",
				User: "bob", Token: "batch", Model: "text-embedding-3-small", KeyID: "k_fedcba9876543210",
				Status: 429, Attempts: 4, LatencyMS: 3, Cost: 0,
			},
			{Time: time.UnixMilli(1 << 41).UTC(), RequestID: "req-3", Status: 503, PromptTokens: 1 << 40},
		}
		if err := db.InsertUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got := listAll(t, db)
		// Ordered by time: req-1 (04:00:00.123Z) before req-2 (04:00:01.999Z).
		want := []keygate.UsageRecord{recs[0], recs[1], recs[2]}
		for i := range want {
			want[i].Time = want[i].Time.Truncate(time.Millisecond).UTC()
		}
		if len(got) != len(want) {
			t.Fatalf("got %d records, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
			if got[i].Time.Location() != time.UTC {
				t.Errorf("record %d: time in %v, want UTC", i, got[i].Time.Location())
			}
		}
	})

	t.Run("Filter", func(t *testing.T) {
		db := open(t, newURL(t))
		var recs []keygate.UsageRecord
		for i := range 10 {
			recs = append(recs, record(i))
		}
		if err := db.InsertUsage(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		base := record(0).Time
		tests := []struct {
			name string
			f    UsageFilter
			want []string // request ids
		}{
			{"all", UsageFilter{}, ids(recs)},
			{"from inclusive", UsageFilter{From: base.Add(7 * time.Minute)}, []string{"req-7", "req-8", "req-9"}},
			{"to exclusive", UsageFilter{To: base.Add(2 * time.Minute)}, []string{"req-0", "req-1"}},
			{"range", UsageFilter{From: base.Add(3 * time.Minute), To: base.Add(5 * time.Minute)}, []string{"req-3", "req-4"}},
			{"limit", UsageFilter{From: base.Add(time.Minute), Limit: 2}, []string{"req-1", "req-2"}},
			{"empty range", UsageFilter{From: base.Add(time.Hour)}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.ListUsage(context.Background(), tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if g := ids(got); strings.Join(g, ",") != strings.Join(tt.want, ",") {
					t.Errorf("got %v, want %v", g, tt.want)
				}
			})
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		db := open(t, newURL(t))
		// More rows than one INSERT statement carries.
		recs := make([]keygate.UsageRecord, 2*insertChunkRows+7)
		for i := range recs {
			recs[i] = record(i)
		}
		if err := db.InsertUsage(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, db); len(got) != len(recs) {
			t.Errorf("got %d records, want %d", len(got), len(recs))
		}
	})

	t.Run("EmptyBatchIsNoOp", func(t *testing.T) {
		db := open(t, newURL(t))
		// A canceled context proves no transaction is even begun.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, batch := range [][]keygate.UsageRecord{nil, {}} {
			if err := db.InsertUsage(ctx, batch); err != nil {
				t.Errorf("InsertUsage(%v) = %v, want nil", batch, err)
			}
		}
		if got := listAll(t, db); len(got) != 0 {
			t.Errorf("got %d records, want 0", len(got))
		}
	})

	t.Run("FailedBatchLeavesNothing", func(t *testing.T) {
		db := open(t, newURL(t))
		ctx := context.Background()
		rejectRequestID(t, db, "poison")
		poison := record(2)
		poison.RequestID = "poison"
		// The bad row is last, after the good ones have been sent; and in a
		// second chunk, after a whole INSERT statement has succeeded.
		batch := []keygate.UsageRecord{record(0), record(1), poison}
		big := make([]keygate.UsageRecord, insertChunkRows+1)
		for i := range big {
			big[i] = record(i)
		}
		big[len(big)-1] = poison
		for _, b := range [][]keygate.UsageRecord{batch, big} {
			if err := db.InsertUsage(ctx, b); err == nil {
				t.Fatalf("InsertUsage with a rejected row: want error")
			}
			if got := listAll(t, db); len(got) != 0 {
				t.Fatalf("after a failed batch of %d: %d records left behind", len(b), len(got))
			}
		}

		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := db.InsertUsage(canceled, batch[:2]); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled context: err = %v, want context.Canceled", err)
		}
		// The store is still usable.
		if err := db.InsertUsage(ctx, batch[:2]); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, db); len(got) != 2 {
			t.Errorf("got %d records, want 2", len(got))
		}
	})

	t.Run("UnstorableValuesAreCleaned", func(t *testing.T) {
		db := open(t, newURL(t))
		r := record(0)
		r.Model = "gpt\x00-4\xff"
		r.Cost = math.NaN()
		if err := db.InsertUsage(context.Background(), []keygate.UsageRecord{r}); err != nil {
			t.Fatalf("a record with NUL, invalid UTF-8 and NaN must still be written: %v", err)
		}
		got := listAll(t, db)
		if len(got) != 1 || got[0].Model != "gpt-4\uFFFD" || got[0].Cost != 0 {
			t.Errorf("got %+v", got)
		}
	})

	runRollupTests(t, open, newURL)

	t.Run("Ping", func(t *testing.T) {
		db := open(t, newURL(t))
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// rejectRequestID installs a trigger that fails any insert of a row with the
// given request id, to break a batch half-way.
func rejectRequestID(t *testing.T, db *DB, id string) {
	t.Helper()
	var stmts []string
	switch db.Dialect() {
	case DialectSQLite:
		stmts = []string{fmt.Sprintf(`CREATE TRIGGER reject_row BEFORE INSERT ON usage_records
			WHEN NEW.request_id = '%s' BEGIN SELECT RAISE(ABORT, 'rejected by test'); END`, id)}
	case DialectPostgres:
		stmts = []string{
			`CREATE FUNCTION reject_row() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN RAISE EXCEPTION 'rejected by test'; END $$`,
			fmt.Sprintf(`CREATE TRIGGER reject_row BEFORE INSERT ON usage_records FOR EACH ROW
				WHEN (NEW.request_id = '%s') EXECUTE FUNCTION reject_row()`, id),
		}
	}
	for _, s := range stmts {
		if _, err := db.w.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("install trigger: %v", err)
		}
	}
}

// record returns a distinct record, one minute after record(i-1).
func record(i int) keygate.UsageRecord {
	return keygate.UsageRecord{
		Time:      time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
		RequestID: fmt.Sprintf("req-%d", i),
		Model:     "gpt-4o-mini", KeyID: "k_1", Token: "app", Status: 200, Attempts: 1,
		PromptTokens: i, CompletionTokens: 2 * i, Cost: float64(i) / 1000,
	}
}

func listAll(t *testing.T, db *DB) []keygate.UsageRecord {
	t.Helper()
	recs, err := db.ListUsage(context.Background(), UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func ids(recs []keygate.UsageRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestID)
	}
	return out
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	tests := []struct{ url, want string }{
		{"mysql://root:secret@localhost/keygate", `"mysql"`},
		{"redis://localhost:6379", `"redis"`},
		{"./data/keygate.db", "no scheme"},
		{"", "no scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			db, err := Open(context.Background(), tt.url)
			if err == nil {
				db.Close()
				t.Fatal("want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "keygate.db")
	db, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
	if db.Dialect() != DialectSQLite {
		t.Errorf("Dialect() = %q", db.Dialect())
	}
	var mode string
	if err := db.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenSQLiteMemory(t *testing.T) {
	db, err := Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.InsertUsage(context.Background(), []keygate.UsageRecord{record(1)}); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, db); len(got) != 1 {
		t.Errorf("got %d records, want 1", len(got))
	}
}

func TestRebind(t *testing.T) {
	pg := &DB{dialect: DialectPostgres}
	lite := &DB{dialect: DialectSQLite}
	q := "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"
	if got, want := pg.rebind(q), "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"; got != want {
		t.Errorf("postgres: %q, want %q", got, want)
	}
	if got := lite.rebind(q); got != q {
		t.Errorf("sqlite: %q, want it unchanged", got)
	}
}
