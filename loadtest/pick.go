package loadtest

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
)

// pickGoroutines is how many goroutines pick at once, as in pool's
// BenchmarkPick.
const pickGoroutines = 64

// benchPick measures Group.Pick on a round_robin model of n keys with 64
// goroutines picking at once: pool's BenchmarkPick, run in process so the
// harness needs no `go test`.
func benchPick(n int) (PickResult, error) {
	m := keygate.Model{ModelID: "m", BaseURL: "http://upstream/v1", KeyUsageMode: keygate.ModeRoundRobin}
	m.APIKeys = make([]keygate.KeySpec, n)
	for i := range m.APIKeys {
		m.APIKeys[i].Key = fmt.Sprintf("sk-bench-%08d-key", i)
	}
	p := pool.New(keygate.NewKeyHasher([]byte("keygate-load")), keygate.DefaultKeyPolicy())
	if err := p.Load([]keygate.Model{m}); err != nil {
		return PickResult{}, err
	}
	g := p.Group("m")
	now := time.Now().UnixNano()
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	par := (pickGoroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	var missed atomic.Bool
	r := testing.Benchmark(func(b *testing.B) {
		b.SetParallelism(par)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := g.Pick(nil, now); !ok {
					missed.Store(true)
				}
			}
		})
	})
	if missed.Load() {
		return PickResult{}, fmt.Errorf("pool of %d keys: Pick found no key", n)
	}
	return PickResult{
		Keys: n, Goroutines: par * runtime.GOMAXPROCS(0),
		NsPerPick: float64(r.T.Nanoseconds()) / float64(r.N), AllocsPerPick: r.AllocsPerOp(),
	}, nil
}
