package admin

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
)

// keyPage narrows, sorts and pages the key list on the server, so a pool
// of 10,000 keys reaches a browser 50 at a time:
// ?q= (id, masked key, model or last error contains it), ?class=,
// ?sort=<field>&order=asc|desc, ?limit=&offset=. It answers the page and
// how many keys matched.
func keyPage(views []pool.KeyView, q url.Values) ([]pool.KeyView, int, error) {
	if s := strings.ToLower(strings.TrimSpace(q.Get("q"))); s != "" {
		views = slices.DeleteFunc(views, func(v pool.KeyView) bool { return !matches(v, s) })
	}
	if c := q.Get("class"); c != "" {
		views = slices.DeleteFunc(views, func(v pool.KeyView) bool { return v.ErrorClass != c })
	}
	field := q.Get("sort")
	less, ok := keyOrder[cmp.Or(field, "id")]
	if !ok {
		return nil, 0, keygate.Errorf(keygate.EInvalidRequest, "sort: %q is not a field keys sort by (%s)", field, strings.Join(sortFields(), ", "))
	}
	desc := q.Get("order") == "desc"
	slices.SortStableFunc(views, func(a, b pool.KeyView) int {
		if c := less(a, b); c != 0 {
			if desc {
				return -c
			}
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	total := len(views)
	offset, err := nonNegative(q, "offset")
	if err != nil {
		return nil, 0, err
	}
	limit, err := nonNegative(q, "limit")
	if err != nil {
		return nil, 0, err
	}
	offset = min(offset, total)
	views = views[offset:]
	if limit > 0 && limit < len(views) {
		views = views[:limit]
	}
	return views, total, nil
}

func matches(v pool.KeyView, s string) bool {
	if strings.Contains(strings.ToLower(v.ID), s) || strings.Contains(strings.ToLower(v.Masked), s) ||
		strings.Contains(strings.ToLower(v.LastError), s) || strings.Contains(v.ErrorClass, s) {
		return true
	}
	for _, m := range v.Models {
		if strings.Contains(strings.ToLower(m), s) {
			return true
		}
	}
	return false
}

func nonNegative(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, keygate.Errorf(keygate.EInvalidRequest, "%s: %q must be a whole number, 0 or more", name, v)
	}
	return n, nil
}

func timeOrZero(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixNano()
}

// keyOrder holds the fields the key list sorts by.
var keyOrder = map[string]func(a, b pool.KeyView) int{
	"id":             func(a, b pool.KeyView) int { return strings.Compare(a.ID, b.ID) },
	"masked":         func(a, b pool.KeyView) int { return strings.Compare(a.Masked, b.Masked) },
	"status":         func(a, b pool.KeyView) int { return strings.Compare(a.Status, b.Status) },
	"error_class":    func(a, b pool.KeyView) int { return strings.Compare(a.ErrorClass, b.ErrorClass) },
	"next_retry_at":  func(a, b pool.KeyView) int { return cmp.Compare(timeOrZero(a.NextRetryAt), timeOrZero(b.NextRetryAt)) },
	"last_used_at":   func(a, b pool.KeyView) int { return cmp.Compare(timeOrZero(a.LastUsedAt), timeOrZero(b.LastUsedAt)) },
	"success_rate":   func(a, b pool.KeyView) int { return cmp.Compare(a.SuccessRate, b.SuccessRate) },
	"avg_latency_ms": func(a, b pool.KeyView) int { return cmp.Compare(a.AvgLatencyMS, b.AvgLatencyMS) },
	"total_requests": func(a, b pool.KeyView) int { return cmp.Compare(a.TotalRequests, b.TotalRequests) },
	"cost":           func(a, b pool.KeyView) int { return cmp.Compare(a.Cost, b.Cost) },
}

func sortFields() []string {
	out := make([]string, 0, len(keyOrder))
	for k := range keyOrder {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
