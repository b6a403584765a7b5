package relay

import (
	"context"
	"io"
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
// idle ahead.
func (d *deadline) Read(p []byte) (int, error) {
	n, err := d.src.Read(p)
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
	d.cancel, d.src, d.idle = nil, nil, 0
	d.mu.Unlock()
	r.deadlines.Put(d)
}
