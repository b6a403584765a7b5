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

// TokenStore keeps gateway tokens. Only their hash is stored.
type TokenStore interface {
	// CreateToken adds a token (Hash set, Token empty) and sets its ID.
	CreateToken(ctx context.Context, t *TokenSpec) error
	// UpsertToken adds or replaces the token with t.Name (tokens declared in the YAML file).
	UpsertToken(ctx context.Context, t *TokenSpec) error
	ListTokens(ctx context.Context) ([]TokenSpec, error)
	DeleteToken(ctx context.Context, id int64) error
}

// UsageQuery selects and groups usage records.
type UsageQuery struct {
	From, To time.Time // From inclusive, To exclusive; zero = open
	GroupBy  string    // key, model, user, token; "" = one total
	Token    string    // only this token's records, if set
	User     string    // only this user's records, if set
}

// UsageTotal is one group of usage (SPEC section 6).
type UsageTotal struct {
	Group            string  `json:"group"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	Cost             float64 `json:"cost"`
}

// UsageReader aggregates usage records.
type UsageReader interface {
	SumUsage(ctx context.Context, q UsageQuery) ([]UsageTotal, error)
}
