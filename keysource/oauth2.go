package keysource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauth2Source gets an access token from an OAuth 2.0 token endpoint
// (key_source.type oauth2): the client-credentials grant (Azure OpenAI with
// Entra ID), or the refresh-token grant when refresh_token is set. The
// access token is the key and expires_in its lifetime. A refresh token the
// server rotates is kept, in Options.Vault too, so a restart uses the
// rotated one rather than the spent one from the config.
type oauth2Source struct {
	s     *Source
	shown string // token_url without query or password
	// One config of each grant for the source's life: each remembers which
	// way of sending the client secret the endpoint took (header or form),
	// so a failing endpoint is not asked twice per attempt.
	cc      *clientcredentials.Config
	refresh *oauth2.Config

	mu     sync.Mutex
	token  string // the refresh token to use next
	loaded bool   // token has been looked up in the vault
}

func newOAuth2(s *Source, p *Problems) *oauth2Source {
	spec := s.spec
	u := httpURL(p, "token_url", spec.TokenURL, ": the OAuth 2.0 token endpoint")
	if strings.TrimSpace(spec.ClientID) == "" {
		p.Add("client_id", "required")
	}
	if spec.RefreshToken == "" && spec.ClientSecret == "" {
		p.Add("client_secret", "required for the client-credentials grant (or give refresh_token for the refresh-token grant)")
	}
	for _, f := range []struct{ name, v string }{{"client_secret", spec.ClientSecret}, {"refresh_token", spec.RefreshToken}} {
		if strings.ContainsAny(f.v, "\r\n") {
			p.Add(f.name, "has a line break") // the value is a secret: not quoted
		}
	}
	scopes := strings.Fields(spec.Scope)
	o := &oauth2Source{s: s, token: spec.RefreshToken,
		cc: &clientcredentials.Config{ClientID: spec.ClientID, ClientSecret: spec.ClientSecret, TokenURL: spec.TokenURL, Scopes: scopes},
		refresh: &oauth2.Config{ClientID: spec.ClientID, ClientSecret: spec.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: spec.TokenURL}, Scopes: scopes}}
	if u != nil {
		o.shown = shown(u)
	}
	return o
}

func (o *oauth2Source) target() string { return o.shown }

func (o *oauth2Source) fetch(ctx context.Context) (Lease, error) {
	s := o.s
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	if s.spec.RefreshToken == "" {
		tok, err := o.cc.Token(ctx)
		if err != nil {
			return Lease{}, o.explain(err)
		}
		return leaseOf(tok, s)
	}

	used := o.current(ctx)
	tok, err := o.refreshWith(ctx, used)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		// Another replica may have rotated the token: take the stored one, once.
		if stored, ok := o.stored(ctx); ok && stored != used {
			o.setCurrent(stored)
			used = stored
			tok, err = o.refreshWith(ctx, used)
		}
	}
	if err != nil {
		return Lease{}, o.explain(err)
	}
	if next := tok.RefreshToken; next != "" && next != used {
		o.rotate(ctx, next)
	}
	return leaseOf(tok, s)
}

func (o *oauth2Source) refreshWith(ctx context.Context, refresh string) (*oauth2.Token, error) {
	// An empty access token makes the token source refresh at once.
	return o.refresh.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
}

// vaultRecord is what the vault keeps: the rotated refresh token, and a hash
// of the configured one it descends from, so that a new refresh_token in the
// config wins over what an older one was rotated into.
type vaultRecord struct {
	Origin string `json:"origin"`
	Token  string `json:"token"`
}

func (o *oauth2Source) origin() string {
	h := sha256.Sum256([]byte(o.s.spec.RefreshToken))
	return hex.EncodeToString(h[:])
}

// current is the refresh token to use: the configured one, or the one it
// was last rotated into (looked up in the vault on first use). Only the
// fetch in flight calls it, so the lookup under mu holds up no one.
func (o *oauth2Source) current(ctx context.Context) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.loaded {
		o.loaded = true
		if stored, ok := o.stored(ctx); ok {
			o.token = stored
		}
	}
	return o.token
}

func (o *oauth2Source) setCurrent(token string) {
	o.mu.Lock()
	o.token = token
	o.mu.Unlock()
}

// stored returns the rotated refresh token in the vault, if it descends from
// the configured one.
func (o *oauth2Source) stored(ctx context.Context) (string, bool) {
	v, name := o.s.opts.Vault, o.s.opts.VaultName
	if v == nil || name == "" {
		return "", false
	}
	raw, found, err := v.LoadSecret(ctx, name)
	if err != nil {
		o.s.log.Error("load the rotated refresh token", "error", err)
		return "", false
	}
	var rec vaultRecord
	if !found || json.Unmarshal([]byte(raw), &rec) != nil || rec.Origin != o.origin() || rec.Token == "" {
		return "", false
	}
	return rec.Token, true
}

// rotate keeps the refresh token the server handed out in place of the one used.
func (o *oauth2Source) rotate(ctx context.Context, next string) {
	o.setCurrent(next)
	o.s.log.Info("refresh token rotated", "refresh_token", keygate.Mask(next))
	v, name := o.s.opts.Vault, o.s.opts.VaultName
	if v == nil || name == "" {
		return
	}
	raw, _ := json.Marshal(vaultRecord{Origin: o.origin(), Token: next})
	// Not the fetch's context: a token the server already spent the old one
	// for must be saved even if the fetch is being cut.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := v.SaveSecret(sctx, name, string(raw)); err != nil {
		o.s.log.Error("save the rotated refresh token: a restart will use the configured one", "error", err)
	}
}

// explain turns an error of x/oauth2 into one that says what the token
// endpoint answered, with no secret and no query string in it.
func (o *oauth2Source) explain(err error) error {
	return tokenError(o.s, err, o.s.spec.TokenURL, o.shown)
}

// tokenError is explain for any token endpoint at raw (shown: without secrets).
func tokenError(s *Source, err error, raw, shown string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "" {
			// x/oauth2/jwt leaves RFC 6749's error fields in the body.
			var body struct {
				Code string `json:"error"`
				Desc string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				re.ErrorCode, re.ErrorDescription = body.Code, body.Desc
			}
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			msg := fmt.Sprintf("token endpoint answered %d %s", status, re.ErrorCode)
			if re.ErrorDescription != "" {
				msg += ": " + s.snippet([]byte(re.ErrorDescription))
			}
			return &fetchError{msg: msg, code: re.ErrorCode}
		}
		return &fetchError{msg: fmt.Sprintf("token endpoint answered %d: %s", status, s.snippet(re.Body))}
	}
	msg := err.Error()
	if raw != "" {
		msg = strings.ReplaceAll(msg, raw, shown)
	}
	return &fetchError{msg: s.snippet([]byte(msg)), cause: err}
}

// fetchError is a token endpoint's failure, made safe to show; Unwrap keeps
// a context error visible to errors.Is.
type fetchError struct {
	msg   string
	code  string // the OAuth 2.0 error code, like invalid_grant
	cause error
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return e.cause }

// leaseOf turns an access token into a lease: expires_in is its lifetime,
// read from the answer rather than from x/oauth2's Expiry, which is on the
// real clock, not the source's.
func leaseOf(tok *oauth2.Token, s *Source) (Lease, error) {
	secret := strings.TrimSpace(tok.AccessToken)
	if secret == "" {
		return Lease{}, errors.New("token endpoint answered no access_token")
	}
	now := s.clock.Now()
	life := s.expire
	switch in := tok.ExpiresIn; {
	case in > 0:
		life = time.Duration(in) * time.Second
	default:
		if n, ok := tok.Extra("expires_in").(float64); ok && n > 0 {
			life = time.Duration(n * float64(time.Second))
		} else if !tok.Expiry.IsZero() {
			life = time.Until(tok.Expiry).Round(time.Second)
		}
	}
	if life <= 0 {
		return Lease{}, errors.New("token endpoint answered a token that has already expired")
	}
	return Lease{Secret: secret, FetchedAt: now, ExpiresAt: now.Add(life)}, nil
}
