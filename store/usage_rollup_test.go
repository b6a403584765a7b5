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
		all := seedRollups(t, db, rng, base)
		// Ranges on and off minute boundaries, shorter than a minute,
		// open at either end, and empty.
		at := func(d time.Duration) time.Time { return base.Add(d) }
		day := func(n int) time.Time { return base.Truncate(24*time.Hour).AddDate(0, 0, n) }
		ranges := [][2]time.Time{
			{}, {at(0), {}}, {{}, at(7 * time.Minute)}, {at(2 * time.Minute), at(9 * time.Minute)},
			{at(90 * time.Second), at(10*time.Minute + 1500*time.Millisecond)},
			{at(3*time.Minute + time.Second), at(3*time.Minute + 50*time.Second)},
			{at(4*time.Minute + 59*time.Second), at(5*time.Minute + time.Second)},
			{at(20 * time.Minute), at(30 * time.Minute)}, {at(5*time.Minute + 7*time.Millisecond), {}},
			// Whole UTC days (usage_key_days) and partial days at the edges.
			{day(-1), day(0)}, {day(-1), day(1)}, {day(-2), day(2)}, {{}, day(0)}, {day(1), {}},
			{at(-24 * time.Hour), at(0)}, {day(-1).Add(time.Millisecond), day(1).Add(-time.Millisecond)},
			{day(-1).Add(-time.Minute), day(1).Add(90 * time.Second)}, {day(0).Add(-30 * time.Second), day(0).Add(30 * time.Second)},
			{day(-1).Add(7*time.Hour + 3*time.Second), day(0).Add(5*time.Hour + 59*time.Minute)},
			// Rolling 24 h windows (usage_key_day_hours covers the whole
			// hours of their two partial days): at partial hours and
			// minutes, on whole hours, and shorter spans across midnight.
			{day(-1).Add(7*time.Hour + 30*time.Minute + 5*time.Second), day(0).Add(7*time.Hour + 30*time.Minute + 5*time.Second)},
			{day(-1).Add(13 * time.Hour), day(0).Add(13 * time.Hour)}, {day(-1).Add(23 * time.Hour), day(0).Add(time.Hour)},
			{day(-1).Add(22*time.Hour + 10*time.Minute), day(0).Add(2*time.Hour + 5*time.Minute + 500*time.Millisecond)},
			{day(0).Add(time.Hour + 59*time.Minute), day(0).Add(3*time.Hour + time.Minute)}, {day(0).Add(time.Hour), day(0).Add(2 * time.Hour)},
			{day(-1).Add(59 * time.Minute), day(1).Add(23*time.Hour + time.Minute)},
		}
		for i := range 30 {
			span := 16 * time.Minute
			if i%3 == 0 {
				span = 72 * time.Hour
			}
			a, b := at(time.Duration(rng.Int64N(int64(span)))-span/4), at(time.Duration(rng.Int64N(int64(span)))-span/4)
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

	t.Run("SeriesRollupsEqualRecords", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, newURL(t))
		rng := rand.New(rand.NewPCG(21, 21))
		base := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
		all := seedRollups(t, db, rng, base)
		day := base.Truncate(24 * time.Hour)
		ranges := [][2]time.Time{
			{base, base.Add(15 * time.Minute)}, {base.Add(2 * time.Minute), base.Add(9*time.Minute + 30*time.Second)},
			{base.Add(time.Second), base.Add(14 * time.Minute)}, {day.AddDate(0, 0, -1), day.AddDate(0, 0, 2)},
			{base.Add(-36*time.Hour + 7*time.Minute), base.Add(36 * time.Hour)}, {base.Add(3 * time.Minute), base.Add(3*time.Minute + 20*time.Second)},
		}
		checked := 0
		for _, r := range ranges {
			for _, bucket := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour, 90 * time.Second, 7 * time.Second} {
				if r[1].Sub(r[0])/bucket > 3000 {
					continue
				}
				for _, group := range []string{"", "model", "key", "user", "token"} {
					for _, filter := range []keygate.SeriesQuery{{}, {KeyID: "k2"}, {Model: "b"}, {KeyID: "k1", Model: "a"}} {
						q := filter
						q.From, q.To, q.Bucket, q.GroupBy = r[0], r[1], bucket, group
						got, err := db.UsageSeries(ctx, q)
						if err != nil {
							t.Fatal(err)
						}
						if want := seriesRecords(all, q); !sameBuckets(got, want) {
							t.Fatalf("%+v:\n rollups %+v\n records %+v", q, got, want)
						}
						checked++
					}
				}
			}
		}
		t.Logf("%d series equal the raw records' sums", checked)
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
		for _, s := range []string{`DROP TABLE usage_minutes`, `DROP TABLE usage_model_minutes`, `DROP TABLE usage_key_days`,
			`DROP TABLE usage_key_minutes`, `DROP TABLE usage_key_day_hours`, `DELETE FROM schema_migrations WHERE version IN (20, 21, 92)`} {
			if _, err := db.w.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, group := range []string{"", "model", "key", "user", "token"} {
			q := keygate.UsageQuery{GroupBy: group}
			got, err := db.SumUsage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if want := sumRecords(recs, q); !sameTotals(got, want) || group == "key" && len(got) != 2 {
				t.Fatalf("group_by %q after the migration:\n got %+v\nwant %+v", group, got, want)
			}
		}
		day := recs[0].Time.Truncate(24 * time.Hour)
		sq := keygate.SeriesQuery{From: day, To: day.Add(24 * time.Hour), Bucket: time.Minute, KeyID: "k_2", GroupBy: "model"}
		got, err := db.UsageSeries(ctx, sq)
		if err != nil {
			t.Fatal(err)
		}
		if want := seriesRecords(recs, sq); !sameBuckets(got, want) || len(got) != 1 {
			t.Fatalf("series of k_2 after the migration:\n got %+v\nwant %+v", got, want)
		}
		for table, want := range map[string]int{
			"usage_minutes":       4, // minutes 1, 2, 3 and 61
			"usage_model_minutes": 4, // one model
			"usage_key_minutes":   4, // minute 3 is k_2's only
			"usage_key_days":      2, // one day, two keys
			"usage_key_day_hours": 2, // one day, two keys
		} {
			var n int
			if err := db.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != want {
				t.Errorf("%s has %d rows (%v), want %d", table, n, err, want)
			}
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

// seedRollups writes batches whose minutes and days overlap, so every
// rollup row is added to: most records in 15 minutes from base, the rest
// over the three days around it, across UTC midnights. It returns them.
func seedRollups(t *testing.T, db *DB, rng *rand.Rand, base time.Time) []keygate.UsageRecord {
	var all []keygate.UsageRecord
	for n := range 8 {
		batch := make([]keygate.UsageRecord, 40+rng.IntN(80))
		for i := range batch {
			at := base.Add(time.Duration(rng.Int64N(int64(15 * time.Minute))))
			if n >= 6 {
				at = base.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) - 36*time.Hour)
			}
			batch[i] = keygate.UsageRecord{
				Time:  at,
				Model: []string{"a", "b", "c"}[rng.IntN(3)], KeyID: []string{"k1", "k2", "k3"}[rng.IntN(3)],
				User: []string{"u1", "u2", ""}[rng.IntN(3)], Token: []string{"t1", "t2"}[rng.IntN(2)],
				Status: []int{200, 200, 429, 502}[rng.IntN(4)], PromptTokens: rng.IntN(1000),
				CompletionTokens: rng.IntN(500), LatencyMS: rng.Int64N(900), Cost: float64(rng.IntN(1000)) / 1e4,
			}
		}
		if err := db.InsertUsage(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	return all
}

// seriesRecords is UsageSeries computed in Go over the records themselves.
func seriesRecords(recs []keygate.UsageRecord, q keygate.SeriesQuery) []keygate.UsageBucket {
	type bk struct {
		n int64
		g string
	}
	by := map[bk]*keygate.UsageBucket{}
	for _, r := range recs {
		if r.Time.Before(q.From) || !r.Time.Before(q.To) || q.KeyID != "" && r.KeyID != q.KeyID || q.Model != "" && r.Model != q.Model {
			continue
		}
		k := bk{int64(r.Time.Sub(q.From) / q.Bucket), map[string]string{"": "", "model": r.Model, "key": r.KeyID, "user": r.User, "token": r.Token}[q.GroupBy]}
		b := by[k]
		if b == nil {
			b = &keygate.UsageBucket{Start: q.From.Add(time.Duration(k.n) * q.Bucket).UTC()}
			b.Group = k.g
			by[k] = b
		}
		b.Requests++
		if r.Status >= 400 {
			b.Errors++
		}
		b.PromptTokens += int64(r.PromptTokens)
		b.CompletionTokens += int64(r.CompletionTokens)
		b.TotalTokens = b.PromptTokens + b.CompletionTokens
		b.Cost += r.Cost
		b.LatencyMS += r.LatencyMS
	}
	out := []keygate.UsageBucket{}
	for _, b := range by {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// sameBuckets compares series as sameTotals compares totals.
func sameBuckets(a, b []keygate.UsageBucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Start.Equal(y.Start) || x.Errors != y.Errors || x.LatencyMS != y.LatencyMS ||
			!sameTotals([]keygate.UsageTotal{x.UsageTotal}, []keygate.UsageTotal{y.UsageTotal}) {
			return false
		}
	}
	return true
}
