package keygate

import (
	"context"
	"time"
)

// SeriesQuery selects usage records and cuts them into time buckets.
type SeriesQuery struct {
	From, To time.Time     // From inclusive, To exclusive; both required
	Bucket   time.Duration // width of one bucket; buckets start at From
	GroupBy  string        // key, model, user, token; "" = one series
	KeyID    string        // only this key's records, if set
	Model    string        // only this model's records, if set
}

// UsageBucket is one group's usage in one time bucket.
type UsageBucket struct {
	Start time.Time `json:"start"`
	UsageTotal
	Errors    int64 `json:"errors"`     // records with a status of 400 or more
	LatencyMS int64 `json:"latency_ms"` // sum of the records' latencies; divide by requests for the mean
}

// UsageSeriesReader aggregates usage records over time.
type UsageSeriesReader interface {
	UsageSeries(ctx context.Context, q SeriesQuery) ([]UsageBucket, error)
}
