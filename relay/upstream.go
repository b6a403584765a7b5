package relay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// hopHeaders are per-connection headers, and the caller's credentials,
// which must not travel to the provider.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Authorization": true, "Cookie": true, "X-Api-Key": true, "Api-Key": true,
	"X-Goog-Api-Key": true, "Content-Length": true, "Accept-Encoding": true, "Host": true,
}

func (r *Relay) send(ctx context.Context, in *http.Request, c *Call, d *pool.Deployment, k *pool.Key, secret string) (*http.Response, error) {
	body := upstreamBody(c.Body, c.Group.ID, d.Model)
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Model.BaseURL+"/"+c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for name, vals := range in.Header {
		if !hopHeaders[name] {
			out.Header[name] = vals
		}
	}
	out.Header.Set("Authorization", "Bearer "+secret)
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("X-Request-Id", c.RequestID)
	release := k.Acquire()
	resp, err := r.Client.Do(out)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// upstreamBody renames the model when the deployment's upstream name
// differs from what the caller asked for (upstream_model, or a fallback
// model) and fills in a default temperature; otherwise the caller's bytes go
// out untouched.
func upstreamBody(body []byte, requested string, m keygate.Model) []byte {
	if m.UpstreamName() != requested {
		if b, err := sjson.SetBytes(body, "model", m.UpstreamName()); err == nil {
			body = b
		}
	}
	if m.Temperature != nil && !gjson.GetBytes(body, "temperature").Exists() {
		if b, err := sjson.SetBytes(body, "temperature", *m.Temperature); err == nil {
			body = b
		}
	}
	return body
}

type releaseOnClose struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
