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
}

func (s *stateWriter) run(ctx context.Context) {
	t := s.clock.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			// Not ctx: a flush cut off by shutdown would only be noise, and
			// the final flush after shutdown writes everything anyway.
			s.flush(context.Background())
		}
	}
}

// flush writes what changed since the last flush. A failed write is kept
// and merged into the next one, so no state change is lost.
func (s *stateWriter) flush(ctx context.Context) error {
	changed := s.pool.States(s.clock.Now(), false)
	if len(changed) == 0 && len(s.pending) == 0 {
		return nil
	}
	batch := mergeStates(s.pending, changed)
	if err := s.store.SaveKeyStates(ctx, batch); err != nil {
		s.pending = batch
		s.log.Error("saving key states failed; will retry", "count", len(batch), "err", err)
		return err
	}
	s.pending = nil
	return nil
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
