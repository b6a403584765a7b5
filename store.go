package keygate

import "context"

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

// KeyPolicy tunes how the pool treats failing keys (SPEC section 4).
type KeyPolicy struct {
	// MaxRetries is how many further keys a request may try after the first.
	MaxRetries int `json:"max_retries" yaml:"max_retries"`
}

// DefaultKeyPolicy returns the SPEC defaults.
func DefaultKeyPolicy() KeyPolicy { return KeyPolicy{MaxRetries: 3} }
