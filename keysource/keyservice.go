package keysource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// keyService fetches a key from a key service (key_source.type key_service,
// the default): a GET with ?sceneCode= or a POST with {"sceneCode":…},
// answered {"<result_field>":"<key>"} with an optional expires_in or
// expire_time.
type keyService struct {
	s     *Source
	url   *url.URL
	shown string // url without query or password, for errors and View
}

func newKeyService(s *Source, p *Problems) *keyService {
	spec := s.spec
	u := httpURL(p, "url", spec.URL, "")
	if spec.Method != http.MethodGet && spec.Method != http.MethodPost {
		p.Add("method", "%q must be GET or POST", spec.Method)
	}
	if strings.TrimSpace(spec.SceneCode) == "" {
		p.Add("scene_code", "required")
	}
	if strings.TrimSpace(spec.ResultField) == "" {
		p.Add("result_field", "%q must name a field", spec.ResultField)
	}
	for k, v := range spec.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			p.Add("headers", "%q is not a header name", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			p.Add("headers", "the value of %q has a line break", k) // the value may be a secret
		}
	}
	k := &keyService{s: s, url: u}
	if u != nil {
		k.shown = shown(u)
	}
	return k
}

func (k *keyService) target() string { return k.shown }

// fetch asks the key service for a key, once.
func (k *keyService) fetch(ctx context.Context) (Lease, error) {
	s := k.s
	req, err := k.newRequest(ctx)
	if err != nil {
		return Lease{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL with its query, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Lease{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Lease{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Lease{}, fmt.Errorf("status %d: %s", resp.StatusCode, s.snippet(body))
	}
	return k.parse(body, s.clock.Now())
}

// newRequest builds the call SPEC section 5 describes: sceneCode as a query
// parameter for GET, as a JSON body for POST.
func (k *keyService) newRequest(ctx context.Context) (*http.Request, error) {
	s := k.s
	u := *k.url
	var body io.Reader
	if s.spec.Method == http.MethodGet {
		q := u.Query()
		q.Set("sceneCode", s.spec.SceneCode)
		u.RawQuery = q.Encode()
	} else {
		b, err := json.Marshal(map[string]string{"sceneCode": s.spec.SceneCode})
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, s.spec.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for name, v := range s.spec.Headers {
		if strings.EqualFold(name, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(name, v)
	}
	return req, nil
}

// parse reads {"<result_field>":"<key>"} and the optional expires_in or
// expire_time, which win over expire_seconds.
func (k *keyService) parse(body []byte, now time.Time) (Lease, error) {
	s := k.s
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return Lease{}, fmt.Errorf("answer is not a JSON object: %s", s.snippet(body))
	}
	name := s.spec.ResultField
	raw, ok := fields[name]
	if !ok {
		return Lease{}, fmt.Errorf("answer has no %q field", name)
	}
	var secret string
	if err := json.Unmarshal(raw, &secret); err != nil {
		return Lease{}, fmt.Errorf("answer field %q is %s, want a string", name, kind(raw))
	}
	if strings.TrimSpace(secret) == "" {
		return Lease{}, fmt.Errorf("answer field %q is empty", name)
	}
	expires, err := expiry(fields, "expire_time", now, s.expire)
	if err != nil {
		return Lease{}, err
	}
	return Lease{Secret: secret, FetchedAt: now, ExpiresAt: expires}, nil
}
