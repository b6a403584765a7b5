// Package keysource keeps a credential that expires fresh (SPEC section 5):
// it fetches the credential, refreshes it before it expires in the
// background, retries a failed fetch, and fetches a new one at once when the
// provider rejects the current one early. Where the credential comes from is
// a fetcher, one file per key_source.type: a key service (keyservice.go), a
// command (command.go), an OAuth 2.0 token endpoint (oauth2.go) or a Google
// service account (gcp.go). Source is the machinery the key pool builds on;
// Transport puts it in front of any http.Client, for applications that use
// expiring credentials without the gateway.
package keysource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
)

// Defaults for the zero values of keygate.KeySource, as in SPEC section 1.
const (
	defaultMethod        = http.MethodGet
	defaultResultField   = "result"
	defaultExpire        = 600 * time.Second
	defaultRefreshBefore = 120 * time.Second
	defaultTimeout       = 10 * time.Second
	defaultAttempts      = 3
	defaultRetryInterval = time.Second

	// maxPause caps the pause between failed rounds of attempts.
	maxPause = 30 * time.Second

	// minRefetch is the least time between the starts of two rounds of
	// fetches, whatever asks for them (the schedule, a rejection, a
	// waiting request): a source that hands out keys that are already
	// stale, or that the provider refuses, is asked once a second, not in
	// a storm.
	minRefetch = time.Second
)

// errStopped is what a fetch asked for after Run has returned gets.
var errStopped = errors.New("keysource: stopped")

// Lease is a fetched key and its lifetime.
type Lease struct {
	Secret    string
	FetchedAt time.Time
	ExpiresAt time.Time
}

// Valid reports whether the lease holds a key that has not expired at now.
func (l Lease) Valid(now time.Time) bool { return l.Secret != "" && now.Before(l.ExpiresAt) }

// Options are a Source's dependencies. Every field is optional.
type Options struct {
	Client *http.Client    // default: a client with the spec's timeout
	Clock  clockwork.Clock // default: the real clock
	Logger *slog.Logger    // default: slog.Default()
	Name   string          // the model id, for logs
	// Vault keeps what a source learns that must outlive a restart (an
	// OAuth 2.0 refresh token the server rotated), under VaultName.
	// Without one it is kept in memory only.
	Vault     Vault
	VaultName string
	Share     Sharer // several replicas share this source's keys (see shared.go); nil: fetch alone
}

// Vault keeps a source's secrets across restarts. The implementation
// encrypts them at rest; values never appear in its errors.
type Vault interface {
	LoadSecret(ctx context.Context, name string) (value string, found bool, err error)
	SaveSecret(ctx context.Context, name, value string) error
}

// fetcher gets one credential, once: one file per key_source.type. The
// Source decides when, bounds each call by timeout_seconds, retries and
// installs what it returns; a fetcher's errors must hold no secret.
type fetcher interface {
	fetch(ctx context.Context) (Lease, error)
	// target says where credentials come from, safe to show.
	target() string
}

// Source hands out the key a key service issues and keeps it fresh. Its
// methods are safe for concurrent use; Run drives the background refresh.
type Source struct {
	spec          keygate.KeySource // defaults applied
	fetcher       fetcher
	opts          Options
	client        *http.Client
	clock         clockwork.Clock
	log           *slog.Logger
	expire        time.Duration
	refreshBefore time.Duration
	timeout       time.Duration
	interval      time.Duration
	attempts      int
	share         Sharer

	// ctx bounds every fetch; it ends when Run returns.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetches in progress

	// lease is read on every request, so it is an atomic, not under mu.
	lease atomic.Pointer[Lease]

	installMu sync.Mutex // held by install, across its callbacks

	mu       sync.Mutex
	flight   *flight       // the fetch in progress, nil if none
	changed  chan struct{} // closed and replaced whenever lease changes
	onChange []func(Lease)
	closed   bool      // Run has returned: no new fetches
	started  time.Time // when the last round of fetches started
	fetches  int
	failures int
	lastErr  error
}

// flight is one round of fetch attempts, shared by everyone who asks for a
// key while it runs; done is closed once lease or err is set.
type flight struct {
	done  chan struct{}
	lease Lease
	err   error
}

// New checks spec, applies its defaults and returns a Source. Nothing is
// fetched before Run, Wait or Rejected.
func New(spec keygate.KeySource, opts Options) (*Source, error) {
	if spec.Kind() == keygate.SourceKeyService {
		spec.Method = cmp.Or(strings.ToUpper(spec.Method), defaultMethod)
		spec.ResultField = cmp.Or(spec.ResultField, defaultResultField)
	}
	spec.ExpireSeconds = cmp.Or(spec.ExpireSeconds, int(defaultExpire/time.Second))
	if spec.RefreshBeforeSeconds == 0 && spec.ExpireSeconds > 0 {
		// A fifth of a short lifetime, so a short expire_seconds alone is valid.
		spec.RefreshBeforeSeconds = min(int(defaultRefreshBefore/time.Second), spec.ExpireSeconds/5)
	}
	spec.TimeoutSeconds = cmp.Or(spec.TimeoutSeconds, int(defaultTimeout/time.Second))
	spec.Retries = cmp.Or(spec.Retries, defaultAttempts)
	spec.RetryIntervalMS = cmp.Or(spec.RetryIntervalMS, int(defaultRetryInterval/time.Millisecond))

	timeout := time.Duration(spec.TimeoutSeconds) * time.Second
	s := &Source{
		spec:          spec,
		opts:          opts,
		client:        opts.Client,
		clock:         opts.Clock,
		log:           cmp.Or(opts.Logger, slog.Default()).With("model", opts.Name),
		expire:        time.Duration(spec.ExpireSeconds) * time.Second,
		refreshBefore: time.Duration(spec.RefreshBeforeSeconds) * time.Second,
		timeout:       timeout,
		interval:      time.Duration(spec.RetryIntervalMS) * time.Millisecond,
		attempts:      spec.Retries,
		share:         opts.Share,
		changed:       make(chan struct{}),
	}
	s.spec.Headers = make(map[string]string, len(spec.Headers))
	for k, v := range spec.Headers {
		s.spec.Headers[k] = v
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: timeout}
	}
	if s.clock == nil {
		s.clock = clockwork.NewRealClock()
	}
	var problems Problems
	s.fetcher = newFetcher(s, &problems)
	validate(spec, &problems)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// newFetcher builds the fetcher of s.spec's type, adding what is wrong with
// its fields to p.
func newFetcher(s *Source, p *Problems) fetcher {
	switch s.spec.Kind() {
	case keygate.SourceKeyService:
		return newKeyService(s, p)
	case keygate.SourceCommand:
		return newCommand(s, p)
	case keygate.SourceOAuth2:
		return newOAuth2(s, p)
	case keygate.SourceGCPServiceAccount:
		return newGCP(s, p)
	}
	p.Add("type", "%q must be one of %s, %s, %s, %s", s.spec.Type, keygate.SourceKeyService,
		keygate.SourceCommand, keygate.SourceOAuth2, keygate.SourceGCPServiceAccount)
	return nil
}

// Problem is one thing wrong with a key_source: the field, and why.
type Problem struct{ Field, Reason string }

// Problems collects every problem of a key_source at once.
type Problems []Problem

// Add records a problem with field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, Problem{field, fmt.Sprintf(format, args...)})
}

// Err joins the problems into one error, each line "key_source.<field>: <reason>".
func (p Problems) Err() error {
	var errs []error
	for _, x := range p {
		errs = append(errs, fmt.Errorf("key_source.%s: %s", x.Field, x.Reason))
	}
	return errors.Join(errs...)
}

// foreign reports the fields set that belong to another type: a field the
// source ignores is most likely a mistake in its type or its name.
func foreign(spec keygate.KeySource, p *Problems) {
	kind := spec.Kind()
	fields := []struct {
		name, owner string
		set         bool
	}{
		{"url", keygate.SourceKeyService, spec.URL != ""},
		{"scene_code", keygate.SourceKeyService, spec.SceneCode != ""},
		{"headers", keygate.SourceKeyService, len(spec.Headers) > 0},
		{"command", keygate.SourceCommand, len(spec.Command) > 0},
		{"token_url", keygate.SourceOAuth2, spec.TokenURL != ""},
		{"client_id", keygate.SourceOAuth2, spec.ClientID != ""},
		{"client_secret", keygate.SourceOAuth2, spec.ClientSecret != ""},
		{"scope", keygate.SourceOAuth2, spec.Scope != ""},
		{"refresh_token", keygate.SourceOAuth2, spec.RefreshToken != ""},
		{"credentials_file", keygate.SourceGCPServiceAccount, spec.CredentialsFile != ""},
		{"credentials_json", keygate.SourceGCPServiceAccount, spec.CredentialsJSON != ""},
		{"scopes", keygate.SourceGCPServiceAccount, len(spec.Scopes) > 0},
	}
	for _, f := range fields {
		if f.set && f.owner != kind {
			p.Add(f.name, "belongs to type %s, not %s", f.owner, kind)
		}
	}
}

// Check returns what is wrong with the fields of spec's type and the fields
// set that belong to another type, without fetching anything, for config
// validation to name the field and why. The fields every type shares, and
// a key service's own (which config checks itself), are the caller's.
func Check(spec keygate.KeySource) Problems {
	var p Problems
	if spec.Kind() != keygate.SourceKeyService {
		newFetcher(&Source{spec: spec}, &p)
	}
	foreign(spec, &p)
	return p
}

// validate adds the problems of the fields every type shares to p.
func validate(spec keygate.KeySource, p *Problems) {
	add := p.Add
	foreign(spec, p)
	if spec.ExpireSeconds <= 0 {
		add("expire_seconds", "%d must be positive", spec.ExpireSeconds)
	}
	if spec.RefreshBeforeSeconds < 0 {
		add("refresh_before_seconds", "%d must not be negative", spec.RefreshBeforeSeconds)
	} else if spec.ExpireSeconds > 0 && spec.RefreshBeforeSeconds >= spec.ExpireSeconds {
		add("refresh_before_seconds", "%d must be smaller than expire_seconds (%d)",
			spec.RefreshBeforeSeconds, spec.ExpireSeconds)
	}
	if spec.TimeoutSeconds < 0 {
		add("timeout_seconds", "%d must not be negative", spec.TimeoutSeconds)
	}
	if spec.Retries < 0 {
		add("retries", "%d must not be negative", spec.Retries)
	}
	if spec.RetryIntervalMS < 0 {
		add("retry_interval_ms", "%d must not be negative", spec.RetryIntervalMS)
	}
}

// httpURL parses the URL in field, adding a problem unless it is an
// absolute http or https URL; what it returns is nil when it does not parse.
func httpURL(p *Problems, field, raw, what string) *url.URL {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		p.Add(field, "required%s", what)
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		p.Add(field, "%q must be an absolute http or https URL", shownRaw(raw))
	}
	if err != nil {
		return nil
	}
	return u
}

// shown is u without its query, fragment and password, which may hold secrets.
func shown(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// shownRaw is shown for a URL that may not parse.
func shownRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return shown(u)
	}
	raw, _, _ = strings.Cut(raw, "?")
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		raw = raw[at+1:]
	}
	return raw
}

// Run fetches the first key, then keeps it fresh until ctx ends, and waits
// for its fetches to stop before returning. Call it once; after it returns,
// the source fetches nothing more.
//
// A key is refreshed refresh_before_seconds before it expires (or, for a key
// the service says lives shorter than that, at the same fraction of its
// lifetime). A round of attempts that all fail is followed by a pause of
// twice the retry interval, doubling after every failed round up to 30 s,
// so a key service that is down is asked about three times every half minute.
func (s *Source) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, s.cancel)
	defer func() {
		stop()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
	}()

	var pause time.Duration // the last pause after a failed round; zero after a success
	var retryAt time.Time   // no new round before this after a failed one
	for {
		s.mu.Lock()
		changed := s.changed
		next := s.refreshAt(s.Current())
		if retryAt.After(next) {
			next = retryAt
		}
		var f *flight
		if !s.clock.Now().Before(next) {
			f = s.startLocked()
		}
		s.mu.Unlock()

		if f != nil {
			select {
			case <-f.done:
			case <-s.ctx.Done():
				return
			}
			if f.err == nil {
				pause, retryAt = 0, time.Time{}
			} else {
				pause = min(max(2*pause, 2*s.interval), max(maxPause, s.interval))
				retryAt = s.clock.Now().Add(pause)
			}
			continue
		}

		t := s.clock.NewTimer(next.Sub(s.clock.Now()))
		select {
		case <-t.Chan():
		case <-changed:
			// A fetch by Wait or Rejected, or a rejection: reschedule. A valid
			// key means the service is back, so the pauses start over.
			if s.Current().Valid(s.clock.Now()) {
				pause, retryAt = 0, time.Time{}
			}
		case <-s.ctx.Done():
		}
		t.Stop()
		if s.ctx.Err() != nil {
			return
		}
	}
}

// refreshAt is when l should be replaced: refresh_before_seconds before it
// expires, or at once when there is no key.
func (s *Source) refreshAt(l Lease) time.Time {
	if l.Secret == "" {
		return time.Time{}
	}
	before := s.refreshBefore
	if life := l.ExpiresAt.Sub(l.FetchedAt); before >= life {
		// The service gave a shorter life than configured: keep the proportion.
		before = time.Duration(float64(life) * float64(s.refreshBefore) / float64(s.expire))
	}
	return l.ExpiresAt.Add(-before)
}

// startLocked returns the fetch in progress, or starts one. s.mu must be held.
func (s *Source) startLocked() *flight {
	if s.flight != nil {
		return s.flight
	}
	f := &flight{done: make(chan struct{})}
	if s.closed {
		f.err = errStopped
		close(f.done)
		return f
	}
	s.flight = f
	now := s.clock.Now()
	gap := time.Duration(0)
	if !s.started.IsZero() {
		gap = minRefetch - now.Sub(s.started)
	}
	s.started = now.Add(max(gap, 0))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if gap > 0 && !s.sleep(s.ctx, gap) {
			f.err = s.ctx.Err()
		} else {
			f.lease, f.err = s.fetchShared(s.ctx)
		}
		s.mu.Lock()
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
	}()
	return f
}

// Current returns the current lease, possibly expired or empty, without
// waiting and without I/O.
func (s *Source) Current() Lease {
	if l := s.lease.Load(); l != nil {
		return *l
	}
	return Lease{}
}

// Wait returns a valid lease, at once if there is one. Otherwise it joins
// the round of attempts in progress, or starts one (so that a model without
// a backup key recovers as soon as the service does, not after the
// background's pause), and returns as soon as any fetch installs a key. If
// ctx ends first it returns an error wrapping ctx.Err() and the last fetch
// error.
func (s *Source) Wait(ctx context.Context) (Lease, error) {
	if l := s.Current(); l.Valid(s.clock.Now()) {
		return l, nil
	}
	started := false
	for {
		s.mu.Lock()
		if l := s.Current(); l.Valid(s.clock.Now()) {
			s.mu.Unlock()
			return l, nil
		}
		if s.closed {
			s.mu.Unlock()
			return Lease{}, errStopped
		}
		changed := s.changed
		if !started {
			s.startLocked()
			started = true
		}
		last := s.lastErr
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			if last != nil {
				return Lease{}, fmt.Errorf("wait for a key: %w (last fetch: %w)", ctx.Err(), last)
			}
			return Lease{}, fmt.Errorf("wait for a key: %w", ctx.Err())
		}
	}
}

// Rejected is called when the provider rejected secret as invalid before its
// expiry. If secret is still the current key, the source stops handing it
// out and fetches a new one at once (concurrent callers share that fetch)
// and returns the new lease; if the lease has already moved on, it returns
// the current one. A failed fetch leaves the source running: the background
// keeps trying as after any failed refresh.
func (s *Source) Rejected(ctx context.Context, secret string) (Lease, error) {
	s.mu.Lock()
	cur := s.Current()
	if secret == "" || cur.Secret != secret {
		s.mu.Unlock()
		return cur, nil
	}
	now, expires := s.clock.Now(), cur.ExpiresAt
	first := now.Before(expires) // later callers find it expired already
	if first {
		// The provider's word beats the expiry we were told.
		cur.ExpiresAt = now
		s.lease.Store(&cur)
		s.notifyLocked()
	}
	f := s.startLocked()
	s.mu.Unlock()
	if first {
		s.log.Warn("key rejected by provider", "key", keygate.Mask(secret), "expires_at", expires)
	}

	select {
	case <-f.done:
		return f.lease, f.err
	case <-ctx.Done():
		return Lease{}, ctx.Err()
	}
}

// OnChange registers fn, run every time a new lease is installed (not for
// the leases installed before). fn runs synchronously on the goroutine that
// fetched the key, before the source hands the new lease out or anyone
// waiting for it is woken, with none of the locks of Current and View held;
// it may call those (Current still returns the lease before l), but not
// Wait or Rejected, which would wait for the fetch that is running fn.
func (s *Source) OnChange(fn func(Lease)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// notifyLocked wakes everyone waiting for the lease to change. s.mu must be held.
func (s *Source) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// install makes l the current lease and runs the OnChange callbacks.
// The callbacks run first: until they have installed l where requests look
// for it (the pool's key), the source neither hands l out (Current, Wait)
// nor counts it in View, so a caller told the source is ready finds the
// key in the pool. installMu keeps concurrent installs in order.
func (s *Source) install(l Lease) {
	s.installMu.Lock()
	defer s.installMu.Unlock()
	s.mu.Lock()
	first := s.fetches == 0
	callbacks := s.onChange // append-only, so this prefix never changes
	s.mu.Unlock()

	msg := "key refreshed"
	if first {
		msg = "key service ready"
		if k := s.spec.Kind(); k != keygate.SourceKeyService {
			msg = "key source ready"
		}
	}
	s.log.Info(msg, "key", keygate.Mask(l.Secret), "expires_at", l.ExpiresAt)
	for _, fn := range callbacks {
		fn(l)
	}
	s.mu.Lock()
	s.fetches++
	s.lastErr = nil
	s.lease.Store(&l)
	s.notifyLocked()
	s.mu.Unlock()
}

// Source states, as View shows them.
const (
	StateStarting = "starting" // no credential yet, no fetch failed yet
	StateReady    = "ready"    // a valid credential, the last fetch succeeded
	StateFailing  = "failing"  // refreshes fail; the current credential is still valid
	StateDown     = "down"     // no valid credential: requests use the backup keys
)

// View is a source's state as the admin API shows it; it holds no secret.
type View struct {
	Type      string    `json:"type"`
	Target    string    `json:"target"`        // where credentials come from, without secrets
	URL       string    `json:"url,omitempty"` // a key service's, without query or password
	SceneCode string    `json:"scene_code,omitempty"`
	State     string    `json:"state"`
	Masked    string    `json:"masked"` // the current key masked, "" if none
	FetchedAt time.Time `json:"fetched_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Fetches   int       `json:"fetches"`              // successful fetches
	Failures  int       `json:"failures"`             // failed attempts
	LastError string    `json:"last_error,omitempty"` // since the last success; masked
}

// View returns the source's state.
func (s *Source) View() View {
	l := s.Current()
	v := View{Type: s.spec.Kind(), Target: s.fetcher.target(), FetchedAt: l.FetchedAt, ExpiresAt: l.ExpiresAt}
	if ks, ok := s.fetcher.(*keyService); ok {
		v.URL, v.SceneCode = ks.shown, s.spec.SceneCode
	}
	if l.Secret != "" {
		v.Masked = keygate.Mask(l.Secret)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v.Fetches, v.Failures = s.fetches, s.failures
	if s.lastErr != nil {
		v.LastError = s.lastErr.Error()
	}
	valid := l.Valid(s.clock.Now())
	switch {
	case valid && s.lastErr == nil:
		v.State = StateReady
	case valid:
		v.State = StateFailing
	case s.fetches == 0 && s.failures == 0:
		v.State = StateStarting
	default:
		v.State = StateDown
	}
	return v
}
