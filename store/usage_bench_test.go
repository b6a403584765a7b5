package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// BenchmarkInsertUsage measures the cost of one usage record on the write
// path: batches of 256 (the recorder's default), records spread as a busy
// gateway's are (8 keys, 2 models, 4 tokens, a request every few ms). It
// reports ns and allocations per record; the database is a file (SQLite in
// WAL, as served) or the PostgreSQL of KEYGATE_TEST_POSTGRES_URL.
func BenchmarkInsertUsage(b *testing.B) {
	dbs := map[string]func(b *testing.B) string{
		"sqlite": func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "keygate.db") },
	}
	if admin := os.Getenv("KEYGATE_TEST_POSTGRES_URL"); admin != "" {
		dbs["postgres"] = func(b *testing.B) string { return newPostgresDatabase(b, admin) }
	}
	for _, name := range []string{"sqlite", "postgres"} {
		newURL, ok := dbs[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			db, err := Open(context.Background(), newURL(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const batch = 256
			recs := make([]keygate.UsageRecord, batch)
			for j := range recs {
				recs[j] = keygate.UsageRecord{
					RequestID: fmt.Sprintf("req_0123456789ab_%x", j),
					User:      "alice", Token: fmt.Sprintf("app-%d", j%4), Model: []string{"gpt-4o-mini", "gpt-4o"}[j%2],
					UpstreamModel: "gpt-4o-mini-2024-07-18", KeyID: fmt.Sprintf("k_%016x", j%8), Status: 200, Attempts: 1,
					PromptTokens: 12, CompletionTokens: 16, LatencyMS: 1, TTFTMS: 1, Cost: 0.0000123,
				}
			}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			ctx := context.Background()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range recs {
					recs[j].Time = at.Add(time.Duration(i*batch+j) * 3 * time.Millisecond)
				}
				if err := db.InsertUsage(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			n := float64(b.N * batch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "allocs/record")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n, "B/record")
		})
	}
}

// BenchmarkUsageByKey measures the dashboard's slowest report, usage over
// a rolling 24 h grouped by key, with 10,000 keys and 1,000,000 records
// over 7 days (as BenchmarkDashboard seeds them), on SQLite and on the
// PostgreSQL of KEYGATE_TEST_POSTGRES_URL. Seeding takes a while; run it
// alone: go test ./store -run '^$' -bench UsageByKey -benchtime 10x
func BenchmarkUsageByKey(b *testing.B) {
	dbs := map[string]func(b *testing.B) string{
		"sqlite": func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "keygate.db") },
	}
	if admin := os.Getenv("KEYGATE_TEST_POSTGRES_URL"); admin != "" {
		dbs["postgres"] = func(b *testing.B) string { return newPostgresDatabase(b, admin) }
	}
	const keys, records, span = 10_000, 1_000_000, 7 * 24 * time.Hour
	for _, name := range []string{"sqlite", "postgres"} {
		newURL, ok := dbs[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, newURL(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			batch := make([]keygate.UsageRecord, 0, 20_000)
			for i := range records {
				batch = append(batch, keygate.UsageRecord{
					Time: now.Add(-span / records * time.Duration(records-1-i)), Model: fmt.Sprint("model-", i%5),
					KeyID: fmt.Sprintf("k_%016x", i%keys), User: fmt.Sprint("user", i%50), Token: fmt.Sprint("token", i%20),
					Status: 200, PromptTokens: 100 + i%400, CompletionTokens: 50 + i%200, Cost: 0.0001,
				})
				if len(batch) == cap(batch) {
					if err := db.InsertUsage(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			q := keygate.UsageQuery{From: now.Add(-24 * time.Hour), To: now, GroupBy: "key"}
			b.ResetTimer()
			for b.Loop() {
				out, err := db.SumUsage(ctx, q)
				if err != nil || len(out) != keys {
					b.Fatalf("%d groups, %v", len(out), err)
				}
			}
		})
	}
}
