package keysource

import "context"

// Sharer lets several replicas share one source's keys, so the key service
// is called once per refresh, not once per replica (see package cluster).
type Sharer interface {
	// Fetch returns a lease fresher than stale: one another replica
	// fetched, or the result of fetch, which it runs only when this
	// replica wins the right to (or when the replicas cannot coordinate).
	Fetch(ctx context.Context, stale Lease, fetch func(context.Context) (Lease, error)) (Lease, error)
}

// fetchShared is one round of fetching, through the Sharer if there is one.
func (s *Source) fetchShared(ctx context.Context) (Lease, error) {
	if s.share == nil {
		return s.fetch(ctx)
	}
	stale := s.Current()
	l, err := s.share.Fetch(ctx, stale, s.fetch)
	if err == nil && l != s.Current() {
		s.install(l) // another replica's key: fetch installed only its own
	}
	return l, err
}

// Offer installs a lease another replica fetched, if it is newer than the
// current one and still valid. It reports whether it did.
func (s *Source) Offer(l Lease) bool {
	cur := s.Current()
	if !l.Valid(s.clock.Now()) || l.Secret == cur.Secret || !l.FetchedAt.After(cur.FetchedAt) {
		return false
	}
	s.install(l)
	return true
}
