package loadtest

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
)

// Every server the harness drives runs in a child process: the harness
// binary re-executed with childEnv set to a JSON childSpec. Its own process
// gives each server an RSS of its own to read from /proc, its own heap and
// GC, and cores shared with the load generator only through the kernel's
// scheduler, as a real deployment has.
//
// The protocol is lines: the child prints "listening URL" on stdout once
// it accepts connections, then answers each command read from stdin
// ("cpuprofile PATH", "stop") with "ok" or "error: …". End of stdin means
// shut down, so a child never outlives a harness that dies.
const childEnv = "KEYGATE_LOAD_CHILD"

const (
	roleProvider = "provider" // the mock provider
	roleBaseline = "baseline" // a bare httputil.ReverseProxy
	roleKeygate  = "keygate"  // the gateway, as `keygate serve` runs it
)

type childSpec struct {
	Role       string
	Upstream   string        // the provider's root URL (baseline, keygate)
	Keys       []string      // the provider keys; the baseline sends Keys[0]
	Token      string        // keygate's gateway token
	Words      int           // provider: words per completion
	ChunkDelay time.Duration // provider: delay between stream events
	Latency    time.Duration // provider: delay before every answer
	// Provider: rate limits per key and a latency tail (pace.go's phases).
	Limits *mockprovider.Limits `json:",omitempty"`
	Tail   *mockprovider.Tail   `json:",omitempty"`
	// Provider: serve HTTPS (and so HTTP/2) with this certificate and key.
	TLSCert, TLSKey string `json:",omitempty"`
	// Baseline, keygate: trust this CA file (SSL_CERT_FILE) for an HTTPS
	// provider.
	TrustCA string `json:",omitempty"`
	// Keygate: pacing off, max_queue_wait, the model's hedge, and an admin
	// token for GET /api/v1/keys.
	PacingOff    bool           `json:",omitempty"`
	MaxQueueWait time.Duration  `json:",omitempty"`
	Hedge        *keygate.Hedge `json:",omitempty"`
	AdminToken   string         `json:",omitempty"`
	// Keygate: upstream_client; "" is keygate's default.
	UpstreamClient string `json:",omitempty"`
}

// Child serves the role this process was started for and exits, if it was
// started by the harness as a child; otherwise it returns at once. Call it
// first thing in main (and in TestMain of a test that runs the harness).
func Child() {
	spec, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	// Ctrl-C reaches the whole process group; the harness stops its children
	// itself, after it has read what it needs from them.
	signal.Ignore(os.Interrupt)
	if err := runChild(spec, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keygate-load child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(specJSON string, stdin io.Reader, stdout, stderr io.Writer) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("%s: %w", childEnv, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}

	var serve func() error
	var stats func() any // the provider's counters, for the "stats" command
	switch spec.Role {
	case roleProvider:
		keys := make(map[string]mockprovider.Behavior, len(spec.Keys))
		for _, k := range spec.Keys {
			keys[k] = mockprovider.OK
		}
		p := mockprovider.New(mockprovider.Options{Keys: keys, NoRecord: true, Words: spec.Words, ChunkDelay: spec.ChunkDelay, Latency: spec.Latency,
			Limits: spec.Limits, Tail: spec.Tail})
		stats = func() any { return providerStats(p, spec.Keys) }
		var h http.Handler = p
		if spec.TLSCert != "" {
			h = onlyHTTP2(p)
		}
		serve = func() error { return serveUntil(ctx, ln, h, spec.TLSCert, spec.TLSKey) }
	case roleBaseline:
		h, err := baseline(spec.Upstream, spec.Keys[0])
		if err != nil {
			return err
		}
		serve = func() error { return serveUntil(ctx, ln, h, "", "") }
	case roleKeygate:
		dir, err := os.MkdirTemp("", "keygate-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		a, err := newKeygate(ctx, dir, spec, stderr)
		if err != nil {
			return err
		}
		serve = func() error { return a.Serve(ctx, ln) }
	default:
		return fmt.Errorf("unknown role %q", spec.Role)
	}

	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	scheme := "http://"
	if spec.TLSCert != "" {
		scheme = "https://"
	}
	fmt.Fprintln(stdout, "listening", scheme+ln.Addr().String())
	commands(stdin, stdout, stats)
	cancel()
	return <-errc
}

// serveUntil serves h on ln until ctx ends, then shuts down gracefully;
// with a certificate, over TLS, where net/http speaks HTTP/2 as real
// providers do.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string) error {
	// The same header timeout as keygate's server: no server gets a cheaper
	// configuration than the one it is compared with.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	serve := func() error { return srv.Serve(ln) }
	if certFile != "" {
		serve = func() error { return srv.ServeTLS(ln, certFile, keyFile) }
	}
	if err := serve(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// onlyHTTP2 refuses requests that are not HTTP/2 with 505, so that a
// proxy that fell back to HTTP/1.1 (and two sockets per stream) fails its
// requests rather than passing unnoticed.
func onlyHTTP2(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "this provider speaks HTTP/2 only", http.StatusHTTPVersionNotSupported)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// baseline is the bare reverse proxy keygate is measured against: it sets
// the provider key and nothing else.
func baseline(upstream, key string) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	// http.DefaultTransport keeps 2 idle connections per host: at 64
	// connections the proxy would dial a new one for most requests and the
	// baseline would measure TCP churn, not proxying. It gets the same idle
	// pool as keygate's relay (relay.NewTransport), written out so that
	// tuning keygate never tunes its yardstick.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 1024
	auth := "Bearer " + key
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Header.Set("Authorization", auth)
		},
		Transport: t,
	}
	// Without full duplex, the HTTP/1 server closes the request body when
	// the response headers go out, while the transport may still make its
	// last read of it; the transport then drops the upstream connection
	// and cuts the stream (golang/go#40747): a few percent of streams fail.
	// Full duplex is the fix the Go team gives; keygate is immune, as it
	// reads the body before it calls upstream.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}), nil
}

// newKeygate starts the gateway from a generated keygate.yaml in dir, the
// way `keygate serve --config` loads it: one model, round_robin over every
// key, a token, SQLite in dir, the default log level.
func newKeygate(ctx context.Context, dir string, spec childSpec, stderr io.Writer) (*app.App, error) {
	var y strings.Builder
	fmt.Fprintf(&y, "database_url: %s\n", strconv.Quote("sqlite://"+filepath.Join(dir, "keygate.db")))
	fmt.Fprintf(&y, "tokens:\n  - name: load\n    token: %s\n", strconv.Quote(spec.Token))
	if spec.AdminToken != "" {
		fmt.Fprintf(&y, "admin_token: %s\n", strconv.Quote(spec.AdminToken))
	}
	if spec.PacingOff || spec.MaxQueueWait > 0 {
		fmt.Fprintf(&y, "pacing: {disabled: %v, max_queue_wait: %s}\n", spec.PacingOff, max(spec.MaxQueueWait, time.Millisecond))
	}
	fmt.Fprintf(&y, "upstream_client: %s\n", cmp.Or(spec.UpstreamClient, defaultUpstream()))
	fmt.Fprintf(&y, "models:\n  - model_id: %s\n    base_url: %s\n    key_usage_mode: round_robin\n",
		strconv.Quote(model), strconv.Quote(spec.Upstream+"/v1"))
	if h := spec.Hedge; h != nil {
		fmt.Fprintf(&y, "    hedge: {after_ms: %d, max_extra_percent: %v}\n", h.AfterMS, h.MaxExtraPercent)
	}
	fmt.Fprintf(&y, "    api_keys:\n")
	for _, k := range spec.Keys {
		fmt.Fprintf(&y, "      - key: %s\n", strconv.Quote(k))
	}
	path := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(config.Options{
		ConfigFile: path, WorkDir: dir, Listen: "127.0.0.1:0",
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		return nil, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return app.New(ctx, cfg, app.Options{Logger: logger, ShutdownTimeout: 5 * time.Second})
}

// commands answers the harness's commands until stdin ends.
func commands(stdin io.Reader, stdout io.Writer, stats func() any) {
	var prof *os.File
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch {
		case cmd == "cpuprofile" && prof == nil:
			if prof, err = os.Create(arg); err == nil {
				if err = pprof.StartCPUProfile(prof); err != nil {
					prof.Close()
					prof = nil
				}
			}
		case cmd == "stats" && stats != nil:
			b, _ := json.Marshal(stats())
			fmt.Fprintf(stdout, "ok %s\n", b)
			continue
		case cmd == "memprofile":
			err = writeProfile(arg, "heap")
		case cmd == "goroutines":
			err = writeProfile(arg, "goroutine")
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "keygate-load child: %d goroutines; heap in use %d MB, stacks %d MB, heap idle %d MB, released %d MB, sys %d MB, GC goal %d MB\n",
				runtime.NumGoroutine(), m.HeapInuse>>20, m.StackInuse>>20, m.HeapIdle>>20, m.HeapReleased>>20, m.Sys>>20, m.NextGC>>20)
		case cmd == "stop" && prof != nil:
			pprof.StopCPUProfile()
			err = prof.Close()
			prof = nil
		default:
			err = fmt.Errorf("unexpected command %q", sc.Text())
		}
		if err != nil {
			fmt.Fprintln(stdout, "error:", err)
		} else {
			fmt.Fprintln(stdout, "ok")
		}
	}
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
}

// writeProfile writes the named runtime profile to path.
func writeProfile(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// proc is the harness's handle on a child.
type proc struct {
	role string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	url  string        // http://127.0.0.1:port, or https:// for a TLS provider
	done chan struct{} // closed when the child has exited
	err  error         // its exit status, once done

	stopOnce sync.Once
	stopErr  error
}

// start runs a child for spec and waits until it listens.
func start(ctx context.Context, spec childSpec, stderr io.Writer) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	// A race-enabled child (the smoke test's) would otherwise sleep a second
	// on exit, waiting for reports from goroutines that are all gone.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), childEnv+"="+string(specJSON), "GORACE="+gorace)
	if spec.TrustCA != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+spec.TrustCA)
	}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Role, err)
	}
	p := &proc{role: spec.Role, cmd: cmd, in: in, out: bufio.NewReader(out), done: make(chan struct{})}
	go func() {
		// Wait closes the pipes, so readers of out see EOF when it exits.
		p.err = cmd.Wait()
		close(p.done)
	}()

	line := make(chan string, 1)
	go func() {
		s, _ := p.out.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if u, ok := strings.CutPrefix(strings.TrimSpace(s), "listening "); ok {
			p.url = u
			return p, nil
		}
		p.stop()
		return nil, fmt.Errorf("%s did not start: %v", spec.Role, p.err)
	case <-time.After(time.Minute):
		err = fmt.Errorf("%s did not start within a minute", spec.Role)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, err
}

// query sends a command whose answer is "ok JSON" and decodes the JSON into v.
func (p *proc) query(cmd string, v any) error {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return fmt.Errorf("%s: %s: %w", p.role, cmd, err)
	}
	answer, err := p.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.role, cmd, err)
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(answer), "ok ")
	if !ok {
		return fmt.Errorf("%s: %s: %s", p.role, cmd, answer)
	}
	return json.Unmarshal([]byte(body), v)
}

// command sends one command and waits for its answer.
func (p *proc) command(cmd string) error {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return fmt.Errorf("%s: %s: %w", p.role, cmd, err)
	}
	answer, err := p.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.role, cmd, err)
	}
	if answer = strings.TrimSpace(answer); answer != "ok" {
		return fmt.Errorf("%s: %s: %s", p.role, cmd, answer)
	}
	return nil
}

// stop ends the child's stdin, which shuts it down, and waits for it;
// one that takes longer than 15 s is killed. Only the first call stops.
func (p *proc) stop() error {
	p.stopOnce.Do(func() {
		p.in.Close()
		select {
		case <-p.done:
			if p.err != nil {
				p.stopErr = fmt.Errorf("%s: %w", p.role, p.err)
			}
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("%s did not stop within 15 s and was killed", p.role)
		}
	})
	return p.stopErr
}
