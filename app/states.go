package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
)

// stateWriter saves changed key health and totals behind the request path:
// every interval it asks the pool what changed and writes it in one batch.
type stateWriter struct {
	pool     *pool.Pool
	store    keygate.KeyStateStore
	clock    clockwork.Clock
	log      *slog.Logger
	interval time.Duration
	pending  []keygate.KeyState // not yet written (the store failed)
	// urgent asks run to flush at once, not at the next tick: a disable or
	// a long cooldown must survive a crash a moment later (see noteChange).
	urgent chan struct{}

	// Totals are written as additions: what each key served since the last
	// write. synced is, per key, the counters the store is known to hold.
	// With others set (several replicas), the store is read back after
	// each write and the other replicas' traffic added to the pool's keys.
	totals keygate.KeyTotalsStore
	others bool
	synced map[string]keygate.KeyTotals
}

// prime takes the pool's counters, as restored from the store, as what the
// store holds.
func (s *stateWriter) prime() {
	s.synced = map[string]keygate.KeyTotals{}
	for _, k := range s.pool.Keys() {
		s.synced[k.ID] = k.Totals()
	}
}

// flushTotals adds each key's traffic since the last write to the store;
// a failed write is retried with the larger difference next time.
func (s *stateWriter) flushTotals(ctx context.Context) error {
	if s.totals == nil {
		return nil
	}
	keys := s.pool.Keys()
	var deltas []keygate.KeyTotals
	var cur []keygate.KeyTotals
	for _, k := range keys {
		t := k.Totals()
		if d := t.Sub(s.synced[k.ID]); !d.Zero() {
			deltas, cur = append(deltas, d), append(cur, t)
		}
	}
	if err := s.totals.AddKeyTotals(ctx, deltas); err != nil {
		s.log.Error("saving key totals failed; will retry", "count", len(deltas), "err", err)
		return err
	}
	for _, t := range cur {
		s.synced[t.KeyID] = t
	}
	if !s.others {
		return nil
	}
	stored, err := s.totals.LoadKeyTotals(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		db, ok := stored[k.ID]
		if !ok {
			continue
		}
		if d := db.Sub(s.synced[k.ID]); !d.Zero() || db.LastUsedAt.After(s.synced[k.ID].LastUsedAt) {
			k.AddTotals(d)
			s.synced[k.ID] = s.synced[k.ID].Add(d)
		}
	}
	return nil
}

func (s *stateWriter) run(ctx context.Context) {
	t := s.clock.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.urgent:
			s.flush(context.Background())
		case <-t.Chan():
			// Not ctx: a flush cut off by shutdown would only be noise, and
			// the final flush after shutdown writes everything anyway.
			s.flush(context.Background())
		}
	}
}

// writeThroughCooldown is the shortest cooldown written through at once;
// a shorter one lost in a crash costs at most one retried failure.
const writeThroughCooldown = time.Minute

// noteChange is called with every change the pool makes (on the goroutine
// that made it, often a request's): a disable, or a cooldown of at least
// writeThroughCooldown, wakes the writer to flush at once. It never blocks
// and never touches the store itself.
func (s *stateWriter) noteChange(ch pool.Change) {
	switch ch.Kind {
	case pool.ChangeDisabled, pool.ChangeOperatorDisabled:
	case pool.ChangeCooled:
		if ch.State.BlockedUntil.Sub(ch.At) < writeThroughCooldown {
			return
		}
	default:
		return
	}
	select {
	case s.urgent <- struct{}{}:
	default: // a flush is already asked for; it will carry this change too
	}
}

// flush writes what changed since the last flush. A failed write is kept
// and merged into the next one, so no state change is lost.
func (s *stateWriter) flush(ctx context.Context) error {
	terr := s.flushTotals(ctx)
	changed := s.pool.States(s.clock.Now(), false)
	if len(changed) == 0 && len(s.pending) == 0 {
		return terr
	}
	batch := mergeStates(s.pending, changed)
	if err := s.store.SaveKeyStates(ctx, batch); err != nil {
		s.pending = batch
		s.log.Error("saving key states failed; will retry", "count", len(batch), "err", err)
		return err
	}
	s.pending = nil
	return terr
}

// mergeStates keeps the newest record per key and model.
func mergeStates(old, newer []keygate.KeyState) []keygate.KeyState {
	if len(old) == 0 {
		return newer
	}
	type id struct{ key, model string }
	idx := map[id]int{}
	out := append([]keygate.KeyState(nil), old...)
	for i, s := range out {
		idx[id{s.KeyID, s.Model}] = i
	}
	for _, s := range newer {
		if i, ok := idx[id{s.KeyID, s.Model}]; ok {
			out[i] = s
			continue
		}
		out = append(out, s)
	}
	return out
}
