package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// model is the one model every request asks for.
const model = "gpt-4o-mini"

// The same two requests go to every target.
var (
	chatBody   = []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"Say hello to the load harness."}]}`)
	streamBody = []byte(`{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"Say hello to the load harness."}]}`)
)

// target is one server under load and the credential its callers send.
type target struct {
	name string
	proc *proc    // the server: for direct, the provider
	auth []string // the Authorization header, shared read-only by every request
	errs tally
}

// tally counts one target's requests and keeps the first failure for the
// report.
type tally struct {
	sent, failed atomic.Int64
	once         sync.Once
	first        string
}

func (t *tally) add(err error) {
	t.sent.Add(1)
	if err != nil {
		t.failed.Add(1)
		t.once.Do(func() { t.first = err.Error() })
	}
}

// newClient is a keep-alive client that opens at most conns connections
// and keeps every one of them idle between requests.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// call sends one chat request and reads the whole answer. For a stream,
// first is the time to the first token and onFirst, if set, runs then;
// otherwise first is the time to the end of the answer. Any status but 200,
// and a stream that does not end with [DONE], is a failure.
func (t *target) call(ctx context.Context, c *http.Client, stream bool, onFirst func()) (first time.Duration, err error) {
	body := chatBody
	if stream {
		body = streamBody
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.proc.url+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header["Authorization"] = t.auth
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, msg)
	}
	if !stream {
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && n == 0 {
			err = errors.New("empty answer")
		}
		return time.Since(start), err
	}

	br := bufio.NewReader(resp.Body)
	done := false
	for {
		line, err := br.ReadSlice('\n')
		if first == 0 && isToken(line) {
			first = time.Since(start)
			if onFirst != nil {
				onFirst()
			}
		}
		done = done || bytes.HasPrefix(line, []byte("data: [DONE]"))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if first == 0 || !done {
		return 0, errors.New("stream ended before a token and [DONE]")
	}
	return first, nil
}

// isToken reports whether an event carries a word of the answer (the first
// chunk only announces the role, with empty content).
func isToken(line []byte) bool {
	return bytes.HasPrefix(line, []byte("data: {")) && bytes.Contains(line, []byte(`"delta":{"content":"`))
}

// interleave sends requests one after another for d, to each target in
// turn over a connection of its own, and returns each target's latencies
// (for streams, the times to first token). Taking turns request by request
// puts every target through the same moments of a noisy machine: the
// absolute numbers still move from run to run, the differences between
// targets much less.
func interleave(ctx context.Context, targets []*target, d time.Duration, stream bool) [][]time.Duration {
	clients := make([]*http.Client, len(targets))
	for i := range clients {
		clients[i] = newClient(1)
		defer clients[i].CloseIdleConnections()
	}
	lat := make([][]time.Duration, len(targets))
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; {
		for i, t := range targets {
			l, err := t.call(ctx, clients[i], stream, nil)
			t.errs.add(err)
			if err == nil {
				lat[i] = append(lat[i], l)
			}
		}
	}
	return lat
}

// turns is how many slices of a throughput phase each target takes.
const turns = 5

// tput is what a target did in its slices of a throughput phase, and the
// CPU time its server and the machine spent meanwhile.
type tput struct {
	n                        int64
	elapsed, server, machine time.Duration
}

// throughput gives each target d at conns connections, cut in slices
// taken in turn so that a slow spell of the machine is shared by all.
func throughput(ctx context.Context, targets []*target, conns int, d time.Duration, stream bool) ([]tput, error) {
	out := make([]tput, len(targets))
	for range turns {
		for i, t := range targets {
			s0, m0, err := serverCPU(t.proc)
			if err != nil {
				return nil, err
			}
			n, elapsed := t.saturate(ctx, conns, d/turns, stream)
			s1, m1, err := serverCPU(t.proc)
			if err != nil {
				return nil, err
			}
			o := &out[i]
			o.n += n
			o.elapsed += elapsed
			o.server += s1 - s0
			o.machine += m1.busy() - m0.busy()
		}
	}
	return out, ctx.Err()
}

// saturate keeps conns requests in flight for d and returns how many
// were answered and in what time. Requests still running at the deadline
// are waited for, not cancelled, and count in the time.
func (t *target) saturate(ctx context.Context, conns int, d time.Duration, stream bool) (ok int64, elapsed time.Duration) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			n := int64(0)
			// At least one request each, even when a busy machine starts
			// the goroutine after the deadline.
			for first := true; first || time.Now().Before(deadline) && ctx.Err() == nil; first = false {
				_, err := t.call(ctx, c, stream, nil)
				t.errs.add(err)
				if err == nil {
					n++
				}
			}
			done.Add(n)
		})
	}
	wg.Wait()
	return done.Load(), time.Since(start)
}

// hold opens n streams at once and reads each to its end; peak is how many
// were open past their first token at the same moment.
func (t *target) hold(ctx context.Context, n int) (peak int) {
	c := newClient(n)
	defer c.CloseIdleConnections()
	var open, top atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { t.stream(ctx, c, &open, &top) })
	}
	wg.Wait()
	return int(top.Load())
}

// stream reads one stream to its end; from its first token until then it
// counts in open, and top keeps the most streams open at once.
func (t *target) stream(ctx context.Context, c *http.Client, open, top *atomic.Int64) {
	opened := false
	_, err := t.call(ctx, c, true, func() {
		opened = true
		now := open.Add(1)
		for m := top.Load(); now > m && !top.CompareAndSwap(m, now); m = top.Load() {
		}
	})
	if opened {
		open.Add(-1)
	}
	t.errs.add(err)
}

// percentile returns the p-th percentile (0 < p ≤ 1) of lat, sorting it.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(math.Ceil(float64(len(lat))*p)) - 1 // nearest rank
	return lat[min(max(i, 0), len(lat)-1)]
}
