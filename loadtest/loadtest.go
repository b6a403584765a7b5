// Package loadtest is keygate's load harness. It starts the mock provider,
// keygate and a bare httputil.ReverseProxy on loopback, each in a process
// of its own, drives them in turn with the same requests from an
// in-process load generator, and measures what issues 8's and 17's targets
// are about: latency over one connection, throughput and CPU per request at
// 64 connections, time to first token, resident memory while 1,000 and then
// 10,000 streams are open, and key selection in pools of 1 to 100,000 keys. cmd/keygate-load prints the result as a table.
//
// It runs on Linux only: memory and CPU time are read from /proc.
package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/keygate/keygate/relay"
)

// Options size a run. Zero values take the defaults of a full run.
type Options struct {
	Duration time.Duration // each timed phase; default 5 s
	Conns    int           // connections of the throughput phases; default 64
	Streams  int           // streams held open at once for the RSS phase; default 1,000
	// ManyStreams are opened in ten steps and held at once for the
	// many-streams phase, with RSS read at each step; default 10,000.
	ManyStreams int
	// ManyLife is how long each stream of that phase lasts; default 40 s,
	// long enough for every step to open while the first ones still run
	// on a busy machine.
	ManyLife time.Duration
	// CPUProfile, if set, is where keygate writes its CPU profile of the
	// phase at Conns connections.
	CPUProfile string
	// MemProfile, if set, is where keygate writes its heap profile (and,
	// beside it, its goroutines) with every stream of the many-streams
	// phase open.
	MemProfile string
	// Log receives progress and the children's logs; nil discards them.
	Log io.Writer
}

// Smoke is a run of a few seconds that checks the harness works; its
// numbers mean nothing.
func Smoke() Options {
	return Options{Duration: 100 * time.Millisecond, Conns: 4, Streams: 20, ManyStreams: 40, ManyLife: 400 * time.Millisecond}
}

// upstreamDelay is the provider's answer time in the delayed phase.
const upstreamDelay = 20 * time.Millisecond

// Sizes of the key pools benchmarked.
var pickSizes = []int{1, 1_000, 100_000}

// Provider keys: as many as a small real deployment, all healthy.
const (
	providerKeys = 8
	words        = 16 // per completion; a stream is one event per word
	token        = "kg-load-harness-token"
)

// Result is what one run measured.
type Result struct {
	Duration    time.Duration `json:"duration_ns"`
	Conns       int           `json:"conns"`
	Streams     int           `json:"streams"`
	ManyStreams int           `json:"many_streams"`
	// ManyLimited is set when the open files limit cut ManyStreams.
	ManyLimited bool   `json:"many_limited,omitempty"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	GoVersion   string `json:"go_version"`
	// OtherCores is the CPU the run could not have while the targets or
	// key selection were measured (the more of the two), used by other
	// processes or stolen by the hypervisor: more than a little, and the
	// numbers are not to be trusted.
	OtherCores float64        `json:"other_cores"`
	Targets    []TargetResult `json:"targets"` // direct, httputil, keygate
	// Upstream is keygate on the upstream client it does not use by
	// default (upstream_client), measured in the first round only.
	Upstream []TargetResult `json:"other_upstream_client,omitempty"`
	Pick     []PickResult   `json:"pick"`
}

// TargetResult is one target's measurements.
type TargetResult struct {
	Name             string        `json:"name"`
	SeqP50           time.Duration `json:"seq_p50_ns"`
	SeqP99           time.Duration `json:"seq_p99_ns"`
	Throughput       float64       `json:"throughput_rps"`
	TTFTP50          time.Duration `json:"ttft_p50_ns"`
	TTFTP99          time.Duration `json:"ttft_p99_ns"`
	StreamThroughput float64       `json:"stream_throughput_sps"`
	// CPU during the target's slices of the phase at Conns connections:
	// its server's own (for direct, the provider's) per request and in
	// cores, and the whole machine's, which shows whether every core was
	// busy.
	ServerCPUPerRequest time.Duration `json:"server_cpu_per_request_ns"`
	ServerCores         float64       `json:"server_cores"`
	MachineCores        float64       `json:"machine_busy_cores"`
	// IdleRSS is the proxy's RSS once started, before any request.
	IdleRSS int64 `json:"idle_rss_bytes,omitempty"`
	// DelayedThroughput is requests per second at Conns connections to a
	// provider that takes 20 ms to answer, as a real one takes longer.
	DelayedThroughput float64 `json:"delayed_throughput_rps"`
	// The proxies' peak RSS over the phases above, and in a fresh process
	// holding Streams streams open; zero for direct, which has no proxy.
	PeakRSS     int64 `json:"peak_rss_bytes,omitempty"`
	HoldPeakRSS int64 `json:"hold_peak_rss_bytes,omitempty"`
	Held        int   `json:"streams_held,omitempty"` // most streams open at once
	// The many-streams phase, in a fresh process: its peak RSS, the most
	// streams open at once, and the RSS after each step of opening.
	ManyPeakRSS int64     `json:"many_peak_rss_bytes,omitempty"`
	ManyHeld    int       `json:"many_streams_held,omitempty"`
	ManySteps   []RSSStep `json:"many_rss_steps,omitempty"`
	Sent        int64     `json:"sent"`
	Failed      int64     `json:"failed"`
	FirstError  string    `json:"first_error,omitempty"`
}

// PickResult is key selection in a pool of Keys keys.
type PickResult struct {
	Keys          int     `json:"keys"`
	Goroutines    int     `json:"goroutines"`
	NsPerPick     float64 `json:"ns_per_pick"`
	AllocsPerPick int64   `json:"allocs_per_pick"`
}

// Run measures the targets, taking turns, then their memory one after
// the other, then key selection.
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	opts.Conns = orDefault(opts.Conns, 64)
	opts.Streams = orDefault(opts.Streams, 1000)
	opts.ManyStreams = orDefault(opts.ManyStreams, 10_000)
	if opts.ManyLife <= 0 {
		opts.ManyLife = 40 * time.Second
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.MemProfile != "" {
		if opts.MemProfile, err = filepath.Abs(opts.MemProfile); err != nil {
			return nil, err
		}
	}
	if opts.CPUProfile != "" {
		// The child's working directory is ours, but say where it went.
		if opts.CPUProfile, err = filepath.Abs(opts.CPUProfile); err != nil {
			return nil, err
		}
	}
	res = &Result{
		Duration: opts.Duration, Conns: opts.Conns, Streams: opts.Streams, ManyStreams: opts.ManyStreams,
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}

	// Children inherit the limit: it must be raised before the first starts.
	if err := openFiles(max(opts.ManyStreams, opts.Streams), opts.Log); err != nil {
		return nil, fmt.Errorf("raise the open files limit: %w", err)
	}
	if n := fdStreams(); opts.ManyStreams > n {
		fmt.Fprintf(opts.Log, "keygate-load: the many-streams phase opens %s streams, not %s: the open files limit allows no more\n", thousands(n), thousands(opts.ManyStreams))
		opts.ManyStreams, res.ManyStreams, res.ManyLimited = n, n, true
	}
	var procs []*proc
	defer func() {
		for _, p := range slices.Backward(procs) {
			err = errors.Join(err, p.stop())
		}
	}()
	spawn := func(spec childSpec) (*proc, error) {
		p, err := start(ctx, spec, opts.Log)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	keys := make([]string, providerKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-load-harness-key-%02d", i)
	}
	direct := &target{name: "direct", auth: []string{"Bearer " + keys[0]}}
	base := &target{name: "httputil", auth: []string{"Bearer " + keys[0]}}
	kg := &target{name: "keygate", auth: []string{"Bearer " + token}}
	targets := []*target{direct, base, kg}
	other := &target{name: "keygate " + otherUpstream(), auth: kg.auth}
	round := append(targets[:len(targets):len(targets)], other)

	// Latency and throughput, against a provider that answers at once.
	if direct.proc, err = spawn(childSpec{Role: roleProvider, Keys: keys, Words: words}); err != nil {
		return nil, err
	}
	if base.proc, err = spawn(childSpec{Role: roleBaseline, Upstream: direct.proc.url, Keys: keys}); err != nil {
		return nil, err
	}
	if kg.proc, err = spawn(childSpec{Role: roleKeygate, Upstream: direct.proc.url, Keys: keys, Token: token}); err != nil {
		return nil, err
	}
	if other.proc, err = spawn(childSpec{Role: roleKeygate, Upstream: direct.proc.url, Keys: keys, Token: token, UpstreamClient: otherUpstream()}); err != nil {
		return nil, err
	}
	res.Targets = make([]TargetResult, len(round))
	for i, t := range round {
		res.Targets[i].Name = t.name
		if i > 0 {
			if res.Targets[i].IdleRSS, err = t.proc.rss(); err != nil {
				return nil, err
			}
		}
	}
	if res.OtherCores, err = measure(ctx, round, kg, opts, res.Targets); err != nil {
		return nil, err
	}
	for i, t := range round[1:] {
		if res.Targets[i+1].PeakRSS, err = t.proc.peakRSS(); err != nil {
			return nil, err
		}
	}
	res.Targets, res.Upstream = res.Targets[:len(targets)], res.Targets[len(targets):]
	o := &res.Upstream[0]
	o.Sent, o.Failed, o.FirstError = other.errs.sent.Load(), other.errs.failed.Load(), other.errs.first
	// Nothing of this round may use CPU or memory in the next.
	for _, t := range round {
		if err := t.proc.stop(); err != nil {
			return nil, err
		}
	}

	// Throughput to a provider that takes 20 ms, as deployments measure it.
	step := func(format string, args ...any) { fmt.Fprintf(opts.Log, "keygate-load: "+format+"\n", args...) }
	if direct.proc, err = spawn(childSpec{Role: roleProvider, Keys: keys, Words: words, Latency: upstreamDelay}); err != nil {
		return nil, err
	}
	if base.proc, err = spawn(childSpec{Role: roleBaseline, Upstream: direct.proc.url, Keys: keys}); err != nil {
		return nil, err
	}
	if kg.proc, err = spawn(childSpec{Role: roleKeygate, Upstream: direct.proc.url, Keys: keys, Token: token}); err != nil {
		return nil, err
	}
	step("%d connections, provider answering in %s, the targets in turn", opts.Conns, upstreamDelay)
	for _, t := range targets {
		t.saturate(ctx, opts.Conns, opts.Duration/5, false)
	}
	tp, err := throughput(ctx, targets, opts.Conns, opts.Duration, false)
	if err != nil {
		return nil, err
	}
	for i, t := range tp {
		res.Targets[i].DelayedThroughput = float64(t.n) / t.elapsed.Seconds()
	}
	for _, t := range targets {
		if err := t.proc.stop(); err != nil {
			return nil, err
		}
	}

	// Memory, with streams that last about 70% of a phase (and at least
	// 0.64 s, so a smoke run on a busy machine still has every stream
	// open at once): each proxy in a fresh process, so its VmHWM is the
	// peak of this phase alone.
	slow, err := spawn(childSpec{Role: roleProvider, Keys: keys, Words: words, ChunkDelay: max(opts.Duration, time.Second) / 25})
	if err != nil {
		return nil, err
	}
	err = eachProxy(spawn, slow, keys, func(r *TargetResult, t *target) (err error) {
		fmt.Fprintf(opts.Log, "keygate-load: %-8s %d streams held open\n", t.name, opts.Streams)
		r.Held = t.hold(ctx, opts.Streams)
		r.HoldPeakRSS, err = t.proc.peakRSS()
		return err
	}, base, kg, &res.Targets[1], &res.Targets[2], "")
	if err != nil {
		return nil, err
	}
	if err := slow.stop(); err != nil {
		return nil, err
	}

	// Many streams at once, opened in steps: each proxy in a fresh process
	// again, behind a provider whose streams last ManyLife. The provider
	// speaks HTTPS and so HTTP/2, as real providers do: a proxy then holds
	// one socket per stream (its caller's) and multiplexes its upstream
	// calls over a few connections, where over HTTP/1.1 it would hold two
	// sockets per stream, and 10,000 streams would need more than the open
	// files limit of many machines.
	dir, err := os.MkdirTemp("", "keygate-load-tls-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tls, err := newCerts(dir)
	if err != nil {
		return nil, fmt.Errorf("make the provider's certificate: %w", err)
	}
	many, err := spawn(childSpec{Role: roleProvider, Keys: keys, Words: words, ChunkDelay: opts.ManyLife / words, TLSCert: tls.Cert, TLSKey: tls.Key})
	if err != nil {
		return nil, err
	}
	err = eachProxy(spawn, many, keys, func(r *TargetResult, t *target) (err error) {
		fmt.Fprintf(opts.Log, "keygate-load: %-8s %s streams opened in %d steps\n", t.name, thousands(opts.ManyStreams), manySteps)
		rss := t.proc.rss
		if t == kg && opts.MemProfile != "" {
			rss = func() (int64, error) {
				b, err := t.proc.rss()
				if err == nil {
					err = errors.Join(t.proc.command("memprofile "+opts.MemProfile),
						t.proc.command("goroutines "+opts.MemProfile+".goroutines"))
				}
				return b, err
			}
		}
		if r.ManySteps, r.ManyHeld, err = t.ramp(ctx, opts.ManyStreams, rss); err != nil {
			return err
		}
		r.ManyPeakRSS, err = t.proc.peakRSS()
		return err
	}, base, kg, &res.Targets[1], &res.Targets[2], tls.CA)
	if err != nil {
		return nil, err
	}
	if err := many.stop(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, t := range targets {
		r := &res.Targets[i]
		r.Sent, r.Failed, r.FirstError = t.errs.sent.Load(), t.errs.failed.Load(), t.errs.first
	}

	// Key selection, in this process, now that no server is running.
	began := time.Now()
	first, err := sampleCPU(nil)
	if err != nil {
		return nil, err
	}
	for _, n := range pickSizes {
		fmt.Fprintf(opts.Log, "keygate-load: pool of %s keys\n", thousands(n))
		r, err := benchPick(n)
		if err != nil {
			return nil, err
		}
		res.Pick = append(res.Pick, r)
	}
	last, err := sampleCPU(nil)
	if err != nil {
		return nil, err
	}
	res.OtherCores = max(res.OtherCores, cores(lost(first, last), time.Since(began)))
	return res, nil
}

// eachProxy runs fn on the baseline, then on keygate, each in a fresh
// process behind provider (so its VmHWM is the peak of fn alone), stopping
// each after. An HTTPS provider's certificate is signed by the CA in file
// trust.
func eachProxy(spawn func(childSpec) (*proc, error), provider *proc, keys []string, fn func(*TargetResult, *target) error,
	base, kg *target, baseRes, kgRes *TargetResult, trust string) error {
	for _, x := range []struct {
		spec childSpec
		t    *target
		r    *TargetResult
	}{
		{childSpec{Role: roleBaseline, Upstream: provider.url, Keys: keys, TrustCA: trust}, base, baseRes},
		{childSpec{Role: roleKeygate, Upstream: provider.url, Keys: keys, Token: token, TrustCA: trust}, kg, kgRes},
	} {
		var err error
		if x.t.proc, err = spawn(x.spec); err != nil {
			return err
		}
		if err := fn(x.r, x.t); err != nil {
			return err
		}
		if err := x.t.proc.stop(); err != nil {
			return err
		}
	}
	return nil
}

// measure runs the timed phases against every target and fills in rs,
// one per target; kg's server writes the CPU profile if one was asked for.
// other is the CPU, in cores, that the run could not have meanwhile: used
// by other processes, or stolen by the hypervisor.
func measure(ctx context.Context, targets []*target, kg *target, o Options, rs []TargetResult) (other float64, err error) {
	step := func(format string, args ...any) { fmt.Fprintf(o.Log, "keygate-load: "+format+"\n", args...) }
	procs := make([]*proc, len(targets))
	for i, t := range targets {
		procs[i] = t.proc
	}
	began := time.Now()
	first, err := sampleCPU(procs)
	if err != nil {
		return 0, err
	}

	// Warm-up fills every connection pool on the way and lets each heap
	// reach its working size, so the first phase is not charged for it.
	step("warm-up")
	for _, t := range targets {
		t.saturate(ctx, o.Conns, o.Duration/5, false)
	}

	step("sequential requests, the targets in turn")
	lat := interleave(ctx, targets, time.Duration(len(targets))*o.Duration, false)
	for i := range rs {
		rs[i].SeqP50, rs[i].SeqP99 = percentile(lat[i], 0.5), percentile(lat[i], 0.99)
	}

	step("%d connections, the targets in turn", o.Conns)
	if o.CPUProfile != "" {
		if err := kg.proc.command("cpuprofile " + o.CPUProfile); err != nil {
			return 0, err
		}
	}
	tp, err := throughput(ctx, targets, o.Conns, o.Duration, false)
	if err != nil {
		return 0, err
	}
	if o.CPUProfile != "" {
		if err := kg.proc.command("stop"); err != nil {
			return 0, err
		}
		step("keygate's CPU profile written to %s", o.CPUProfile)
	}
	for i, t := range tp {
		r := &rs[i]
		r.Throughput = float64(t.n) / t.elapsed.Seconds()
		r.ServerCores, r.MachineCores = cores(t.server, t.elapsed), cores(t.machine, t.elapsed)
		if t.n > 0 {
			r.ServerCPUPerRequest = t.server / time.Duration(t.n)
		}
	}

	step("sequential streams, the targets in turn")
	ttft := interleave(ctx, targets, time.Duration(len(targets))*o.Duration, true)
	for i := range rs {
		rs[i].TTFTP50, rs[i].TTFTP99 = percentile(ttft[i], 0.5), percentile(ttft[i], 0.99)
	}
	step("streams at %d connections, the targets in turn", o.Conns)
	if tp, err = throughput(ctx, targets, o.Conns, o.Duration, true); err != nil {
		return 0, err
	}
	for i, t := range tp {
		rs[i].StreamThroughput = float64(t.n) / t.elapsed.Seconds()
	}

	last, err := sampleCPU(procs)
	if err != nil {
		return 0, err
	}
	return cores(lost(first, last), time.Since(began)), ctx.Err()
}

// cores is how many cores' worth cpu is over wall time.
func cores(cpu, wall time.Duration) float64 { return cpu.Seconds() / wall.Seconds() }

// orDefault is v, or def when v is not positive.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// defaultUpstream is keygate's upstream client in every phase: its
// default, or KEYGATE_UPSTREAM_CLIENT's, so that a run can measure the
// other one throughout.
func defaultUpstream() string {
	return cmp.Or(os.Getenv("KEYGATE_UPSTREAM_CLIENT"), relay.DefaultUpstream)
}

// otherUpstream is the upstream client keygate does not use in this run.
func otherUpstream() string {
	if defaultUpstream() == relay.UpstreamFastHTTP {
		return relay.UpstreamNet
	}
	return relay.UpstreamFastHTTP
}
