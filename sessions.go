package keygate

import (
	"context"
	"time"
)

// DashboardSession is a signed-in dashboard browser as every replica sees
// it (SPEC 10). ID is the SHA-256 (hex) of the cookie's value, never the
// value; Credential is what the browser signed in with (the admin token or
// an admin's login token), kept sealed with the master key.
type DashboardSession struct {
	ID         string
	Credential string
	Who        string // shown in the header: a username or "admin token"
	Expires    time.Time
}

// SessionStore keeps dashboard sessions, shared by the replicas of one
// database, so a session made on one is known on all and a sign-out on one
// ends it on all.
type SessionStore interface {
	CreateSession(ctx context.Context, s DashboardSession) error
	// FindSession returns ENotFound for an unknown or signed-out id.
	FindSession(ctx context.Context, id string) (*DashboardSession, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions drops the sessions whose expiry is not after now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
}
