package admin

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/pool"
)

func TestKeyPageSortsByAnyShownField(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) *time.Time { x := t0.Add(time.Duration(m) * time.Minute); return &x }
	views := []pool.KeyView{
		{ID: "k_a", Status: "healthy", Cost: 3, NextRetryAt: nil},
		{ID: "k_b", Status: "cooldown", Cost: 1, NextRetryAt: at(5)},
		{ID: "k_c", Status: "cooldown", Cost: 2, NextRetryAt: at(1)},
		{ID: "k_d", Status: "disabled", Cost: 1, NextRetryAt: nil},
	}
	ids := func(q string) []string {
		t.Helper()
		v, _ := url.ParseQuery(q)
		out, _, err := keyPage(slices.Clone(views), v)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var s []string
		for _, k := range out {
			s = append(s, k.ID)
		}
		return s
	}
	for q, want := range map[string][]string{
		"sort=cost":                     {"k_b", "k_d", "k_c", "k_a"}, // ties by id
		"sort=cost&order=desc":          {"k_a", "k_c", "k_b", "k_d"},
		"sort=next_retry_at":            {"k_c", "k_b", "k_a", "k_d"}, // no retry time: last
		"sort=next_retry_at&order=desc": {"k_b", "k_c", "k_a", "k_d"}, // still last
		"sort=status&limit=2&offset=1":  {"k_c", "k_d"},
		"q=K_C":                         {"k_c"},
		"sort=id&order=desc&offset=3":   {"k_a"},
		"sort=id&offset=99":             nil,
	} {
		if got := ids(q); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	for _, bad := range []string{"sort=models", "sort=nope", "limit=-1", "offset=x"} {
		v, _ := url.ParseQuery(bad)
		if _, _, err := keyPage(slices.Clone(views), v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
