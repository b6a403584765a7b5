package keysource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

const (
	maxAnswer  = 1 << 20 // bytes of an answer read
	snippetLen = 200     // bytes of an answer quoted in an error
)

// fetch is one round: up to s.attempts attempts, s.interval apart on the
// injected clock. It installs the key it gets. ctx ending is not a failure:
// it returns ctx.Err() without logging.
func (s *Source) fetch(ctx context.Context) (Lease, error) {
	var err error
	for attempt := 1; attempt <= s.attempts; attempt++ {
		if attempt > 1 && !s.sleep(ctx, s.interval) {
			return Lease{}, ctx.Err()
		}
		var l Lease
		if l, err = s.fetchOnce(ctx); err == nil {
			s.install(l)
			return l, nil
		}
		if ctx.Err() != nil {
			return Lease{}, ctx.Err()
		}
		s.mu.Lock()
		s.failures++
		s.lastErr = err
		s.mu.Unlock()
		s.log.Warn("key fetch failed", "attempt", fmt.Sprintf("%d/%d", attempt, s.attempts), "error", err)
	}

	// Say which key requests get now, so an operator knows how urgent this is.
	if cur := s.Current(); cur.Valid(s.clock.Now()) {
		s.log.Error("key fetch: all attempts failed", "key", keygate.Mask(cur.Secret),
			"expires_at", cur.ExpiresAt, "error", err)
	} else {
		s.log.Error("key fetch: all attempts failed", "key", "backup", "error", err)
	}
	return Lease{}, err
}

// sleep waits d on the source's clock and reports false if ctx ended first.
func (s *Source) sleep(ctx context.Context, d time.Duration) bool {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}

// fetchOnce asks the fetcher for a credential, once, within timeout_seconds.
func (s *Source) fetchOnce(ctx context.Context) (Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	l, err := s.fetcher.fetch(ctx)
	if err == nil {
		l, err = sane(l, s.clock.Now())
	}
	if err != nil {
		return Lease{}, fmt.Errorf("fetch key from %s: %w", s.fetcher.target(), err)
	}
	return l, nil
}

// sane is the check every fetched credential passes, whatever its source.
// A key handed out with a trailing newline is the source's slip, not a
// different key; one with a character inside that no header can carry
// would fail every request, so it is refused like a failed fetch. A
// lifetime past MaxLifetime is cut to it, and a lease already expired on
// arrival is refused.
func sane(l Lease, now time.Time) (Lease, error) {
	l.Secret = strings.TrimSpace(l.Secret)
	if l.Secret == "" {
		return Lease{}, errors.New("the credential is empty")
	}
	if i := strings.IndexFunc(l.Secret, notHeaderSafe); i >= 0 {
		return Lease{}, fmt.Errorf("the credential holds a character a header cannot carry (%U at byte %d)", []rune(l.Secret[i:])[0], i)
	}
	if !l.ExpiresAt.After(now) {
		return Lease{}, fmt.Errorf("the credential expired on arrival (%s)", l.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if l.ExpiresAt.Sub(now) > MaxLifetime {
		l.ExpiresAt = now.Add(MaxLifetime)
	}
	return l, nil
}

// notHeaderSafe reports a rune a credential may not hold: anything but
// visible ASCII, since it travels in a header (Authorization, x-api-key …).
func notHeaderSafe(r rune) bool { return r <= ' ' || r >= 0x7f }

// MaxLifetime caps the lifetime a source may give a credential. Longer ones
// (a "never expires" 9999999999, which overflowed to the year 1734) are
// taken as this: the key is refreshed once a day, not never and not in a storm.
const MaxLifetime = 24 * time.Hour

// expiry reads expires_in (seconds, a number or a numeric string), else
// the field atField names (expire_time for a key service; RFC 3339, or unix
// seconds or milliseconds), else returns now+def. expires_in is preferred:
// it does not depend on the two machines' clocks agreeing.
func expiry(fields map[string]json.RawMessage, atField string, now time.Time, def time.Duration) (time.Time, error) {
	if raw, ok := present(fields, "expires_in"); ok {
		n, ok := number(raw)
		if !ok {
			return time.Time{}, fmt.Errorf("answer field \"expires_in\" is %s, want seconds", kind(raw))
		}
		if n <= 0 {
			return time.Time{}, fmt.Errorf("answer field \"expires_in\" is %v: the key has already expired", n)
		}
		if n >= MaxLifetime.Seconds() { // also keeps the conversion below from overflowing
			return now.Add(MaxLifetime), nil
		}
		return now.Add(time.Duration(n * float64(time.Second))), nil
	}
	if raw, ok := present(fields, atField); ok {
		var t time.Time
		var str string
		if json.Unmarshal(raw, &str) == nil {
			t, _ = time.Parse(time.RFC3339, str)
		}
		if n, ok := number(raw); ok && t.IsZero() {
			// A unix time in seconds passes 1e11 in the year 5138; in ms, in 1973.
			switch {
			case n >= 1e15: // past the year 33658 in ms: "never"
				t = now.Add(MaxLifetime)
			case n >= 1e11:
				t = time.UnixMilli(int64(n))
			default:
				t = time.Unix(int64(n), 0)
			}
		}
		switch {
		case t.IsZero():
			return time.Time{}, fmt.Errorf("answer field %q is %s, want RFC 3339 or unix time", atField, kind(raw))
		case !t.After(now):
			return time.Time{}, fmt.Errorf("answer field %q is %s: the key has already expired", atField, t.UTC().Format(time.RFC3339))
		}
		return t, nil
	}
	return now.Add(def), nil
}

// present returns fields[name] unless it is missing or null.
func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	return raw, ok && string(raw) != "null"
}

// number reads a JSON number or a string holding one.
func number(raw json.RawMessage) (float64, bool) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(n)), 64)
	return f, err == nil
}

// kind names a JSON value's type, for errors that must not quote the value.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// tokenish matches runs that could be a secret: long, no spaces.
var tokenish = regexp.MustCompile(`[A-Za-z0-9_\-+/=.~]{16,}`)

// snippet is the start of an answer, made safe to log. The service may echo
// the key or a credential, and there is no telling which word it is, so
// besides the secrets the source knows, every long run mixing letters and
// digits is masked; ordinary words and messages survive.
func (s *Source) snippet(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return "(empty body)"
	}
	out := string(b)
	if len(b) > snippetLen {
		// ToValidUTF8 drops a character the cut split in half.
		out = strings.ToValidUTF8(out[:snippetLen], "") + "…"
	}
	out = keygate.MaskIn(out, s.Current().Secret)
	for _, v := range s.spec.Secrets() {
		if len(v) >= 8 { // shorter values would mask ordinary words
			out = keygate.MaskIn(out, v)
		}
	}
	return tokenish.ReplaceAllStringFunc(out, func(w string) string {
		if strings.ContainsAny(w, "0123456789") && strings.IndexFunc(w, isLetter) >= 0 {
			return keygate.Mask(w)
		}
		return w
	})
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
