package loadtest

import (
	"bytes"
	"context"
	"flag"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The harness runs its servers by re-executing its own binary: here, the
// test binary.
func TestMain(m *testing.M) {
	Child()
	os.Exit(m.Run())
}

// lockedBuffer collects the children's logs, written from exec's copying
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSmoke runs the whole harness in smoke mode: every row of the table
// must have its numbers, and no request may fail. Timings are not judged.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	// The pool benchmark runs for -test.benchtime per size, 1 s unless told.
	if f := flag.Lookup("test.benchtime"); f != nil && f.Value.String() == "1s" {
		f.Value.Set("50ms")
		defer f.Value.Set("1s")
	}
	var logs lockedBuffer
	opts := Smoke()
	opts.Log = &logs
	opts.CPUProfile = t.TempDir() + "/keygate.pprof"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if fi, err := os.Stat(opts.CPUProfile); err != nil || fi.Size() == 0 {
		t.Errorf("no CPU profile written: %v", err)
	}

	// 23 rows measure the targets, one per pool size, then requests and
	// failures.
	rows := res.rows()
	if want := 23 + len(pickSizes) + 2; len(rows) != want {
		t.Errorf("got %d rows, want %d", len(rows), want)
	}
	for _, row := range rows {
		for i, v := range row.vals {
			name := []string{"direct", "httputil", "keygate"}[i]
			switch {
			case math.IsNaN(v):
			case math.IsInf(v, 0):
				t.Errorf("%s, %s: %v", row.label, name, v)
			case row.kind == measured && v <= 0:
				t.Errorf("%s, %s: %v, want a positive number", row.label, name, v)
			case row.kind == mustBeZero && v != 0:
				t.Errorf("%s, %s: %v, want 0", row.label, name, v)
			}
		}
	}
	for _, tr := range res.Targets {
		if tr.Failed > 0 {
			t.Errorf("%s: %d of %d requests failed; the first: %s", tr.Name, tr.Failed, tr.Sent, tr.FirstError)
		}
	}
	// keygate on its other upstream client ran the first round, unfailing.
	if len(res.Upstream) != 1 || res.Upstream[0].Sent == 0 || res.Upstream[0].Failed > 0 || res.Upstream[0].ServerCPUPerRequest <= 0 {
		t.Errorf("keygate on the other upstream client: %+v", res.Upstream)
	}
	for _, tr := range res.Targets[1:] {
		if tr.Held != opts.Streams {
			t.Errorf("%s held %d streams open at once, want all %d", tr.Name, tr.Held, opts.Streams)
		}
	}

	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "keygate's upstream clients") {
		t.Error("table has no comparison of the upstream clients")
	}
	for _, row := range rows {
		if !strings.Contains(table.String(), row.label) {
			t.Errorf("table has no row %q", row.label)
		}
	}
	if t.Failed() {
		t.Logf("table:\n%s\nlogs:\n%s", table.String(), logs.String())
	}
}

// TestPaceSmoke runs the pacing, forecast and hedging phases in smoke
// mode. Sizes are not judged (under -race the load generator may not even
// reach the pool's limit), but what must hold at any size is: far fewer upstream
// 429s than without pacing and no lost request, a forecast, a hedge that cuts the
// tail within its cap, and one bill per request.
func TestPaceSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	var logs lockedBuffer
	opts := PaceSmoke()
	opts.Log = &logs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunPace(ctx, opts)
	if err != nil {
		t.Fatalf("RunPace: %v\n%s", err, logs.String())
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	// On a busy CI machine a paced key can still meet a stray 429 (the
	// full harness judges the ≤ 1 % target); the smoke run asserts that
	// nothing is lost and that pacing cuts the 429s by far.
	if res.On.Lost > 0 || res.On.Refused*5 > res.Off.Refused {
		t.Errorf("pacing on: %d upstream 429s (%d with pacing off), %d lost (want far fewer than off, 0 lost); first lost: %s",
			res.On.Refused, res.Off.Refused, res.On.Lost, res.On.FirstLost)
	}
	if res.BilledRatio != 1 || res.ExtraPercent > hedgeCap || res.P99Hedged >= res.P99Plain {
		t.Errorf("hedging: billed ×%.3f, %.1f%% extra calls, p99 %s vs %s without", res.BilledRatio, res.ExtraPercent, res.P99Hedged, res.P99Plain)
	}
	if res.ExhaustsAt.IsZero() || res.RefusedAt.IsZero() {
		t.Errorf("forecast: exhausts_at %s, refused at %s", res.ExhaustsAt, res.RefusedAt)
	}
	t.Logf("\n%s", table.String())
}
