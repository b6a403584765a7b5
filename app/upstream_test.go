package app_test

import (
	"os"

	"github.com/keygate/keygate/relay"
)

// KEYGATE_UPSTREAM_CLIENT=fasthttp runs the suite on the fasthttp upstream
// client instead of net/http (the configs here leave upstream_client unset).
func init() {
	if v := os.Getenv("KEYGATE_UPSTREAM_CLIENT"); v != "" {
		relay.DefaultUpstream = v
	}
}
