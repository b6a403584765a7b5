package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/config"
	"github.com/spf13/cobra"
)

func newServeCmd(env Env) *cobra.Command {
	var opts config.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.WorkDir, opts.LookupEnv = env.WorkDir, env.LookupEnv
			cfg, err := config.Load(opts)
			if err != nil {
				return err
			}
			logger := newLogger(env.Stderr, cfg.LogLevel)
			if cfg.Source != "" {
				logger.Info("config loaded", "file", cfg.Source)
			}
			return runGateway(cmd.Context(), cfg, logger, nil)
		},
	}
	cmd.Flags().StringVar(&opts.ConfigFile, "config", "", "YAML config file (default ./keygate.yaml if present)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	return cmd
}

// runGateway starts the gateway for cfg, calls ready with the address it
// listens on, and serves until ctx ends.
func runGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(addr string)) error {
	a, err := app.New(ctx, cfg, app.Options{Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.Store().Close()
		return fmt.Errorf("listen on %s: %w (another process may use it; try --listen 127.0.0.1:0)", cfg.Listen, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	return a.Serve(ctx, ln)
}
