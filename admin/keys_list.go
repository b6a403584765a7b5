package admin

import (
	"cmp"
	"net/url"
	"reflect"
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
	field := cmp.Or(q.Get("sort"), "id")
	key, ok := sortKey(field)
	if !ok {
		return nil, 0, keygate.Errorf(keygate.EInvalidRequest, "sort: %q is not a field of a key that sorts (a name, number or time of GET /api/v1/keys)", field)
	}
	desc := q.Get("order") == "desc"
	keys := make([]sortValue, len(views))
	for i := range views {
		keys[i] = key(&views[i])
	}
	idx := make([]int, len(views))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if keys[a].unset != keys[b].unset { // keys without the value go last, either order
			if keys[a].unset {
				return 1
			}
			return -1
		}
		c := keys[a].compare(keys[b])
		if desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(views[a].ID, views[b].ID))
	})
	sorted := make([]pool.KeyView, len(views))
	for i, j := range idx {
		sorted[i] = views[j]
	}
	views = sorted
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

// sortValue is one key's value of the sorted field: a number (times as
// Unix nanoseconds) or a string; unset for a nil pointer.
type sortValue struct {
	num   float64
	str   string
	unset bool
}

func (a sortValue) compare(b sortValue) int {
	return cmp.Or(cmp.Compare(a.num, b.num), strings.Compare(a.str, b.str))
}

// sortKey finds the field of pool.KeyView whose JSON name is field, so
// every name, number and time GET /api/v1/keys shows sorts, fields added
// later (the pacing forecast's exhausts_at) included.
func sortKey(field string) (func(*pool.KeyView) sortValue, bool) {
	t := reflect.TypeFor[pool.KeyView]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != field {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft != reflect.TypeFor[time.Time]() && !sortableKind(ft.Kind()) {
			return nil, false
		}
		return func(v *pool.KeyView) sortValue { return valueOf(reflect.ValueOf(v).Elem().Field(i)) }, true
	}
	return nil, false
}

func sortableKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func valueOf(v reflect.Value) sortValue {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return sortValue{unset: true}
		}
		v = v.Elem()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return sortValue{num: float64(t.UnixNano())}
	}
	switch v.Kind() {
	case reflect.String:
		return sortValue{str: v.String()}
	case reflect.Bool:
		if v.Bool() {
			return sortValue{num: 1}
		}
		return sortValue{}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return sortValue{num: float64(v.Int())}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return sortValue{num: float64(v.Uint())}
	}
	return sortValue{num: v.Float()}
}
