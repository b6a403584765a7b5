// Package cli is the keygate command line: `serve`, `demo`, `version`, and
// the operator commands that talk to a running server through its admin
// API (client.go).
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/keygate/keygate"
	"github.com/spf13/cobra"
)

// Env is how the CLI sees the process environment.
type Env struct {
	LookupEnv func(string) (string, bool)
	Stdout    io.Writer
	Stderr    io.Writer
	WorkDir   string
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	root := newRoot(env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "An LLM gateway that keeps upstream API keys alive",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(env), newDemoCmd(env), newVersionCmd(env), newModelsCmd(env), newKeysCmd(env),
		newTokensCmd(env), newStatusCmd(env), newReportCmd(env), newAuditCmd(env))
	return root
}

func newVersionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version and build info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit, built := "unknown", "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						commit = s.Value
					case "vcs.time":
						built = s.Value
					}
				}
			}
			fmt.Fprintf(env.Stdout, "keygate %s (commit %s, built %s, %s %s/%s)\n",
				keygate.Version, commit, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// newLogger returns a text logger at level (debug, info, warn, error).
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
