package store

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// usage_key_day_hours (migration 0092) holds, per key and UTC day,
// running totals through each hour of the day in columns of one row, so a
// report by key over a rolling window reads one row per key for each
// partial day at its edges, and two columns per total of it, instead of a
// row per request. A batch adds to each of its rows' columns from the
// batch's first hour on.

const hourMS = 3_600_000

// dayHourColumns are the totals kept through each hour, in order.
var dayHourColumns = []string{"requests", "prompt", "completion", "cost"}

// dayHourColumn is the column of name's total through the end of hour.
func dayHourColumn(name string, hour int) string { return fmt.Sprintf("%s_%02d", name, hour) }

// dayHourEntry is a batch's share of one key's hour of one day.
type dayHourEntry struct {
	day                          int64
	key                          string
	hour                         int
	requests, prompt, completion int64
	cost                         float64
}

// dayHourBatch is a batch summed for usage_key_day_hours: its entries by
// (day, key, hour), sorted, and the hours of the day it touches (usually
// one, two across an hour's end). One upsert adds every (day, key) row, so
// a row is locked once, in the same order by every replica.
type dayHourBatch struct {
	hours   []int
	entries []dayHourEntry // by day, key, hour
}

func keyDayHours(groups []minuteGroup) dayHourBatch {
	type k struct {
		day  int64
		key  string
		hour int
	}
	index := make(map[k]int, len(groups))
	var b dayHourBatch
	var seen [24]bool
	for i := range groups {
		g := &groups[i]
		day := floorTo(g.minute, dayMS)
		key := k{day, g.keyID, int((g.minute - day) / hourMS)}
		j, ok := index[key]
		if !ok {
			j = len(b.entries)
			index[key] = j
			b.entries = append(b.entries, dayHourEntry{day: key.day, key: key.key, hour: key.hour})
			seen[key.hour] = true
		}
		e := &b.entries[j]
		e.requests += g.requests
		e.prompt += g.prompt
		e.completion += g.completion
		e.cost += g.cost
	}
	slices.SortFunc(b.entries, func(x, y dayHourEntry) int {
		return cmp.Or(cmp.Compare(x.day, y.day), cmp.Compare(x.key, y.key), cmp.Compare(x.hour, y.hour))
	})
	for h, ok := range seen {
		if ok {
			b.hours = append(b.hours, h)
		}
	}
	return b
}

// rows calls fn with each (day, key) and its entries.
func (b dayHourBatch) rows(fn func(day int64, key string, entries []dayHourEntry)) {
	for i := 0; i < len(b.entries); {
		j := i + 1
		for j < len(b.entries) && b.entries[j].day == b.entries[i].day && b.entries[j].key == b.entries[i].key {
			j++
		}
		fn(b.entries[i].day, b.entries[i].key, b.entries[i:j])
		i = j
	}
}

// columns are the inserted columns: day_ms, key_id and every running
// total from the batch's first hour to the day's end.
func (b dayHourBatch) columns() []string {
	cols := []string{"day_ms", "key_id"}
	for h := b.hours[0]; h < 24; h++ {
		for _, c := range dayHourColumns {
			cols = append(cols, dayHourColumn(c, h))
		}
	}
	return cols
}

// sources maps each running-total column (in columns' order after day_ms
// and key_id) to the value it takes: the row's total through the last
// touched hour at or before the column's hour, as touched*4 + metric.
func (b dayHourBatch) sources() []int {
	var out []int
	t := 0
	for h := b.hours[0]; h < 24; h++ {
		for t+1 < len(b.hours) && b.hours[t+1] <= h {
			t++
		}
		for m := range dayHourColumns {
			out = append(out, t*len(dayHourColumns)+m)
		}
	}
	return out
}

// values calls fn with each (day, key) and its running totals through
// each touched hour: 4 per touched hour, in dayHourColumns' order.
func (b dayHourBatch) values(fn func(day int64, key string, totals []any)) {
	totals := make([]any, 0, 4*len(b.hours))
	b.rows(func(day int64, key string, entries []dayHourEntry) {
		totals = totals[:0]
		var e dayHourEntry
		k := 0
		for _, h := range b.hours {
			for ; k < len(entries) && entries[k].hour <= h; k++ {
				e.requests += entries[k].requests
				e.prompt += entries[k].prompt
				e.completion += entries[k].completion
				e.cost += entries[k].cost
			}
			totals = append(totals, e.requests, e.prompt, e.completion, e.cost)
		}
		fn(day, key, totals)
	})
}

// conflict makes the upsert an addition to the inserted columns.
func (b dayHourBatch) conflict() string {
	var set []string
	for _, c := range b.columns()[2:] {
		set = append(set, c+" = usage_key_day_hours."+c+" + excluded."+c)
	}
	return " ON CONFLICT (day_ms, key_id) DO UPDATE SET " + strings.Join(set, ", ")
}

// sqliteRows is how many rows one prepared SQLite upsert of the batch
// carries; what is left goes one row at a time. Parsing the statement (96
// columns at most) costs more than the rows, so each shape is prepared once.
const sqliteDayHourRows = 32

// sqliteSQL is the upsert of rows rows in SQLite's numbered placeholders:
// a row sends its totals through each touched hour once, and each column
// names the one it takes.
func (b dayHourBatch) sqliteSQL(rows int) string {
	perRow := 2 + 4*len(b.hours)
	src := b.sources()
	var q strings.Builder
	q.WriteString("INSERT INTO usage_key_day_hours (" + strings.Join(b.columns(), ", ") + ") VALUES ")
	for r := range rows {
		if r > 0 {
			q.WriteString(", ")
		}
		base := r*perRow + 1
		fmt.Fprintf(&q, "(?%d, ?%d", base, base+1)
		for _, v := range src {
			fmt.Fprintf(&q, ", ?%d", base+2+v)
		}
		q.WriteString(")")
	}
	q.WriteString(b.conflict())
	return q.String()
}

// sqliteShapes are the row counts of the upserts sqlite runs: full
// statements of sqliteDayHourRows, then single rows.
func (b dayHourBatch) sqliteShapes() []int {
	var rows int
	b.rows(func(int64, string, []dayHourEntry) { rows++ })
	var out []int
	if rows >= sqliteDayHourRows {
		out = append(out, sqliteDayHourRows)
	}
	if rows%sqliteDayHourRows != 0 {
		out = append(out, 1)
	}
	return out
}

// sqlite calls exec with the batch's upserts, sqliteDayHourRows rows at a
// time and then one by one, naming each by its row count, and their
// arguments.
func (b dayHourBatch) sqlite(exec func(rows int, args []any) error) error {
	var rows [][]any
	b.values(func(day int64, key string, totals []any) {
		rows = append(rows, append([]any{day, key}, totals...))
	})
	args := make([]any, 0, sqliteDayHourRows*(2+4*len(b.hours)))
	for len(rows) > 0 {
		n := min(len(rows), sqliteDayHourRows)
		if n < sqliteDayHourRows {
			n = 1
		}
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if err := exec(n, args); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// postgres returns the batch as one upsert over arrays (one per total and
// touched hour), with its arguments.
func (b dayHourBatch) postgres() (string, []any) {
	var (
		days []int64
		keys []string
		ints = make([][]int64, 3*len(b.hours))
		cost = make([][]float64, len(b.hours))
	)
	b.values(func(day int64, key string, totals []any) {
		days, keys = append(days, day), append(keys, key)
		for t := range b.hours {
			for m := range 3 {
				ints[3*t+m] = append(ints[3*t+m], totals[4*t+m].(int64))
			}
			cost[t] = append(cost[t], totals[4*t+3].(float64))
		}
	})
	args := []any{days, keys}
	params, names := []string{"$1::bigint[]", "$2::text[]"}, []string{"d", "k"}
	for t := range b.hours {
		args = append(args, ints[3*t], ints[3*t+1], ints[3*t+2], cost[t])
		for m, typ := range []string{"bigint", "bigint", "bigint", "float8"} {
			params = append(params, fmt.Sprintf("$%d::%s[]", len(params)+1, typ))
			names = append(names, fmt.Sprintf("v%d", 4*t+m))
		}
	}
	sel := []string{"d", "k"}
	for _, v := range b.sources() {
		sel = append(sel, fmt.Sprintf("v%d", v))
	}
	return "INSERT INTO usage_key_day_hours (" + strings.Join(b.columns(), ", ") + ") SELECT " + strings.Join(sel, ", ") +
		" FROM unnest(" + strings.Join(params, ", ") + ") AS u(" + strings.Join(names, ", ") + ")" + b.conflict(), args
}

// dayHoursPart is the SELECT of the whole hours [lo, hi) of one UTC day
// by key, for SumUsage's union: each total is a running total at the last
// hour less the one before the first, and a key with no request in those
// hours is left out.
func dayHoursPart(lo, hi int64) (string, []any) {
	day := floorTo(lo, dayMS)
	first, last := int((lo-day)/hourMS), int((hi-day)/hourMS)-1
	total := func(name string) string {
		if first == 0 {
			return dayHourColumn(name, last)
		}
		return "(" + dayHourColumn(name, last) + " - " + dayHourColumn(name, first-1) + ")"
	}
	n := total("requests")
	return "SELECT key_id AS g, " + n + " AS n, " + total("prompt") + " AS p, " + total("completion") + " AS c, " + total("cost") +
		" AS cost FROM usage_key_day_hours WHERE day_ms = ? AND " + n + " > 0", []any{day}
}
