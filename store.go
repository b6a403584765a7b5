package keygate

import (
	"context"
	"time"
)

// UsageStore persists usage records. Callers hand it batches; it is never
// called on the request path (see package usage).
type UsageStore interface {
	InsertUsage(ctx context.Context, records []UsageRecord) error
}

// Store is the persistent state of the gateway. SQLite is the embedded
// default; PostgreSQL shares the same interface.
type Store interface {
	UsageStore
	// Ping reports whether the store is reachable (used by /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// KeyState is the persisted health and totals of a key (Model "") or of a
// key under one model (Model set; only the health fields are used).
type KeyState struct {
	KeyID            string
	Model            string
	Class            string
	Streak           int
	Retries          int
	Disabled         bool
	Cooling          bool
	BlockedUntil     time.Time
	FirstErrorAt     time.Time
	LastErrorAt      time.Time
	LastError        string
	OperatorDisabled bool
	Requests         int64
	Successes        int64
	Failures         int64
	LatencyMS        int64
	LastUsedAt       time.Time
	PromptTokens     int64
	CompletionTokens int64
	Cost             float64
	UpdatedAt        time.Time
}

// KeyStateStore keeps key health across restarts. Writes come in batches
// from a writer behind the request path.
type KeyStateStore interface {
	SaveKeyStates(ctx context.Context, states []KeyState) error
	LoadKeyStates(ctx context.Context) ([]KeyState, error)
}
