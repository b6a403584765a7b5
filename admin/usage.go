package admin

import (
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
)

// UsageQuery reads from, to and group_by of a usage route.
func UsageQuery(r *http.Request) (keygate.UsageQuery, error) {
	var q keygate.UsageQuery
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return q, keygate.Errorf(keygate.EInvalidRequest, "%s: %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", name, v)
		}
		*dst = t
	}
	q.GroupBy = r.URL.Query().Get("group_by")
	return q, nil
}

// HandleUsage answers usage totals grouped by key, model, user or token.
func HandleUsage(d Deps, usage keygate.UsageReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := UsageQuery(r)
		if err == nil && q.GroupBy == "" {
			q.GroupBy = "model"
		}
		var out []keygate.UsageTotal
		if err == nil {
			out, err = usage.SumUsage(r.Context(), q)
		}
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if r.URL.Query().Get("format") == "csv" {
			writeUsageCSV(w, q.GroupBy, out)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": out})
	})
}
