package server_test

import (
	"net/http"
	"os"
	"time"

	"github.com/keygate/keygate/relay"
)

// KEYGATE_UPSTREAM_CLIENT=fasthttp runs the suite on the fasthttp upstream
// client instead of net/http.
func init() {
	if v := os.Getenv("KEYGATE_UPSTREAM_CLIENT"); v != "" {
		relay.DefaultUpstream = v
	}
}

// upstreamTransport is the relay's transport, on the client the run chose.
func upstreamTransport(responseHeaderTimeout time.Duration) http.RoundTripper {
	t, err := relay.NewUpstream("", responseHeaderTimeout)
	if err != nil {
		panic(err)
	}
	return t
}
