package keygate

import (
	"context"
	"time"
)

// User roles (SPEC section 3).
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is a person who logs in. PasswordHash is a slow hash (bcrypt) and
// never leaves the server.
type User struct {
	ID           int64     `json:"id"`
	Username     string    `json:"username"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	UserLimits
}

// UserLimits are a user's optional caps, those of a gateway token (SPEC
// section 3), applied when the user's login token calls the client API.
type UserLimits struct {
	Models []string `json:"models,omitempty"` // default all
	RPM    int      `json:"rpm,omitempty"`
	TPM    int      `json:"tpm,omitempty"`
	Budget *Budget  `json:"budget,omitempty"`
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser adds u and sets u.ID and u.CreatedAt; EConflict when the
	// username is taken.
	CreateUser(ctx context.Context, u *User) error
	ListUsers(ctx context.Context) ([]User, error)
	// FindUser and FindUserByName return ENotFound when there is no such user.
	FindUser(ctx context.Context, id int64) (*User, error)
	FindUserByName(ctx context.Context, username string) (*User, error)
	DeleteUser(ctx context.Context, id int64) error
}

// SettingStore keeps small named values the server generates once and
// shares between replicas (a sealed JWT secret, a master-key check).
type SettingStore interface {
	// Setting returns the value of name; found is false when unset.
	Setting(ctx context.Context, name string) (value []byte, found bool, err error)
	// InitSetting stores value under name unless it is set already, and
	// returns the value that is stored.
	InitSetting(ctx context.Context, name string, value []byte) ([]byte, error)
}
