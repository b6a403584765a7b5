package store

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// narrowRollup is a rollup coarser than usage_minutes (migration 0021),
// written in the same transaction as the records and usage_minutes, so
// that the reports asked most often scan a few rows per bucket: with
// thousands of keys usage_minutes holds about a row per request.
type narrowRollup struct {
	table string
	// cols are the key columns, in the order of rollupKey's t, a and b;
	// a table of two key columns has no b.
	cols []string
	// key places a usage_minutes group in this rollup.
	key func(g *minuteGroup) rollupKey
}

type rollupKey struct {
	t    int64
	a, b string
}

// dayMS is the length of a UTC day in milliseconds.
const dayMS = 86_400_000

var (
	modelMinutes = narrowRollup{"usage_model_minutes", []string{"minute_ms", "model"},
		func(g *minuteGroup) rollupKey { return rollupKey{t: g.minute, a: g.model} }}
	keyDays = narrowRollup{"usage_key_days", []string{"day_ms", "key_id", "model"},
		func(g *minuteGroup) rollupKey { return rollupKey{floorTo(g.minute, dayMS), g.keyID, g.model} }}
	keyMinutes = narrowRollup{"usage_key_minutes", []string{"minute_ms", "key_id", "model"},
		func(g *minuteGroup) rollupKey { return rollupKey{g.minute, g.keyID, g.model} }}

	narrowRollups = []narrowRollup{modelMinutes, keyDays, keyMinutes}
)

// rollupRow is one row's share of a batch in a narrow rollup.
type rollupRow struct {
	rollupKey
	requests, errors            int64
	prompt, completion, latency int64
	cost                        float64
}

// rows sums a batch's minute groups into this rollup's rows, in one order
// (by t, a, b) for every replica, so concurrent upserts cannot deadlock.
func (n narrowRollup) rows(groups []minuteGroup) []rollupRow {
	index := make(map[rollupKey]int, len(groups))
	out := make([]rollupRow, 0, len(groups))
	for i := range groups {
		g := &groups[i]
		k := n.key(g)
		j, ok := index[k]
		if !ok {
			j = len(out)
			index[k] = j
			out = append(out, rollupRow{rollupKey: k})
		}
		r := &out[j]
		r.requests += g.requests
		r.errors += g.errors
		r.prompt += g.prompt
		r.completion += g.completion
		r.latency += g.latency
		r.cost += g.cost
	}
	slices.SortFunc(out, func(x, y rollupRow) int {
		return cmp.Or(cmp.Compare(x.t, y.t), cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b))
	})
	return out
}

// args appends the values of rows for upsertSQL.
func (n narrowRollup) args(dst []any, rows []rollupRow) []any {
	for _, r := range rows {
		dst = append(dst, r.t, r.a)
		if len(n.cols) == 3 {
			dst = append(dst, r.b)
		}
		dst = append(dst, r.requests, r.errors, r.prompt, r.completion, r.latency, r.cost)
	}
	return dst
}

// conflict makes the upsert an addition, as upsertMinutesConflict does.
func (n narrowRollup) conflict() string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (" + strings.Join(n.cols, ", ") + ") DO UPDATE SET ")
	for i, c := range sumColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = " + n.table + "." + c + " + excluded." + c)
	}
	return b.String()
}

var sumColumns = []string{"requests", "errors", "prompt_tokens", "completion_tokens", "latency_ms", "cost"}

func (n narrowRollup) insertHead() string {
	return "INSERT INTO " + n.table + " (" + strings.Join(n.cols, ", ") + ", " + strings.Join(sumColumns, ", ") + ")"
}

// upsertSQL adds rows of sums, in SQLite's placeholders.
func (n narrowRollup) upsertSQL(rows int) string {
	row := "(" + strings.Repeat("?, ", len(n.cols)+len(sumColumns)-1) + "?)"
	var b strings.Builder
	b.WriteString(n.insertHead())
	b.WriteString(" VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(n.conflict())
	return b.String()
}

// upsertPostgres adds a batch's rows in one statement over arrays.
func (n narrowRollup) upsertPostgres() string {
	types := []string{"bigint", "text", "text"}[:len(n.cols)]
	types = append(types, "bigint", "bigint", "bigint", "bigint", "bigint", "float8")
	params := make([]string, len(types))
	for i, t := range types {
		params[i] = fmt.Sprintf("$%d::%s[]", i+1, t)
	}
	return n.insertHead() + " SELECT * FROM unnest(" + strings.Join(params, ", ") + ")" + n.conflict()
}

// arrays are rows as one array per column, for upsertPostgres.
func (n narrowRollup) arrays(rows []rollupRow) []any {
	k := len(rows)
	t, a, b := make([]int64, k), make([]string, k), make([]string, k)
	requests, errs, prompt, completion, latency := make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k)
	cost := make([]float64, k)
	for i, r := range rows {
		t[i], a[i], b[i] = r.t, r.a, r.b
		requests[i], errs[i], prompt[i], completion[i], latency[i], cost[i] = r.requests, r.errors, r.prompt, r.completion, r.latency, r.cost
	}
	out := []any{t, a}
	if len(n.cols) == 3 {
		out = append(out, b)
	}
	return append(out, requests, errs, prompt, completion, latency, cost)
}

// floorTo is the start of the size-long bucket holding ms.
func floorTo(ms, size int64) int64 {
	m := ms - ms%size
	if ms < 0 && m != ms {
		m -= size
	}
	return m
}

// rollupLevel is a table a report may read whole buckets from.
type rollupLevel struct {
	table, timeCol string
	size           int64 // bucket length in ms
}

var (
	levelMinutes      = rollupLevel{"usage_minutes", "minute_ms", minuteMS}
	levelModelMinutes = rollupLevel{"usage_model_minutes", "minute_ms", minuteMS}
	levelKeyDays      = rollupLevel{"usage_key_days", "day_ms", dayMS}
	levelKeyMinutes   = rollupLevel{"usage_key_minutes", "minute_ms", minuteMS}
	// levelKeyDayHours is read through dayHoursPart, not by its time column.
	levelKeyDayHours = rollupLevel{"usage_key_day_hours", "", hourMS}
)

// cover splits [lo, hi) (a nil bound is open) into the whole buckets of
// levels[0], read from it, and the partial buckets at the edges, covered
// by the finer levels after it and in the end by the raw records (emit's
// level nil). Every millisecond of the range is read exactly once.
func cover(lo, hi *int64, levels []rollupLevel, emit func(l *rollupLevel, lo, hi *int64)) {
	if len(levels) == 0 {
		emit(nil, lo, hi)
		return
	}
	l := &levels[0]
	a, b := lo, hi
	if lo != nil {
		v := floorTo(*lo, l.size)
		if v != *lo {
			v += l.size
		}
		a = &v
	}
	if hi != nil {
		v := floorTo(*hi, l.size)
		b = &v
	}
	if a != nil && b != nil && *a >= *b {
		cover(lo, hi, levels[1:], emit) // less than a whole bucket
		return
	}
	emit(l, a, b)
	if lo != nil && *a != *lo {
		cover(lo, a, levels[1:], emit)
	}
	if hi != nil && *b != *hi {
		cover(b, hi, levels[1:], emit)
	}
}
