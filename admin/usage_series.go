package admin

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
)

// maxBuckets bounds one series answer.
const maxBuckets = 1000

// HandleUsageSeries answers GET /api/v1/usage/series: requests, errors,
// tokens, cost and latency per time bucket, by model, key, user or token.
// ?from= and ?to= (RFC 3339; default the last 24 h), ?bucket= in seconds
// (default one that cuts the range into 24 to 60 buckets; buckets of
// whole minutes start at the minute of from), ?group_by=
// (default none), ?key= and ?model= narrow it.
func HandleUsageSeries(d Deps, usage keygate.UsageSeriesReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uq, err := UsageQuery(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		q := keygate.SeriesQuery{From: uq.From, To: uq.To, GroupBy: uq.GroupBy, KeyID: r.URL.Query().Get("key"), Model: r.URL.Query().Get("model")}
		if q.To.IsZero() {
			q.To = d.Clock.Now()
		}
		if q.From.IsZero() {
			q.From = q.To.Add(-24 * time.Hour)
		}
		if !q.From.Before(q.To) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "from: must be before to"))
			return
		}
		q.Bucket = defaultBucket(q.To.Sub(q.From))
		if v := r.URL.Query().Get("bucket"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "bucket: %q must be a number of seconds, more than 0", v))
				return
			}
			q.Bucket = time.Duration(n) * time.Second
		}
		if q.Bucket%time.Minute == 0 {
			// Buckets of whole minutes start on a minute, so they are read
			// from the per-minute rollups.
			q.From = q.From.Truncate(time.Minute)
		}
		if q.To.Sub(q.From)/q.Bucket > maxBuckets {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "bucket: more than %d buckets from %s to %s; choose a wider bucket", maxBuckets, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339)))
			return
		}
		out, err := usage.UsageSeries(r.Context(), q)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{
			"from": q.From.UTC(), "to": q.To.UTC(), "bucket_seconds": int(q.Bucket.Seconds()), "group_by": q.GroupBy, "data": out,
		})
	})
}

// defaultBucket cuts span into a readable number of bars.
func defaultBucket(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if span/b <= 60 {
			return b
		}
	}
	return 7 * 24 * time.Hour
}

// writeUsageCSV answers usage totals as a CSV file (?format=csv).
func writeUsageCSV(w http.ResponseWriter, groupBy string, rows []keygate.UsageTotal) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="keygate-usage-by-`+groupBy+`.csv"`)
	c := csv.NewWriter(w)
	c.Write([]string{groupBy, "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost"})
	for _, u := range rows {
		c.Write([]string{csvSafe(u.Group), strconv.FormatInt(u.Requests, 10), strconv.FormatInt(u.PromptTokens, 10),
			strconv.FormatInt(u.CompletionTokens, 10), strconv.FormatInt(u.TotalTokens, 10), strconv.FormatFloat(u.Cost, 'f', 6, 64)})
	}
	c.Flush()
}

// csvSafe keeps a spreadsheet from reading a group name (a model name a
// caller chose) as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
