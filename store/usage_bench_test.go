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
