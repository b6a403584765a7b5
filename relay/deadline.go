package relay

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// deadline cancels an attempt with errIdle when its timer fires: the
// bound on reading an answer's body, and a stream's idle limit, which
// every read that brings bytes pushes back (as a stream's reader it is
// the upstream body's wrapper). Deadlines are pooled per Relay with their
// timer, so that a request arms a timer it reuses instead of making a
// timer, a closure and an interface box (and, for a stream, a reader and
// a second closure) each time.
type deadline struct {
	t       clockwork.Timer
	idle    time.Duration // a stream's: how far each read pushes the deadline
	expired bool          // a push found the timer fired already

	// A stream's answer: written to since the last flush (dirty), it is
	// flushed before a read of the upstream that may block: one after a
	// read that took less than it asked for (drained, the transport had
	// nothing more for now).
	rc       *http.ResponseController
	dirty    bool
	drained  bool
	flushErr error

	mu     sync.Mutex // the timer fires on a goroutine of its own
	cancel context.CancelCauseFunc
	src    io.Reader
}

func (d *deadline) fire() {
	d.mu.Lock()
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel(errIdle)
	}
}

// Read reads the upstream body and, when bytes came, moves the deadline
// idle ahead. When the last read drained what the transport had, what was
// written to the caller since goes out first: an event does not wait in
// keygate's buffer while keygate waits for the upstream, and a burst read
// in several pieces is flushed once, as httputil flushes once per read.
// (Flushing only once the parser had nothing buffered held events back
// behind a half-arrived one.)
func (d *deadline) Read(p []byte) (int, error) {
	if d.dirty && d.drained {
		d.dirty = false
		if err := d.rc.Flush(); err != nil {
			d.flushErr = err
			return 0, err
		}
	}
	n, err := d.src.Read(p)
	d.drained = n < len(p)
	if n > 0 && !d.t.Reset(d.idle) {
		d.expired = true // it fired: its goroutine may still be on its way
	}
	return n, err
}

// arm returns a deadline that cancels with cancel after timeout. Give it
// back with disarm.
func (r *Relay) arm(timeout time.Duration, cancel context.CancelCauseFunc) *deadline {
	d, _ := r.deadlines.Get().(*deadline)
	if d == nil {
		d = new(deadline)
		d.cancel = cancel
		d.t = r.Clock.AfterFunc(timeout, d.fire)
		return d
	}
	d.mu.Lock()
	d.cancel = cancel
	d.mu.Unlock()
	d.t.Reset(timeout)
	return d
}

// disarm stops the deadline and pools it, unless its timer fired at any
// time since arm: its goroutine may still be about to call cancel, and
// must not find the next request's. Such a deadline is left to the GC.
func (r *Relay) disarm(d *deadline) {
	if !d.t.Stop() || d.expired {
		return
	}
	d.mu.Lock()
	d.cancel, d.src, d.idle, d.rc, d.dirty, d.drained, d.flushErr = nil, nil, 0, nil, false, false, nil
	d.mu.Unlock()
	r.deadlines.Put(d)
}
