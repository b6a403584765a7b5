package relay

import (
	"fmt"
	"net/http"
	"time"
)

// The upstream clients a deployment may choose (config upstream_client).
const (
	UpstreamNet      = "net"      // net/http's Transport (NewTransport)
	UpstreamFastHTTP = "fasthttp" // fasthttp's wire code (NewFastTransport)
)

// DefaultUpstream is the upstream client used when the configuration names
// none. Tests set it to run a whole suite on the other client.
var DefaultUpstream = UpstreamNet

// NewUpstream returns the transport of the named upstream client ("" is
// DefaultUpstream), bounding the wait for an answer's headers.
func NewUpstream(client string, responseHeaderTimeout time.Duration) (http.RoundTripper, error) {
	if client == "" {
		client = DefaultUpstream
	}
	switch client {
	case UpstreamNet:
		return NewTransport(responseHeaderTimeout), nil
	case UpstreamFastHTTP:
		return NewFastTransport(responseHeaderTimeout), nil
	}
	return nil, fmt.Errorf("unknown upstream client %q (net or fasthttp)", client)
}
