package relay_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/relay"
)

// Real providers serve HTTPS with HTTP/2; over it a stream costs the
// gateway no upstream socket of its own, where HTTP/1.1 would take one per
// stream (10,000 open streams, 10,000 more sockets). The upstream
// transport must keep HTTP/2 on for https.
func TestNewTransportSpeaksHTTP2OverTLS(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()

	tr := relay.NewTransport(time.Minute)
	tr.TLSClientConfig = up.Client().Transport.(*http.Transport).TLSClientConfig // trust the test CA, as SSL_CERT_FILE would
	c := &http.Client{Transport: tr}
	for i := range 2 {
		resp, err := c.Get(up.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("call %d went over %s, want HTTP/2", i, resp.Proto)
		}
	}
}
