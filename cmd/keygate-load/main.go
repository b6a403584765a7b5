// Command keygate-load is keygate's load harness: it starts the mock
// provider, keygate and a bare httputil.ReverseProxy on loopback, drives
// each with the same requests and prints one table against issues 8's
// and 17's targets. See package loadtest.
//
//	go run ./cmd/keygate-load                 # a full run, about 4 min
//	go run ./cmd/keygate-load -smoke          # seconds; checks it works
//	go run ./cmd/keygate-load -cpuprofile keygate.pprof -json result.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keygate/keygate/loadtest"
)

func main() {
	loadtest.Child() // the servers are this binary, re-executed
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygate-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	full := loadtest.Options{}
	fs := flag.NewFlagSet("keygate-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&full.Duration, "duration", 5*time.Second, "length of each timed phase")
	fs.IntVar(&full.Conns, "conns", 64, "connections of the throughput phases")
	fs.IntVar(&full.Streams, "streams", 1000, "streams held open at once for the RSS phase")
	fs.IntVar(&full.ManyStreams, "many-streams", 10_000, "streams opened in ten steps and held at once for the many-streams phase")
	smoke := fs.Bool("smoke", false, "a run of seconds that checks the harness works (overrides -duration, -conns, -streams, -many-streams)")
	jsonPath := fs.String("json", "", "also write the result as JSON to this file")
	fs.StringVar(&full.CPUProfile, "cpuprofile", "", "write keygate's CPU profile of the throughput phase to this file")
	fs.StringVar(&full.MemProfile, "memprofile", "", "write keygate's heap profile, with every stream of the many-streams phase open, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := full
	if *smoke {
		opts = loadtest.Smoke()
		opts.CPUProfile, opts.MemProfile = full.CPUProfile, full.MemProfile
	}
	opts.Log = stderr

	res, err := loadtest.Run(ctx, opts)
	if err != nil {
		return err
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout)
	return res.WriteTable(stdout)
}
