package keygate

import (
	"context"
	"time"
)

// KeyTotals are a key's traffic counters. Replicas write them as
// additions (KeyTotalsStore.AddKeyTotals), so none overwrites another's.
type KeyTotals struct {
	KeyID            string
	Requests         int64
	Successes        int64
	Failures         int64
	LatencyMS        int64 // sum over successes
	PromptTokens     int64
	CompletionTokens int64
	Cost             float64
	LastUsedAt       time.Time // the latest wins, not the sum
}

// Sub is t less u (LastUsedAt stays t's).
func (t KeyTotals) Sub(u KeyTotals) KeyTotals {
	return KeyTotals{KeyID: t.KeyID, Requests: t.Requests - u.Requests, Successes: t.Successes - u.Successes,
		Failures: t.Failures - u.Failures, LatencyMS: t.LatencyMS - u.LatencyMS, PromptTokens: t.PromptTokens - u.PromptTokens,
		CompletionTokens: t.CompletionTokens - u.CompletionTokens, Cost: t.Cost - u.Cost, LastUsedAt: t.LastUsedAt}
}

// Add is t plus u, the later LastUsedAt.
func (t KeyTotals) Add(u KeyTotals) KeyTotals {
	d := u.Sub(KeyTotals{})
	d.Requests, d.Successes, d.Failures = t.Requests+u.Requests, t.Successes+u.Successes, t.Failures+u.Failures
	d.LatencyMS, d.PromptTokens, d.CompletionTokens = t.LatencyMS+u.LatencyMS, t.PromptTokens+u.PromptTokens, t.CompletionTokens+u.CompletionTokens
	d.Cost, d.KeyID = t.Cost+u.Cost, t.KeyID
	if t.LastUsedAt.After(u.LastUsedAt) {
		d.LastUsedAt = t.LastUsedAt
	}
	return d
}

// Zero reports whether no counter differs from zero.
func (t KeyTotals) Zero() bool {
	return t.Requests == 0 && t.Successes == 0 && t.Failures == 0 && t.LatencyMS == 0 &&
		t.PromptTokens == 0 && t.CompletionTokens == 0 && t.Cost == 0
}

// KeyTotalsStore keeps keys' totals as sums of every replica's additions.
type KeyTotalsStore interface {
	AddKeyTotals(ctx context.Context, deltas []KeyTotals) error
	LoadKeyTotals(ctx context.Context) (map[string]KeyTotals, error)
}
