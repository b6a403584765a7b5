// Package audit writes the audit log (SPEC section 7) off the request
// path: entries go into a channel and are stored in batches.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/keygate/keygate"
)

// Log batches audit entries into a store. Record never waits on the store.
type Log struct {
	store keygate.AuditStore
	log   *slog.Logger
	ch    chan keygate.AuditEntry
}

// New returns a log writing to store; run it with Run.
func New(store keygate.AuditStore, logger *slog.Logger) *Log {
	return &Log{store: store, log: logger, ch: make(chan keygate.AuditEntry, 4096)}
}

// Record queues e. Admin changes are rare; if the queue is ever full the
// change waits for room rather than go unrecorded.
func (l *Log) Record(e keygate.AuditEntry) {
	if l == nil {
		return
	}
	l.ch <- e
}

// Run stores queued entries in batches until ctx ends, then stores what
// is left and returns.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var batch []keygate.AuditEntry
	flush := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := l.store.InsertAudit(wctx, batch); err != nil {
			l.log.Error("audit entries not written", "entries", len(batch), "err", err)
			return // kept for the next flush
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-l.ch:
			batch = append(batch, e)
			if len(batch) >= 256 {
				flush()
			}
		case <-t.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-l.ch:
					batch = append(batch, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
