package usage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/usage"
)

func TestConcurrentRecordsAllArriveAfterClose(t *testing.T) {
	db := openStore(t)
	// A small queue makes senders block and wait for the writer.
	rec := usage.NewRecorder(db, testLogger(t), usage.Options{
		BatchSize: 64, Buffer: 128, Clock: clockwork.NewFakeClock(),
	})
	runDone := start(t, rec, t.Context())

	const goroutines, each = 32, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := rec.Record(record(fmt.Sprintf("g%d-%d", g, i))); err != nil {
					t.Errorf("Record: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := rec.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-runDone
	assertStored(t, db, goroutines*each)
}

func TestRecordRacingCloseLosesNothingAccepted(t *testing.T) {
	db := openStore(t)
	rec := usage.NewRecorder(db, testLogger(t), usage.Options{
		BatchSize: 16, Buffer: 32, Clock: clockwork.NewFakeClock(),
	})
	start(t, rec, t.Context())

	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := rec.Record(record(fmt.Sprintf("g%d-%d", g, i)))
				if errors.Is(err, usage.ErrClosed) {
					return
				}
				accepted.Add(1)
			}
		})
	}
	// Let some records through, then close under the senders' feet.
	waitFor(t, "records accepted", func() bool { return accepted.Load() > 500 })
	if err := rec.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	assertStored(t, db, int(accepted.Load()))
}

func TestPartialBatchFlushedAfterInterval(t *testing.T) {
	db := openStore(t)
	clock := clockwork.NewFakeClock()
	rec := usage.NewRecorder(db, testLogger(t), usage.Options{
		BatchSize: 100, FlushInterval: 500 * time.Millisecond, Clock: clock,
	})
	start(t, rec, t.Context())

	for i := range 2 {
		rec.Record(record(fmt.Sprint(i)))
		// The flush timer is armed once the record is in a batch.
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(500 * time.Millisecond)
		waitFor(t, "partial batch written", func() bool { return len(list(t, db)) == i+1 })
	}
}

func TestFailedWritesAreRetried(t *testing.T) {
	db := openStore(t)
	clock := clockwork.NewFakeClock()
	var logs syncBuffer
	flaky := &flakyStore{UsageStore: db, failures: 3, failed: make(chan struct{}, 3)}
	rec := usage.NewRecorder(flaky, slog.New(slog.NewTextHandler(&logs, nil)), usage.Options{
		BatchSize: 10, Clock: clock,
	})
	start(t, rec, t.Context())

	const n = 25 // two full batches and a partial one
	for i := range n {
		rec.Record(record(fmt.Sprint(i)))
	}
	for range 3 {
		<-flaky.failed
		// The backoff timer; advance past it, whatever its length.
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertStored(t, db, n)
	if got := strings.Count(logs.String(), `msg="write usage batch"`); got != 3 {
		t.Errorf("logged %d write failures, want 3 (one per failure):\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "attempt=3") {
		t.Errorf("failure log does not count attempts:\n%s", logs.String())
	}
}

func TestCloseTimesOutThenRetries(t *testing.T) {
	db := openStore(t)
	down := &flakyStore{UsageStore: db, failures: 1 << 30, failed: make(chan struct{}, 1)}
	rec := usage.NewRecorder(down, testLogger(t), usage.Options{Clock: clockwork.NewFakeClock()})
	// Run never started: Close writes on its own.
	for i := range 5 {
		rec.Record(record(fmt.Sprint(i)))
	}

	ctx, cancel := context.WithCancel(t.Context())
	closed := make(chan error)
	go func() { closed <- rec.Close(ctx) }()
	<-down.failed
	cancel()
	err := <-closed
	if err == nil || !strings.Contains(err.Error(), "5 records not written") {
		t.Fatalf("Close = %v, want an error counting 5 unwritten records", err)
	}

	down.heal()
	if err := rec.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertStored(t, db, 5)
}

func TestRunStoppedByContextThenClose(t *testing.T) {
	db := openStore(t)
	clock := clockwork.NewFakeClock()
	rec := usage.NewRecorder(db, testLogger(t), usage.Options{BatchSize: 100, Clock: clock})
	ctx, cancel := context.WithCancel(t.Context())
	runDone := start(t, rec, ctx)

	for i := range 5 {
		rec.Record(record(fmt.Sprint(i)))
	}
	if err := clock.BlockUntilContext(t.Context(), 1); err != nil { // a batch in hand
		t.Fatal(err)
	}
	// The server's context ends first (SIGTERM); Close comes after.
	cancel()
	<-runDone
	if err := rec.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertStored(t, db, 5)
}

func TestRecordAfterClose(t *testing.T) {
	db := openStore(t)
	var logs syncBuffer
	rec := usage.NewRecorder(db, slog.New(slog.NewTextHandler(&logs, nil)), usage.Options{})
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(record("late")); !errors.Is(err, usage.ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning logged for a dropped record:\n%s", logs.String())
	}
	if err := rec.Run(t.Context()); err == nil {
		t.Error("Run after Close: want error")
	}
	assertStored(t, db, 0)
}

func BenchmarkRecord(b *testing.B) {
	rec := usage.NewRecorder(discard{}, nil, usage.Options{})
	go rec.Run(b.Context())
	r := record("bench")
	r.Time = time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Record(r)
		}
	})
	b.StopTimer()
	if err := rec.Close(b.Context()); err != nil {
		b.Fatal(err)
	}
}

type discard struct{}

func (discard) InsertUsage(context.Context, []keygate.UsageRecord) error { return nil }

// flakyStore fails its first failures writes, signalling each on failed.
type flakyStore struct {
	keygate.UsageStore
	mu       sync.Mutex
	failures int
	failed   chan struct{}
}

func (s *flakyStore) InsertUsage(ctx context.Context, recs []keygate.UsageRecord) error {
	s.mu.Lock()
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		select {
		case s.failed <- struct{}{}:
		default:
		}
		return errors.New("database is down")
	}
	return s.UsageStore.InsertUsage(ctx, recs)
}

func (s *flakyStore) heal() {
	s.mu.Lock()
	s.failures = 0
	s.mu.Unlock()
}

// start runs rec in the background; the returned channel closes when Run
// returns.
func start(t *testing.T, rec *usage.Recorder, ctx context.Context) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rec.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		rec.Close(context.Background())
		<-done
	})
	return done
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func record(id string) keygate.UsageRecord {
	return keygate.UsageRecord{
		Time:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		RequestID: id, Model: "gpt-4o-mini", KeyID: "k_1", Status: 200, Attempts: 1,
		PromptTokens: 10, CompletionTokens: 20,
	}
}

func list(t *testing.T, db *store.DB) []keygate.UsageRecord {
	t.Helper()
	recs, err := db.ListUsage(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// assertStored checks that the store holds exactly n records, none twice.
func assertStored(t *testing.T, db *store.DB, n int) {
	t.Helper()
	recs := list(t, db)
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		if seen[r.RequestID] {
			t.Errorf("record %s stored twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
	if len(recs) != n {
		t.Errorf("store holds %d records, want %d", len(recs), n)
	}
}

// waitFor polls cond until it holds; only for writes that land asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
