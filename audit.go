package keygate

import (
	"context"
	"time"
)

// AuditEntry is one line of the audit log (SPEC section 7): an admin
// change, a login or a failed login. It never holds a secret: the target
// is an id or a name, never a key, a token or a password.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // "admin" (the admin token), "user:<name>", or the username a login tried
	Action string    `json:"action"` // e.g. models.create, keys.disable, login, login.failed
	Target string    `json:"target"` // the id or name acted on, "" if none
	Source string    `json:"source"` // the caller's address
	Status int       `json:"status"` // the answer's HTTP status
}

// AuditFilter selects audit entries; zero fields leave a bound open.
type AuditFilter struct {
	From, To      time.Time
	Actor, Action string
	Limit         int
}

// AuditStore keeps the audit log.
type AuditStore interface {
	InsertAudit(ctx context.Context, entries []AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}
