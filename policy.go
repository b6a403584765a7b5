package keygate

import (
	"fmt"
	"time"
)

// KeyPolicy tunes how the pool treats failing keys (SPEC section 4). Each
// class of failure has its own cooldown rule; the YAML names are the class
// names (key_policy: {rate_limit_exceeded: {cooldown: 30s}}).
type KeyPolicy struct {
	// MaxRetries is how many further keys a request may try after the first
	// when keys fail (auth, quota, rate limit, server errors).
	MaxRetries int `json:"max_retries" yaml:"max_retries"`
	// NetworkRetries is a separate budget for transient network errors, so
	// rotating away from bad keys does not use it up.
	NetworkRetries int `json:"network_retries" yaml:"network_retries"`

	Authentication     ClassPolicy `json:"authentication_error" yaml:"authentication_error"`
	PermissionDenied   ClassPolicy `json:"permission_denied" yaml:"permission_denied"`
	InsufficientQuota  ClassPolicy `json:"insufficient_quota" yaml:"insufficient_quota"`
	RateLimit          ClassPolicy `json:"rate_limit_exceeded" yaml:"rate_limit_exceeded"`
	ServiceUnavailable ClassPolicy `json:"service_unavailable" yaml:"service_unavailable"`
	Internal           ClassPolicy `json:"internal_error" yaml:"internal_error"`
	Unknown            ClassPolicy `json:"unknown_error" yaml:"unknown_error"`
	// Network is the short cooldown of a key whose calls failed at the
	// network level NetworkStreak times in a row while its peers succeeded
	// (a connection reset or closed before headers, for this key only).
	Network       ClassPolicy `json:"network_error" yaml:"network_error"`
	NetworkStreak int         `json:"network_streak" yaml:"network_streak"`
}

// ClassPolicy is the cooldown rule of one failure class: the first failure
// cools the key for Cooldown, each further one in a row doubles it up to
// MaxCooldown, and DisableAfter failures in a row disable the key until a
// reset or a passing check (1 = at once, 0 = never).
type ClassPolicy struct {
	Cooldown     Duration `json:"cooldown" yaml:"cooldown"`
	MaxCooldown  Duration `json:"max_cooldown" yaml:"max_cooldown"`
	DisableAfter int      `json:"disable_after" yaml:"disable_after"`
}

// DefaultKeyPolicy returns the SPEC defaults.
func DefaultKeyPolicy() KeyPolicy {
	d := func(v time.Duration) Duration { return Duration(v) }
	return KeyPolicy{
		MaxRetries:         3,
		NetworkRetries:     2,
		Authentication:     ClassPolicy{DisableAfter: 1},
		PermissionDenied:   ClassPolicy{Cooldown: d(time.Hour), MaxCooldown: d(24 * time.Hour), DisableAfter: 3},
		InsufficientQuota:  ClassPolicy{Cooldown: d(time.Hour), MaxCooldown: d(24 * time.Hour), DisableAfter: 3},
		RateLimit:          ClassPolicy{Cooldown: d(time.Minute), MaxCooldown: d(10 * time.Minute)},
		ServiceUnavailable: ClassPolicy{Cooldown: d(10 * time.Second), MaxCooldown: d(5 * time.Minute)},
		Internal:           ClassPolicy{Cooldown: d(10 * time.Second), MaxCooldown: d(5 * time.Minute)},
		Unknown:            ClassPolicy{Cooldown: d(5 * time.Minute), MaxCooldown: d(24 * time.Hour), DisableAfter: 2},
		Network:            ClassPolicy{Cooldown: d(10 * time.Second), MaxCooldown: d(5 * time.Minute)},
		NetworkStreak:      3,
	}
}

// ForClass returns the rule for a class name, and false for classes that
// never cool a key down (network, client errors).
func (p *KeyPolicy) ForClass(class string) (ClassPolicy, bool) {
	switch class {
	case "authentication_error":
		return p.Authentication, true
	case "permission_denied":
		return p.PermissionDenied, true
	case "insufficient_quota":
		return p.InsufficientQuota, true
	case "rate_limit_exceeded":
		return p.RateLimit, true
	case "service_unavailable":
		return p.ServiceUnavailable, true
	case "internal_error":
		return p.Internal, true
	case "unknown_error":
		return p.Unknown, true
	}
	return ClassPolicy{}, false
}

// Backoff returns the cooldown after streak failures in a row (streak >= 1):
// Cooldown doubled streak-1 times, capped at MaxCooldown.
func (c ClassPolicy) Backoff(streak int) time.Duration {
	d := time.Duration(c.Cooldown)
	max := time.Duration(c.MaxCooldown)
	if max < d {
		max = d
	}
	for i := 1; i < streak && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// Duration is a time.Duration written as "90s", "10m" or "1h" in YAML and JSON.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 90s or 10m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
