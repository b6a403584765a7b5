package store

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// runRollupTests proves that reports served from the per-minute rollups
// give the answers the raw records give, on the dialect newURL opens.
func runRollupTests(t *testing.T, open func(t *testing.T, url string) *DB, newURL func(t *testing.T) string) {
	t.Run("RollupsEqualRecords", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		rng := rand.New(rand.NewPCG(17, 17))
		base := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
		var all []keygate.UsageRecord
		// Several batches, whose minutes overlap, so rollup rows are added to.
		for range 6 {
			batch := make([]keygate.UsageRecord, 40+rng.IntN(80))
			for i := range batch {
				batch[i] = keygate.UsageRecord{
					Time:  base.Add(time.Duration(rng.Int64N(int64(15 * time.Minute)))),
					Model: []string{"a", "b", "c"}[rng.IntN(3)], KeyID: []string{"k1", "k2"}[rng.IntN(2)],
					User: []string{"u1", "u2", ""}[rng.IntN(3)], Token: []string{"t1", "t2"}[rng.IntN(2)],
					Status: []int{200, 200, 429, 502}[rng.IntN(4)], PromptTokens: rng.IntN(1000),
					CompletionTokens: rng.IntN(500), LatencyMS: rng.Int64N(900), Cost: float64(rng.IntN(1000)) / 1e4,
				}
			}
			if err := db.InsertUsage(ctx, batch); err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
		// Ranges on and off minute boundaries, shorter than a minute,
		// open at either end, and empty.
		at := func(d time.Duration) time.Time { return base.Add(d) }
		ranges := [][2]time.Time{
			{}, {at(0), {}}, {{}, at(7 * time.Minute)}, {at(2 * time.Minute), at(9 * time.Minute)},
			{at(90 * time.Second), at(10*time.Minute + 1500*time.Millisecond)},
			{at(3*time.Minute + time.Second), at(3*time.Minute + 50*time.Second)},
			{at(4*time.Minute + 59*time.Second), at(5*time.Minute + time.Second)},
			{at(20 * time.Minute), at(30 * time.Minute)}, {at(5*time.Minute + 7*time.Millisecond), {}},
		}
		for range 20 {
			a, b := at(time.Duration(rng.Int64N(int64(16*time.Minute)))), at(time.Duration(rng.Int64N(int64(16*time.Minute))))
			if b.Before(a) {
				a, b = b, a
			}
			ranges = append(ranges, [2]time.Time{a, b})
		}
		checked := 0
		for _, r := range ranges {
			for _, group := range []string{"", "model", "key", "user", "token"} {
				for _, filter := range []keygate.UsageQuery{{}, {Token: "t2"}, {User: "u1"}} {
					q := filter
					q.From, q.To, q.GroupBy = r[0], r[1], group
					got, err := db.SumUsage(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					want := sumRecords(all, q)
					if !sameTotals(got, want) {
						t.Fatalf("%+v:\n rollups %+v\n records %+v", q, got, want)
					}
					checked++
				}
			}
		}
		t.Logf("%d reports equal the raw records' sums", checked)
	})

	t.Run("MigrationBackfillsRollups", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		// A database from before the rollups: records only.
		recs := []keygate.UsageRecord{record(1), record(2), record(2), record(3), record(61)}
		recs[2].Time = recs[2].Time.Add(30 * time.Second) // the same minute and group as recs[1]
		recs[3].KeyID = "k_2"
		if _, err := db.w.ExecContext(ctx, db.rebind(insertUsageSQL(len(recs))), usageArgs(nil, recs)...); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`DROP TABLE usage_minutes`, `DELETE FROM schema_migrations WHERE version = 20`} {
			if _, err := db.w.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.migrate(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := db.SumUsage(ctx, keygate.UsageQuery{GroupBy: "key"})
		if err != nil {
			t.Fatal(err)
		}
		if want := sumRecords(recs, keygate.UsageQuery{GroupBy: "key"}); !sameTotals(got, want) || len(got) != 2 {
			t.Fatalf("after the migration:\n got %+v\nwant %+v", got, want)
		}
		var n int
		if err := db.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_minutes`).Scan(&n); err != nil || n != 4 {
			t.Fatalf("usage_minutes has %d rows (%v), want 4 (minutes 1, 2, 3 and 61)", n, err)
		}
	})
}

// sumRecords is SumUsage computed in Go over the records themselves.
func sumRecords(recs []keygate.UsageRecord, q keygate.UsageQuery) []keygate.UsageTotal {
	by := map[string]*keygate.UsageTotal{}
	for _, r := range recs {
		if !q.From.IsZero() && r.Time.Before(q.From) || !q.To.IsZero() && !r.Time.Before(q.To) ||
			q.Token != "" && r.Token != q.Token || q.User != "" && r.User != q.User {
			continue
		}
		g := map[string]string{"": "", "model": r.Model, "key": r.KeyID, "user": r.User, "token": r.Token}[q.GroupBy]
		u := by[g]
		if u == nil {
			u = &keygate.UsageTotal{Group: g}
			by[g] = u
		}
		u.Requests++
		u.PromptTokens += int64(r.PromptTokens)
		u.CompletionTokens += int64(r.CompletionTokens)
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		u.Cost += r.Cost
	}
	out := []keygate.UsageTotal{}
	for _, u := range by {
		out = append(out, *u)
	}
	if q.GroupBy == "" && len(out) == 0 {
		out = append(out, keygate.UsageTotal{})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// sameTotals compares totals; costs may differ in the last bits, as sums
// of floats taken in another order do.
func sameTotals(a, b []keygate.UsageTotal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if math.Abs(x.Cost-y.Cost) > 1e-9*math.Max(1, math.Abs(y.Cost)) {
			return false
		}
		x.Cost, y.Cost = 0, 0
		if x != y {
			return false
		}
	}
	return true
}
