package pool

import (
	"time"

	"github.com/keygate/keygate"
)

// Totals is a copy of the key's traffic counters.
func (k *Key) Totals() keygate.KeyTotals {
	t := keygate.KeyTotals{KeyID: k.ID, Requests: k.requests.Load(), Successes: k.successes.Load(),
		Failures: k.failures.Load(), LatencyMS: k.latencyMS.Load(), PromptTokens: k.promptTok.Load(),
		CompletionTokens: k.complTok.Load(), Cost: float64(k.costMicros.Load()) / 1e6}
	if lu := k.lastUsed.Load(); lu != 0 {
		t.LastUsedAt = time.Unix(0, lu).UTC()
	}
	return t
}

// AddTotals adds traffic other replicas served with the key to its
// counters, so every replica shows the key's whole totals.
func (k *Key) AddTotals(d keygate.KeyTotals) {
	k.requests.Add(d.Requests)
	k.successes.Add(d.Successes)
	k.failures.Add(d.Failures)
	k.latencyMS.Add(d.LatencyMS)
	k.promptTok.Add(d.PromptTokens)
	k.complTok.Add(d.CompletionTokens)
	k.costMicros.Add(int64(d.Cost * 1e6))
	if !d.LastUsedAt.IsZero() {
		for {
			old := k.lastUsed.Load()
			if old >= d.LastUsedAt.UnixNano() || k.lastUsed.CompareAndSwap(old, d.LastUsedAt.UnixNano()) {
				break
			}
		}
	}
}
