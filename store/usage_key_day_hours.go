package store

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// usage_key_day_hours (migration 0092) holds, per key and UTC day, each
// hour's totals in columns of one row, so a report by key over a rolling
// window reads a row per key for each partial day at its edges instead of
// a row per request. SumUsage sums the columns of the hours it covers.

const hourMS = 3_600_000

// dayHourColumns are the summed columns of one hour of the day, in order.
var dayHourColumns = []string{"requests", "prompt", "completion", "cost"}

func dayHourColumn(name string, hour int) string { return fmt.Sprintf("%s_%02d", name, hour) }

// dayHourEntry is a batch's share of one key's hour of one day.
type dayHourEntry struct {
	day                          int64
	key                          string
	hour                         int
	requests, prompt, completion int64
	cost                         float64
}

// dayHourBatch is a batch summed for usage_key_day_hours: the rows (day,
// key), sorted, each with the hours of the batch it has, and the hours of
// the day the batch touches (usually one, two across an hour's end). One
// upsert adds every row, carrying each touched hour's columns, so a row is
// locked once, in the same order by every replica.
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

// columns are the inserted columns: day_ms, key_id and the touched hours'.
func (b dayHourBatch) columns() []string {
	cols := []string{"day_ms", "key_id"}
	for _, h := range b.hours {
		for _, c := range dayHourColumns {
			cols = append(cols, dayHourColumn(c, h))
		}
	}
	return cols
}

// conflict makes the upsert an addition to the touched hours' columns.
func (b dayHourBatch) conflict() string {
	var set []string
	for _, c := range b.columns()[2:] {
		set = append(set, c+" = usage_key_day_hours."+c+" + excluded."+c)
	}
	return " ON CONFLICT (day_ms, key_id) DO UPDATE SET " + strings.Join(set, ", ")
}

// sqlite calls fn with the batch as upserts in SQLite's placeholders, each
// under SQLite's limit of parameters, and their arguments.
func (b dayHourBatch) sqlite(fn func(query string, args []any) error) error {
	cols := b.columns()
	perRow := len(cols)
	maxRows := max(1, 30_000/perRow)
	row := "(" + strings.Repeat("?, ", perRow-1) + "?)"
	head := "INSERT INTO usage_key_day_hours (" + strings.Join(cols, ", ") + ") VALUES "
	var (
		args []any
		n    int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := head + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + b.conflict()
		err := fn(q, args)
		args, n = args[:0], 0
		return err
	}
	var err error
	b.rows(func(day int64, key string, entries []dayHourEntry) {
		if err != nil {
			return
		}
		args = append(args, day, key)
		for _, h := range b.hours {
			e := entryAt(entries, h)
			args = append(args, e.requests, e.prompt, e.completion, e.cost)
		}
		if n++; n == maxRows {
			err = flush()
		}
	})
	if err != nil {
		return err
	}
	return flush()
}

// postgres returns the batch as one upsert over arrays, with its arguments.
func (b dayHourBatch) postgres() (string, []any) {
	var (
		days                         []int64
		keys                         []string
		requests, prompt, completion = make([][]int64, len(b.hours)), make([][]int64, len(b.hours)), make([][]int64, len(b.hours))
		cost                         = make([][]float64, len(b.hours))
	)
	b.rows(func(day int64, key string, entries []dayHourEntry) {
		days, keys = append(days, day), append(keys, key)
		for i, h := range b.hours {
			e := entryAt(entries, h)
			requests[i], prompt[i], completion[i] = append(requests[i], e.requests), append(prompt[i], e.prompt), append(completion[i], e.completion)
			cost[i] = append(cost[i], e.cost)
		}
	})
	args := []any{days, keys}
	params := []string{"$1::bigint[]", "$2::text[]"}
	for i := range b.hours {
		args = append(args, requests[i], prompt[i], completion[i], cost[i])
		for _, t := range []string{"bigint", "bigint", "bigint", "float8"} {
			params = append(params, fmt.Sprintf("$%d::%s[]", len(params)+1, t))
		}
	}
	return "INSERT INTO usage_key_day_hours (" + strings.Join(b.columns(), ", ") + ") SELECT * FROM unnest(" +
		strings.Join(params, ", ") + ")" + b.conflict(), args
}

// entryAt is the entry of hour h among one row's entries, or zeros.
func entryAt(entries []dayHourEntry, h int) dayHourEntry {
	for _, e := range entries {
		if e.hour == h {
			return e
		}
	}
	return dayHourEntry{}
}

// dayHoursPart is the SELECT of the hours [lo, hi) of one UTC day (both
// whole hours of that day) by key, for SumUsage's union: each row sums the
// covered hours' columns, and a key with no request in them is left out.
func dayHoursPart(lo, hi int64) (string, []any) {
	day := floorTo(lo, dayMS)
	from, to := int((lo-day)/hourMS), int((hi-day)/hourMS)
	sum := func(name string) string {
		terms := make([]string, 0, to-from)
		for h := from; h < to; h++ {
			terms = append(terms, dayHourColumn(name, h))
		}
		return "(" + strings.Join(terms, " + ") + ")"
	}
	n := sum("requests")
	return "SELECT key_id AS g, " + n + " AS n, " + sum("prompt") + " AS p, " + sum("completion") + " AS c, " + sum("cost") +
		" AS cost FROM usage_key_day_hours WHERE day_ms = ? AND " + n + " > 0", []any{day}
}
