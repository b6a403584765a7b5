package pool

import (
	"time"

	"github.com/keygate/keygate"
)

// Key statuses shown to operators (SPEC section 4).
const (
	StatusHealthy  = "healthy"
	StatusUnused   = "unused"
	StatusWarning  = "warning"
	StatusError    = "error"
	StatusCooldown = "cooldown"
	StatusDisabled = "disabled"
)

var suggestedActions = map[string]string{
	StatusDisabled: "replace the key, or reset it once the cause is fixed",
	StatusError:    "check the provider and the network, then reset",
	StatusCooldown: "wait for the cooldown, or reset",
	StatusWarning:  "watch: the key is slow",
	StatusHealthy:  "-",
	StatusUnused:   "-",
}

// KeyView is what operators see of a key (GET /api/v1/keys).
type KeyView struct {
	ID                  string      `json:"id"`
	Masked              string      `json:"masked"`
	Models              []string    `json:"models"`
	Status              string      `json:"status"`
	ErrorClass          string      `json:"error_class"`
	CooldownSecondsLeft float64     `json:"cooldown_seconds_left"`
	NextRetryAt         *time.Time  `json:"next_retry_at"`
	RetryCount          int         `json:"retry_count"`
	FirstErrorAt        *time.Time  `json:"first_error_at"`
	LastError           string      `json:"last_error"`
	SuccessCount        int64       `json:"success_count"`
	FailureCount        int64       `json:"failure_count"`
	SuccessRate         float64     `json:"success_rate"`
	AvgLatencyMS        float64     `json:"avg_latency_ms"`
	LastUsedAt          *time.Time  `json:"last_used_at"`
	TotalRequests       int64       `json:"total_requests"`
	PromptTokens        int64       `json:"prompt_tokens"`
	CompletionTokens    int64       `json:"completion_tokens"`
	Cost                float64     `json:"cost"`
	SuggestedAction     string      `json:"suggested_action"`
	OperatorDisabled    bool        `json:"operator_disabled"`
	Source              *SourceView `json:"source,omitempty"`
}

// SourceView describes where a fetched key comes from and how that goes
// (SPEC section 5): the type, its state (starting, ready, failing, down),
// the last refresh, the expiry and the last error. It holds no secret.
type SourceView struct {
	Type      string    `json:"type"`
	Target    string    `json:"target"`
	State     string    `json:"state"`
	URL       string    `json:"url,omitempty"`
	SceneCode string    `json:"scene_code,omitempty"`
	FetchedAt time.Time `json:"fetched_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Fetches   int       `json:"fetches"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
}

// View derives the key's status and statistics at now.
func (k *Key) View(now time.Time) KeyView {
	v := KeyView{
		ID: k.ID, Masked: k.Masked(), Models: []string{},
		SuccessCount: k.successes.Load(), FailureCount: k.failures.Load(),
		TotalRequests: k.requests.Load(), PromptTokens: k.promptTok.Load(),
		CompletionTokens: k.complTok.Load(), Cost: float64(k.costMicros.Load()) / 1e6,
		OperatorDisabled: k.opDisabled.Load(),
	}
	if r := k.Refresher(); r != nil {
		sv := r.Describe()
		v.Source = &sv
	}
	if m := k.modelsCache.Load(); m != nil {
		v.Models = append(v.Models, (*m)...)
	}
	if lu := k.lastUsed.Load(); lu != 0 {
		t := time.Unix(0, lu).UTC()
		v.LastUsedAt = &t
	}
	calls := v.SuccessCount + v.FailureCount
	v.SuccessRate = 100
	if calls > 0 {
		v.SuccessRate = float64(v.SuccessCount) * 100 / float64(calls)
	}
	if v.SuccessCount > 0 {
		v.AvgLatencyMS = float64(k.latencyMS.Load()) / float64(v.SuccessCount)
	}

	// The key-wide state speaks first; else the model slot with the latest trouble.
	wide := k.st.view()
	sv := wide
	if sv.Class == "" && !sv.Disabled {
		k.slotsMu.Lock()
		for _, s := range k.slots {
			if x := s.st.view(); x.Class != "" && x.LastErrorAt.After(sv.LastErrorAt) {
				sv = x
			}
		}
		k.slotsMu.Unlock()
	}
	if sv.LastError == "" {
		sv.LastError = wide.LastError
	}
	v.ErrorClass, v.RetryCount, v.LastError = sv.Class, sv.Retries, truncate(sv.LastError, 256)
	if !sv.FirstErrorAt.IsZero() {
		t := sv.FirstErrorAt
		v.FirstErrorAt = &t
	}
	if !sv.BlockedUntil.IsZero() {
		t := sv.BlockedUntil
		v.NextRetryAt = &t
		if left := t.Sub(now).Seconds(); left > 0 {
			v.CooldownSecondsLeft = left
		}
	}

	switch {
	case v.OperatorDisabled || sv.Disabled:
		v.Status = StatusDisabled
	case v.CooldownSecondsLeft > 0:
		v.Status = StatusCooldown
	case calls == 0:
		v.Status = StatusUnused
	case v.SuccessRate < 70:
		v.Status = StatusError
	case calls >= 5 && v.AvgLatencyMS > 15000:
		v.Status = StatusWarning
	default:
		v.Status = StatusHealthy
	}
	v.SuggestedAction = suggestedActions[v.Status]
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// States returns the persisted form of every key and slot whose state or
// totals changed since the last call, and clears their dirty marks.
func (p *Pool) States(now time.Time, all bool) []keygate.KeyState {
	keys, slots := p.everything()
	var out []keygate.KeyState
	for _, k := range keys {
		d1, d2 := k.st.dirty.Swap(false), k.statsDirty.Swap(false)
		if !all && !d1 && !d2 {
			continue
		}
		ks := stateRecord(k.ID, "", k.st.view(), now)
		ks.OperatorDisabled = k.opDisabled.Load()
		ks.Requests, ks.Successes, ks.Failures = k.requests.Load(), k.successes.Load(), k.failures.Load()
		ks.LatencyMS, ks.PromptTokens, ks.CompletionTokens = k.latencyMS.Load(), k.promptTok.Load(), k.complTok.Load()
		ks.Cost = float64(k.costMicros.Load()) / 1e6
		if lu := k.lastUsed.Load(); lu != 0 {
			ks.LastUsedAt = time.Unix(0, lu).UTC()
		}
		out = append(out, ks)
	}
	for _, s := range slots {
		if !s.st.dirty.Swap(false) && !all {
			continue
		}
		out = append(out, stateRecord(s.Key.ID, s.Model, s.st.view(), now))
	}
	return out
}

func stateRecord(keyID, model string, v StateView, now time.Time) keygate.KeyState {
	return keygate.KeyState{
		KeyID: keyID, Model: model, Class: v.Class, Streak: v.Streak, Retries: v.Retries,
		Disabled: v.Disabled, Cooling: v.Cooling, BlockedUntil: v.BlockedUntil,
		FirstErrorAt: v.FirstErrorAt, LastErrorAt: v.LastErrorAt, LastError: v.LastError, UpdatedAt: now,
	}
}

// Restore loads persisted states into keys and slots the pool knows; call
// it after Load at start. States of keys no longer configured are kept
// too, so a key that comes back remembers.
func (p *Pool) Restore(states []keygate.KeyState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ks := range states {
		k := p.keys[ks.KeyID]
		if k == nil {
			continue
		}
		v := StateView{Class: ks.Class, Streak: ks.Streak, Retries: ks.Retries, Disabled: ks.Disabled,
			Cooling: ks.Cooling, BlockedUntil: ks.BlockedUntil, FirstErrorAt: ks.FirstErrorAt,
			LastErrorAt: ks.LastErrorAt, LastError: ks.LastError}
		if ks.Model != "" {
			if s := p.slots[slotID{ks.KeyID, ks.Model}]; s != nil {
				s.st.restore(v, 0)
			}
			continue
		}
		k.st.restore(v, 0)
		if ks.OperatorDisabled {
			k.opDisabled.Store(true)
		}
		k.requests.Store(ks.Requests)
		k.successes.Store(ks.Successes)
		k.failures.Store(ks.Failures)
		k.latencyMS.Store(ks.LatencyMS)
		k.promptTok.Store(ks.PromptTokens)
		k.complTok.Store(ks.CompletionTokens)
		k.costMicros.Store(int64(ks.Cost * 1e6))
		if !ks.LastUsedAt.IsZero() {
			k.lastUsed.Store(ks.LastUsedAt.UnixNano())
		}
	}
}
