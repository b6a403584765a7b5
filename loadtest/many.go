package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RSSStep is a proxy's resident memory with Open streams open.
type RSSStep struct {
	Open int   `json:"open"`
	RSS  int64 `json:"rss_bytes"`
}

// manySteps is how many steps the many-streams phase opens its streams in,
// reading the proxy's RSS after each.
const manySteps = 10

// ramp opens n streams in manySteps steps, waits after each step until its
// streams are past their first token, and reads rss then. Every stream is
// read to its end. peak is the most streams open at the same moment.
func (t *target) ramp(ctx context.Context, n int, rss func() (int64, error)) (steps []RSSStep, peak int, err error) {
	c := newClient(n)
	defer c.CloseIdleConnections()
	var open, top, ended atomic.Int64
	var wg sync.WaitGroup
	step := max(1, n/manySteps)
	for started := 0; started < n; {
		m := min(step, n-started)
		for range m {
			wg.Go(func() {
				t.stream(ctx, c, &open, &top)
				ended.Add(1)
			})
		}
		started += m
		// Wait until every stream started so far is open, or over.
		for open.Load()+ended.Load() < int64(started) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		b, rerr := rss()
		if rerr != nil {
			err = errors.Join(err, rerr)
		}
		steps = append(steps, RSSStep{Open: int(open.Load()), RSS: b})
	}
	wg.Wait()
	return steps, int(top.Load()), err
}

// rss is the child's resident memory now (VmRSS), in bytes.
func (p *proc) rss() (int64, error) { return p.statusKB("VmRSS:") }

// statusKB reads a field in kB of the child's /proc status, in bytes.
func (p *proc) statusKB(field string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	status, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}

// maxFiles is the open files limit openFiles left in force.
var maxFiles int

// fdStreams is how many streams a proxy can hold at once under maxFiles:
// one connection each from its caller (the upstream calls share HTTP/2
// connections, one per 250 streams), and some room for its listener,
// database and logs. The load generator holds as many, in a process of
// its own.
func fdStreams() int { return maxFiles - 512 }

// openFiles raises this process's limit of open files, which its children
// inherit, to what n streams need. Raising the hard limit takes root (CAP_SYS_RESOURCE); without it
// the soft limit goes as high as the hard one allows, and a run that needs
// more says so.
func openFiles(n int, log io.Writer) error {
	want := uint64(max(4*n+4096, 65536))
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		maxFiles = int(l.Cur)
		return nil
	}
	if l.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			maxFiles = int(want)
			return nil
		}
	}
	l.Cur = min(want, l.Max)
	maxFiles = int(l.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < want {
		fmt.Fprintf(log, "keygate-load: open files limited to %d (no CAP_SYS_RESOURCE to raise the hard limit): a proxy holds at most %s streams at once\n",
			l.Cur, thousands(fdStreams()))
	}
	return nil
}
