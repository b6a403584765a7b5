package loadtest

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets: issue 8's for 1,000 streams, issue 17's for the rest.
const (
	minThroughputRatio = 2.0                   // keygate ÷ httputil at 64 connections
	maxCPURatio        = 0.5                   // keygate's CPU per request ÷ httputil's, at 64 connections
	maxOverhead        = 60 * time.Microsecond // keygate p50 − direct p50
	maxTTFTOverhead    = 60 * time.Microsecond // keygate TTFT p50 − direct TTFT p50
	maxPickNs          = 50                    // at 100,000 keys, 64 goroutines
	maxRSS             = 150e6                 // bytes, with 1,000 streams open
	rssStreams         = 1000
	maxManyRSS         = 500e6 // bytes, with 10,000 streams open
	manyStreams        = 10_000

	// maxOtherCores is how much CPU other processes and the hypervisor
	// may take while the targets are measured before the table warns that
	// the run was disturbed.
	maxOtherCores = 0.1
)

type rowKind int

const (
	measured rowKind = iota // every value it has is positive
	derived                 // a difference or ratio of measured values
	mustBeZero
)

// row is one line of the table: a value per target (NaN where it does not
// apply) and, if a target is about it, the verdict on keygate's value.
type row struct {
	label   string
	format  string
	vals    [3]float64 // direct, httputil, keygate
	kind    rowKind
	target  string
	verdict string // PASS, FAIL, n/a, or "" without a target
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

func (r *Result) rows() []row {
	d, h, k := r.Targets[0], r.Targets[1], r.Targets[2]
	na := math.NaN()
	us := func(t time.Duration) float64 { return float64(t) / 1e3 }
	mb := func(b int64) float64 { return float64(b) / 1e6 }
	heldRSS := row{label: fmt.Sprintf("peak RSS, %s streams open (MB)", thousands(r.Streams)), format: "%.1f",
		vals: [3]float64{na, mb(h.HoldPeakRSS), mb(k.HoldPeakRSS)}, target: "keygate ≤ 150", verdict: "n/a"}
	if r.Streams >= rssStreams {
		heldRSS.verdict = verdict(k.HoldPeakRSS <= maxRSS && k.Held >= rssStreams)
	}
	manyRSS := row{label: fmt.Sprintf("peak RSS, %s streams open (MB)", thousands(r.ManyStreams)), format: "%.1f",
		vals: [3]float64{na, mb(h.ManyPeakRSS), mb(k.ManyPeakRSS)}, target: "keygate ≤ 500", verdict: "n/a"}
	if r.ManyStreams >= manyStreams {
		manyRSS.verdict = verdict(k.ManyPeakRSS <= maxManyRSS && k.ManyHeld >= manyStreams)
	}
	rows := []row{
		{label: "sequential p50 (µs)", format: "%.0f", vals: [3]float64{us(d.SeqP50), us(h.SeqP50), us(k.SeqP50)}},
		{label: "sequential p99 (µs)", format: "%.0f", vals: [3]float64{us(d.SeqP99), us(h.SeqP99), us(k.SeqP99)}},
		{label: "p50 overhead over direct (µs)", format: "%+.0f", kind: derived,
			vals:   [3]float64{na, us(h.SeqP50 - d.SeqP50), us(k.SeqP50 - d.SeqP50)},
			target: "keygate ≤ 60", verdict: verdict(k.SeqP50-d.SeqP50 <= maxOverhead)},
		{label: "p99 overhead over direct, 1 conn (µs)", format: "%+.0f", kind: derived,
			vals: [3]float64{na, us(h.SeqP99 - d.SeqP99), us(k.SeqP99 - d.SeqP99)}},
		{label: fmt.Sprintf("throughput, %d conns (req/s)", r.Conns), format: "%.0f",
			vals: [3]float64{d.Throughput, h.Throughput, k.Throughput}},
		{label: "throughput ÷ httputil", format: "%.2f×", kind: derived,
			vals:   [3]float64{d.Throughput / h.Throughput, 1, k.Throughput / h.Throughput},
			target: "keygate ≥ 2.00×", verdict: verdict(k.Throughput >= minThroughputRatio*h.Throughput)},
		{label: fmt.Sprintf("throughput, %d conns, 20 ms upstream (req/s)", r.Conns), format: "%.0f",
			vals: [3]float64{d.DelayedThroughput, h.DelayedThroughput, k.DelayedThroughput}},
		{label: fmt.Sprintf("server CPU per request, %d conns (µs)", r.Conns), format: "%.1f",
			vals: [3]float64{us(d.ServerCPUPerRequest), us(h.ServerCPUPerRequest), us(k.ServerCPUPerRequest)}},
		{label: "server CPU per request ÷ httputil", format: "%.2f×", kind: derived,
			vals: [3]float64{float64(d.ServerCPUPerRequest) / float64(h.ServerCPUPerRequest), 1,
				float64(k.ServerCPUPerRequest) / float64(h.ServerCPUPerRequest)},
			target: "keygate ≤ 0.50×", verdict: verdict(float64(k.ServerCPUPerRequest) <= maxCPURatio*float64(h.ServerCPUPerRequest))},
		{label: fmt.Sprintf("server CPU use, %d conns (cores)", r.Conns), format: "%.2f",
			vals: [3]float64{d.ServerCores, h.ServerCores, k.ServerCores}},
		{label: fmt.Sprintf("machine CPU busy, %d conns (cores)", r.Conns), format: "%.2f",
			vals: [3]float64{d.MachineCores, h.MachineCores, k.MachineCores}},
		{label: "stream TTFT p50 (µs)", format: "%.0f", vals: [3]float64{us(d.TTFTP50), us(h.TTFTP50), us(k.TTFTP50)}},
		{label: "stream TTFT p99 (µs)", format: "%.0f", vals: [3]float64{us(d.TTFTP99), us(h.TTFTP99), us(k.TTFTP99)}},
		{label: "TTFT p50 overhead over direct (µs)", format: "%+.0f", kind: derived,
			vals:   [3]float64{na, us(h.TTFTP50 - d.TTFTP50), us(k.TTFTP50 - d.TTFTP50)},
			target: "keygate ≤ 60", verdict: verdict(k.TTFTP50-d.TTFTP50 <= maxTTFTOverhead)},
		{label: fmt.Sprintf("streams, %d conns (streams/s)", r.Conns), format: "%.0f",
			vals: [3]float64{d.StreamThroughput, h.StreamThroughput, k.StreamThroughput}},
		{label: "stream throughput ÷ httputil", format: "%.2f×", kind: derived,
			vals: [3]float64{d.StreamThroughput / h.StreamThroughput, 1, k.StreamThroughput / h.StreamThroughput}},
		{label: "idle RSS (MB)", format: "%.1f", vals: [3]float64{na, mb(h.IdleRSS), mb(k.IdleRSS)}},
		{label: "peak RSS over the phases above (MB)", format: "%.1f", vals: [3]float64{na, mb(h.PeakRSS), mb(k.PeakRSS)}},
		heldRSS,
		{label: "streams open at once (peak)", format: "%.0f", vals: [3]float64{na, float64(h.Held), float64(k.Held)}},
		manyRSS,
		{label: fmt.Sprintf("streams open at once, %s phase (peak)", thousands(r.ManyStreams)), format: "%.0f",
			vals: [3]float64{na, float64(h.ManyHeld), float64(k.ManyHeld)}},
		{label: "RSS per 1,000 open streams (MB)", format: "%.1f", kind: derived,
			vals: [3]float64{na, perThousand(h.ManySteps), perThousand(k.ManySteps)}},
	}
	for _, p := range r.Pick {
		pr := row{label: fmt.Sprintf("pick, %s keys, %d goroutines (ns)", thousands(p.Keys), p.Goroutines),
			format: "%.1f", vals: [3]float64{na, na, p.NsPerPick}}
		if p.Keys == pickSizes[len(pickSizes)-1] {
			pr.target, pr.verdict = "≤ 50", verdict(p.NsPerPick <= maxPickNs)
		}
		rows = append(rows, pr)
	}
	return append(rows,
		row{label: "requests", format: "%.0f", vals: [3]float64{float64(d.Sent), float64(h.Sent), float64(k.Sent)}},
		row{label: "failed requests", format: "%.0f", kind: mustBeZero,
			vals:   [3]float64{float64(d.Failed), float64(h.Failed), float64(k.Failed)},
			target: "keygate = 0", verdict: verdict(k.Failed == 0)},
	)
}

// WriteTable prints the result as one table, then the first failure of
// each target that had any.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "keygate-load: %s per phase, %d connections, %s and %s streams, GOMAXPROCS %d, %s\n\n",
		r.Duration, r.Conns, thousands(r.Streams), thousands(r.ManyStreams), r.GOMAXPROCS, r.GoVersion)
	rows := r.rows()
	width := 0
	for _, row := range rows {
		width = max(width, len([]rune(row.label)))
	}
	// Numbers read best right-aligned; padding the labels to one width
	// keeps them left-aligned under AlignRight.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	pad := func(s string) string { return s + strings.Repeat(" ", width-len([]rune(s))) }
	fmt.Fprintf(tw, "%s\tdirect\thttputil\tkeygate\ttarget\t\t\n", pad("metric"))
	for _, row := range rows {
		cells := []string{pad(row.label)}
		for _, v := range row.vals {
			if math.IsNaN(v) {
				cells = append(cells, "—")
			} else {
				cells = append(cells, fmt.Sprintf(row.format, v))
			}
		}
		cells = append(cells, row.target, row.verdict)
		fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeUpstream(w); err != nil {
		return err
	}
	// CPU times tick every 10 ms: too coarse to judge shorter phases.
	if r.OtherCores > maxOtherCores && r.Duration >= time.Second {
		fmt.Fprintf(w, "\nWARNING: other processes or the hypervisor took %.2f cores during the measurements: these numbers are not a measurement.\n", r.OtherCores)
	}
	if r.ManyLimited {
		fmt.Fprintf(w, "\nThe open files limit of this machine let a proxy hold %s streams, not 10,000.\n", thousands(r.ManyStreams))
	}
	for _, t := range r.Targets {
		if len(t.ManySteps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s RSS while opening %s streams:", t.Name, thousands(r.ManyStreams))
		for _, s := range t.ManySteps {
			fmt.Fprintf(w, " %s→%.0f MB", thousands(s.Open), float64(s.RSS)/1e6)
		}
		fmt.Fprintln(w)
	}
	for _, t := range r.Targets {
		if t.Failed > 0 {
			fmt.Fprintf(w, "\n%s: %d of %d requests failed; the first: %s\n", t.Name, t.Failed, t.Sent, t.FirstError)
		}
	}
	return nil
}

// writeUpstream prints keygate on its two upstream clients side by side,
// from the first round, in which both ran (issue 17's leaner HTTP stack:
// relay/fastclient.go).
func (r *Result) writeUpstream(w io.Writer) error {
	if len(r.Upstream) == 0 {
		return nil
	}
	d, h, k, o := r.Targets[0], r.Targets[1], r.Targets[2], r.Upstream[0]
	us := func(t time.Duration) float64 { return float64(t) / 1e3 }
	rows := []struct {
		label, format string
		vals          [3]float64 // httputil, keygate, the other
	}{
		{"sequential p50 (µs)", "%.0f", [3]float64{us(h.SeqP50), us(k.SeqP50), us(o.SeqP50)}},
		{"p50 overhead over direct (µs)", "%+.0f", [3]float64{us(h.SeqP50 - d.SeqP50), us(k.SeqP50 - d.SeqP50), us(o.SeqP50 - d.SeqP50)}},
		{fmt.Sprintf("throughput, %d conns (req/s)", r.Conns), "%.0f", [3]float64{h.Throughput, k.Throughput, o.Throughput}},
		{"throughput ÷ httputil", "%.2f×", [3]float64{1, k.Throughput / h.Throughput, o.Throughput / h.Throughput}},
		{fmt.Sprintf("server CPU per request, %d conns (µs)", r.Conns), "%.1f",
			[3]float64{us(h.ServerCPUPerRequest), us(k.ServerCPUPerRequest), us(o.ServerCPUPerRequest)}},
		{"server CPU per request ÷ httputil", "%.2f×", [3]float64{1, float64(k.ServerCPUPerRequest) / float64(h.ServerCPUPerRequest),
			float64(o.ServerCPUPerRequest) / float64(h.ServerCPUPerRequest)}},
		{"stream TTFT p50 (µs)", "%.0f", [3]float64{us(h.TTFTP50), us(k.TTFTP50), us(o.TTFTP50)}},
		{"TTFT p50 overhead over direct (µs)", "%+.0f", [3]float64{us(h.TTFTP50 - d.TTFTP50), us(k.TTFTP50 - d.TTFTP50), us(o.TTFTP50 - d.TTFTP50)}},
		{fmt.Sprintf("streams, %d conns (streams/s)", r.Conns), "%.0f", [3]float64{h.StreamThroughput, k.StreamThroughput, o.StreamThroughput}},
		{"peak RSS over these phases (MB)", "%.1f", [3]float64{float64(h.PeakRSS) / 1e6, float64(k.PeakRSS) / 1e6, float64(o.PeakRSS) / 1e6}},
		{"failed requests", "%.0f", [3]float64{float64(h.Failed), float64(k.Failed), float64(o.Failed)}},
	}
	fmt.Fprintf(w, "\nkeygate's upstream clients (upstream_client), in the same round: the keygate column is %s\n\n", defaultUpstream())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\thttputil\tkeygate\t%s\t\n", o.Name)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row.label)
		for _, v := range row.vals {
			fmt.Fprintf(tw, row.format+"\t", v)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.Failed > 0 {
		fmt.Fprintf(w, "\n%s: %d of %d requests failed; the first: %s\n", o.Name, o.Failed, o.Sent, o.FirstError)
	}
	return nil
}

// thousands writes n with commas: 100,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// perThousand is how much RSS each 1,000 more open streams took, from the
// first step of opening to the one with the most streams open.
func perThousand(steps []RSSStep) float64 {
	if len(steps) < 2 {
		return math.NaN()
	}
	a, b := steps[0], topStep(steps)
	if b.Open <= a.Open {
		return math.NaN()
	}
	return float64(b.RSS-a.RSS) / 1e6 / float64(b.Open-a.Open) * 1000
}

// topStep is the step with the most streams open.
func topStep(steps []RSSStep) RSSStep {
	top := steps[0]
	for _, s := range steps[1:] {
		if s.Open > top.Open {
			top = s
		}
	}
	return top
}
