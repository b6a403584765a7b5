package admin

import (
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
)

// maskedSource is a key_source as answers show it: every secret (header
// values, client_secret, refresh_token, credentials_json) masked.
func maskedSource(ks keygate.KeySource) *keygate.KeySource {
	ks.Headers = maps.Clone(ks.Headers)
	for h, val := range ks.Headers {
		ks.Headers[h] = keygate.Mask(val)
	}
	for _, f := range []*string{&ks.ClientSecret, &ks.RefreshToken, &ks.CredentialsJSON} {
		if *f != "" {
			*f = keygate.Mask(*f)
		}
	}
	ks.URL, ks.TokenURL = maskURL(ks.URL), maskURL(ks.TokenURL)
	return &ks
}

// maskURL masks what a URL may carry secretly: every query value (a key
// service's ?appSecret=…) and a password.
func maskURL(raw string) string {
	if raw == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		head, _, _ := strings.Cut(raw, "?")
		return head
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "****")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i := range vs {
				vs[i] = keygate.Mask(vs[i])
			}
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// keepMaskedSecrets gives back their stored values to the secrets of ks
// sent back masked, as GET shows them, so an answer can be edited and sent
// back without retyping them.
func keepMaskedSecrets(ks, stored *keygate.KeySource) {
	for _, f := range []struct{ in, old *string }{{&ks.URL, &stored.URL}, {&ks.TokenURL, &stored.TokenURL}} {
		if *f.old != "" && *f.in == maskURL(*f.old) {
			*f.in = *f.old
		}
	}
	for h, v := range ks.Headers {
		if old, ok := stored.Headers[h]; ok && v == keygate.Mask(old) {
			ks.Headers[h] = old
		}
	}
	for _, f := range []struct{ in, old *string }{
		{&ks.ClientSecret, &stored.ClientSecret}, {&ks.RefreshToken, &stored.RefreshToken},
		{&ks.CredentialsJSON, &stored.CredentialsJSON},
	} {
		if *f.old != "" && *f.in == keygate.Mask(*f.old) {
			*f.in = *f.old
		}
	}
}

// SourceEntry is one key source as GET /api/v1/key-sources answers it: the
// fetched key it feeds and the source's state, for the CLI and the
// dashboard. It holds no secret.
type SourceEntry struct {
	KeyID  string   `json:"key_id"`
	Masked string   `json:"masked"` // the current credential, masked
	Models []string `json:"models"`
	Status string   `json:"status"` // the key's status (SPEC section 4)
	pool.SourceView
	// ExpiresInSeconds is how long the current credential has left; 0 once expired.
	ExpiresInSeconds float64 `json:"expires_in_seconds"`
}

// HandleListKeySources lists every key source: its type, state, last
// refresh, expiry and last error.
func HandleListKeySources(p *pool.Pool, clock clockwork.Clock) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clock.Now()
		out := []SourceEntry{}
		for _, k := range p.FetchedKeys() {
			v := k.View(now)
			if v.Source == nil {
				continue
			}
			e := SourceEntry{KeyID: v.ID, Masked: v.Masked, Models: v.Models, Status: v.Status, SourceView: *v.Source}
			if left := v.Source.ExpiresAt.Sub(now).Seconds(); left > 0 {
				e.ExpiresInSeconds = left
			}
			out = append(out, e)
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": out})
	})
}
