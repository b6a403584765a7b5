package keysource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// command runs a program that prints a key (key_source.type command): a
// vault CLI, a script. argv is run as it is, with no shell; stdout is the
// key, or JSON {"key","expires_at"|"expires_in"}; whatever it writes to
// stderr is logged, masked.
type command struct {
	s    *Source
	argv []string
}

// maxOutput bounds what is kept of a command's stdout and stderr.
const maxOutput = 64 << 10

func newCommand(s *Source, p *Problems) *command {
	switch {
	case len(s.spec.Command) == 0:
		p.Add("command", `required: the program and its arguments as a list, like ["vault", "read", "-field=key", "secret/llm"]`)
	case strings.TrimSpace(s.spec.Command[0]) == "":
		p.Add("command[0]", "required: the program to run")
	}
	return &command{s: s, argv: append([]string(nil), s.spec.Command...)}
}

// target names the program only: its arguments may carry a secret.
func (c *command) target() string {
	if len(c.argv) == 0 {
		return "command"
	}
	return "command " + c.argv[0]
}

func (c *command) fetch(ctx context.Context) (Lease, error) {
	s := c.s
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	stdout, stderr := &capped{max: maxOutput}, &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = helperEnv(os.Environ())
	// A child that keeps the pipes open must not hold the fetch past its timeout.
	cmd.WaitDelay = time.Second
	killGroup(cmd)
	runErr := cmd.Run()

	var l Lease
	err := runErr
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("did not finish within %s: %w", s.timeout, ctx.Err())
	case runErr != nil:
		var exit *exec.ExitError
		if errors.As(runErr, &exit) {
			err = fmt.Errorf("%s (its stderr is in the log)", exit.ProcessState)
		}
	default:
		l, err = c.parse(stdout.Bytes(), s.clock.Now())
	}
	if b := bytes.TrimSpace(stderr.Bytes()); len(b) > 0 {
		msg := s.snippet(b)
		if l.Secret != "" {
			msg = keygate.MaskIn(msg, l.Secret)
		}
		s.log.Warn("key command wrote to stderr", "command", c.argv[0], "stderr", msg)
	}
	return l, err
}

// parse reads what the command printed: the key alone, or a JSON object.
func (c *command) parse(out []byte, now time.Time) (Lease, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return Lease{}, errors.New("printed nothing on stdout")
	}
	if out[0] != '{' {
		if bytes.ContainsAny(out, " \t\r\n") {
			return Lease{}, errors.New(`printed more than one word on stdout: print the key alone, or JSON {"key":…,"expires_in":…}`)
		}
		return Lease{Secret: string(out), FetchedAt: now, ExpiresAt: now.Add(c.s.expire)}, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil {
		return Lease{}, fmt.Errorf("stdout is not a JSON object: %s", c.s.snippet(out))
	}
	var key string
	raw, ok := fields["key"]
	if !ok {
		return Lease{}, errors.New(`stdout JSON has no "key" field`)
	}
	if err := json.Unmarshal(raw, &key); err != nil {
		return Lease{}, fmt.Errorf(`stdout JSON field "key" is %s, want a string`, kind(raw))
	}
	if key = strings.TrimSpace(key); key == "" {
		return Lease{}, errors.New(`stdout JSON field "key" is empty`)
	}
	expires, err := expiry(fields, "expires_at", now, c.s.expire)
	if err != nil {
		return Lease{}, err
	}
	return Lease{Secret: key, FetchedAt: now, ExpiresAt: expires}, nil
}

// helperEnv is keygate's environment without its own variables
// (KEYGATE_MASTER_KEY, KEYGATE_ADMIN_TOKEN, …): a helper gets what a vault
// CLI needs, not the keys to keygate.
func helperEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KEYGATE_") {
			out = append(out, kv)
		}
	}
	return out
}

// capped is a buffer that keeps the first max bytes written and drops the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
