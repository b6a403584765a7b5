// Package usage takes usage records off the request path: handlers hand
// records to a Recorder, which writes them to the store in batches from one
// background goroutine.
package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/keygate/keygate"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("usage recorder closed")

// Backoff between attempts to write a batch the store refused.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	BatchSize     int             // records per write; default 256
	FlushInterval time.Duration   // longest a record waits for its batch to fill; default 500ms
	Buffer        int             // records queued before Record blocks; default 65536
	Clock         clockwork.Clock // default the real clock
}

// Recorder batches usage records and writes them to a store in the
// background. Start it with Run; stop it with Close, which writes everything
// still queued. No record is dropped while the Recorder runs: a failed write
// is retried, and a full queue makes Record wait.
type Recorder struct {
	store keygate.UsageStore
	log   *slog.Logger
	opts  Options
	queue chan keygate.UsageRecord

	// mu orders Record's check of closed against Close setting it, so every
	// record that got past the check is counted in senders before Close
	// waits on senders: Close then drains exactly the records accepted.
	mu      sync.RWMutex
	closed  bool
	running bool
	senders sync.WaitGroup

	unwritten atomic.Int64  // accepted and not yet written
	stop      chan struct{} // closed by Close: Run hands over and returns
	stopOnce  sync.Once
	runDone   chan struct{} // closed when Run returns
	closeMu   sync.Mutex    // one Close at a time
	// leftover holds records taken off the queue but not written: Run's
	// batch when it stopped, or what a Close that ran out of time held.
	// Written by Run before runDone closes, then only under closeMu.
	leftover []keygate.UsageRecord
}

// NewRecorder returns a Recorder writing to store. Call Run to start it.
func NewRecorder(store keygate.UsageStore, logger *slog.Logger, opts Options) *Recorder {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 500 * time.Millisecond
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 65536
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{
		store:   store,
		log:     logger,
		opts:    opts,
		queue:   make(chan keygate.UsageRecord, opts.Buffer),
		stop:    make(chan struct{}),
		runDone: make(chan struct{}),
	}
}

// Record queues rec for writing and returns; it never does I/O. A zero Time
// is set to now.
//
// When the queue is full, Record blocks until the writer catches up: a store
// that cannot keep up slows requests down rather than losing their records.
// The default queue of 65536 (about 12 MiB, allocated up front) rides out a
// minute-long database outage at 1,000 requests a second.
//
// After Close, Record drops rec, logs a warning and returns ErrClosed.
// Record is safe to call from any number of goroutines.
func (r *Recorder) Record(rec keygate.UsageRecord) error {
	if rec.Time.IsZero() {
		rec.Time = r.opts.Clock.Now()
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		r.log.Warn("usage record after close dropped", "request_id", rec.RequestID, "model", rec.Model)
		return ErrClosed
	}
	r.senders.Add(1)
	r.mu.RUnlock()

	r.unwritten.Add(1)
	r.queue <- rec
	r.senders.Done()
	return nil
}

// Run writes queued records until Close is called or ctx ends, then hands
// whatever it has not written to Close. A batch is written when it is full
// or when its first record has waited FlushInterval. Run returns an error
// only if it is already running or the Recorder is closed.
func (r *Recorder) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running || r.closed {
		r.mu.Unlock()
		return errors.New("usage recorder: Run called twice or after Close")
	}
	r.running = true
	r.mu.Unlock()

	batch := make([]keygate.UsageRecord, 0, r.opts.BatchSize)
	// Whatever is in hand when Run stops is read by Close after runDone.
	defer func() {
		r.leftover = batch
		close(r.runDone)
	}()

	// The timer starts with a batch's first record, so an idle Recorder
	// never wakes up and no record waits longer than FlushInterval.
	var (
		timer   clockwork.Timer
		timeout <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
			if len(batch) == 1 {
				timer = r.opts.Clock.NewTimer(r.opts.FlushInterval)
				timeout = timer.Chan()
			}
			if len(batch) < r.opts.BatchSize {
				continue
			}
			timer.Stop()
		case <-timeout:
		case <-r.stop:
			return nil
		case <-ctx.Done():
			return nil
		}
		timer, timeout = nil, nil
		// While a write is retried the queue fills and Record blocks: that
		// is the backpressure, and it keeps memory bounded.
		if !r.write(ctx, batch, r.stop) {
			return nil
		}
		batch = batch[:0]
	}
}

// write stores batch, retrying with capped backoff until it succeeds (true)
// or ctx ends or stop closes (false, batch unwritten).
func (r *Recorder) write(ctx context.Context, batch []keygate.UsageRecord, stop <-chan struct{}) bool {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := r.store.InsertUsage(ctx, batch)
		if err == nil {
			r.unwritten.Add(-int64(len(batch)))
			if attempt > 1 {
				r.log.Info("usage batch written after retries", "records", len(batch), "attempt", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			return false // shutting down; the caller keeps the batch
		}
		r.log.Error("write usage batch", "records", len(batch), "attempt", attempt, "retry_in", backoff, "err", err)
		t := r.opts.Clock.NewTimer(backoff)
		select {
		case <-t.Chan():
		case <-stop:
			t.Stop()
			return false
		case <-ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Close stops accepting records, writes every record accepted so far, and
// returns when they are stored. If ctx ends first it returns an error saying
// how many records were not written; they stay queued, and a later Close
// with more time retries them. Close works whether or not Run is running.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()

	r.mu.Lock()
	r.closed = true
	running := r.running
	r.mu.Unlock()
	r.stopOnce.Do(func() { close(r.stop) })

	if running {
		select {
		case <-r.runDone:
		case <-ctx.Done():
			return r.closeErr(ctx)
		}
	}
	// Run has returned (or never ran): the leftover is Close's alone now.
	batch := r.leftover
	r.leftover = nil
	fail := func() error {
		r.leftover = batch
		return r.closeErr(ctx)
	}

	// Senders already past the closed check may still be blocked on a full
	// queue; keep draining until they are all in.
	sendersDone := make(chan struct{})
	go func() {
		r.senders.Wait()
		close(sendersDone)
	}()
	for drained := false; !drained; {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
			if len(batch) >= r.opts.BatchSize {
				if !r.write(ctx, batch, nil) {
					return fail()
				}
				batch = nil
			}
		case <-sendersDone:
			drained = true
		case <-ctx.Done():
			return fail()
		}
	}
	// No sender is left, so what is queued now is all there will be.
	for len(r.queue) > 0 {
		batch = append(batch, <-r.queue)
	}
	for len(batch) > 0 {
		n := min(len(batch), r.opts.BatchSize)
		if !r.write(ctx, batch[:n], nil) {
			return fail()
		}
		batch = batch[n:]
	}
	return nil
}

func (r *Recorder) closeErr(ctx context.Context) error {
	return fmt.Errorf("usage recorder: %d records not written: %w", r.unwritten.Load(), context.Cause(ctx))
}
