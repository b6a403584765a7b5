package keysource

import (
	"fmt"
	"io"
	"net/http"
)

// Transport is an http.RoundTripper that authorizes every request with
// "Authorization: Bearer <key>" from Source, falling back to Backup while the
// source has no valid key (and waiting for one when there is no Backup).
// When the provider answers 401 to a fetched key, it tells the source, which
// fetches a new key, and sends the request once more with it. A request keeps
// the key it started with; a refresh meanwhile only affects later requests.
//
// Only a request whose body can be replayed (req.GetBody, set by
// http.NewRequest for in-memory bodies) is sent again.
type Transport struct {
	Source *Source
	Backup string            // optional fixed key
	Base   http.RoundTripper // default http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	key, fetched, err := t.key(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on errors
		}
		return nil, err
	}
	resp, err := base.RoundTrip(authorize(req, key))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !fetched {
		return resp, err
	}

	// The key was rejected before its expiry: revoked, or rotated early.
	next := t.Backup
	if l, err := t.Source.Rejected(req.Context(), key); err == nil && l.Valid(t.Source.clock.Now()) {
		next = l.Secret
	}
	if next == "" || next == key {
		return resp, nil
	}
	retry := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry = req.Clone(req.Context())
		retry.Body = body
	}
	// Drain a little so the connection can be reused.
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	return base.RoundTrip(authorize(retry, next))
}

// key chooses the key for a new request and reports whether it came from
// the source (and so may be reported as rejected).
func (t *Transport) key(req *http.Request) (key string, fetched bool, err error) {
	if l := t.Source.Current(); l.Valid(t.Source.clock.Now()) {
		return l.Secret, true, nil
	}
	if t.Backup != "" {
		return t.Backup, false, nil
	}
	l, err := t.Source.Wait(req.Context())
	if err != nil {
		return "", false, fmt.Errorf("keysource: no key for %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return l.Secret, true, nil
}

// authorize returns a copy of req carrying key; a RoundTripper must not
// modify the request it was given.
func authorize(req *http.Request, key string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}
