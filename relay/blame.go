package relay

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
)

// judge decides who a classified failure is charged to (SPEC section 4,
// "blame the right party"):
//   - a fetched key the provider rejects is replaced and the request tried
//     again with the new key, once; a second rejection makes the key
//     unusable until its next lease, and the request moves on;
//   - an authentication or permission failure of a static key is confirmed
//     with the adapter's key check, built from keygate's own inputs only,
//     before it disables anything. If the check passes, an authentication
//     failure was the request's (it goes back to the caller, charged to no
//     key), and a permission failure is about this model (the key cools for
//     it alone). If the check cannot tell, nothing is charged.
func (a *attempt) judge(ctx context.Context, ad provider.Adapter, t provider.Target, pf provider.Failure) result {
	r := a.relay
	k := a.a.Key()
	v := pf.Verdict
	v.Reason = maskText(v.Reason, t.Secret, t.Model.BaseURL)
	f := &failure{status: pf.Status, body: maskBody(pf.Body, t.Secret, t.Model.BaseURL), retryAfter: pf.RetryAfter}

	switch {
	case v.Scope == health.ScopeKey && k.Refresher() != nil:
		// Any key-wide failure of a fetched key (revoked, out of quota, no
		// permission) is about this one credential, not the slot: ask the
		// source for a new one instead of cooling it.
		v.Scope = health.ScopeNone
		if !a.call.refetched {
			a.call.refetched = true
			err := k.Refresher().Rejected(ctx, t.Secret)
			if s := k.Secret(); err == nil && s != "" && s != t.Secret {
				res := a.failed(v, f)
				res.again = true
				return res
			}
		} else {
			// Asked in the background: the slot serves again as soon as the
			// source installs a key (its fetches are rate-limited).
			go func(ref pool.Refresher, secret string) {
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				ref.Rejected(bctx, secret)
			}(k.Refresher(), t.Secret)
		}
		if k.Secret() == t.Secret {
			k.Expire()
		}
		r.Logger.Error("fetched key rejected and not replaced", "model", a.group, "key_id", k.ID, "request_id", a.call.RequestID)
	case (v.Class == health.ClassAuthentication || v.Class == health.ClassPermissionDenied) && v.Scope == health.ScopeKey:
		switch r.confirm(ctx, ad, k, t) {
		case checkPassed:
			if v.Class == health.ClassAuthentication {
				v = health.Verdict{Class: health.ClassClient, Scope: health.ScopeNone,
					Reason: "the key passed keygate's own check, so the request caused: " + v.Reason}
			} else {
				v.Scope = health.ScopeKeyModel
			}
		case checkUnsure:
			v.Scope = health.ScopeNone
		}
	}
	return a.failed(v, f)
}

type checkResult int

const (
	checkUnsure    checkResult = iota // the check itself failed (network, a 5xx)
	checkPassed                       // the key authenticates
	checkConfirmed                    // the key is refused by keygate's own request too
)

// confirmations runs at most one key check per key at a time: a burst of
// failing requests on one key waits for the same check.
type confirmations struct {
	mu sync.Mutex
	m  map[*pool.Key]*confirmCall
}

type confirmCall struct {
	done chan struct{}
	res  checkResult
}

func (r *Relay) confirm(ctx context.Context, ad provider.Adapter, k *pool.Key, t provider.Target) checkResult {
	cs := &r.confirms
	cs.mu.Lock()
	if c := cs.m[k]; c != nil {
		cs.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return checkUnsure
		}
	}
	if cs.m == nil {
		cs.m = map[*pool.Key]*confirmCall{}
	}
	c := &confirmCall{done: make(chan struct{})}
	cs.m[k] = c
	cs.mu.Unlock()

	c.res = r.check(ctx, ad, t)
	cs.mu.Lock()
	delete(cs.m, k)
	cs.mu.Unlock()
	close(c.done)
	return c.res
}

func (r *Relay) check(ctx context.Context, ad provider.Adapter, t provider.Target) checkResult {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := ad.CheckRequest(cctx, t)
	if err != nil {
		return checkUnsure
	}
	if t.Bearer {
		provider.UseBearer(req, t.Secret)
	}
	resp, err := r.transport().RoundTrip(req)
	if err != nil {
		return checkUnsure
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return checkPassed
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	v := ad.Failure(&provider.Request{}, resp.StatusCode, resp.Header, body, r.Clock.Now()).Verdict
	if v.Class == health.ClassAuthentication || v.Class == health.ClassPermissionDenied {
		return checkConfirmed
	}
	return checkUnsure
}

// maskText hides the key and the deployment's address in a message.
func maskText(s, secret, baseURL string) string {
	if s == "" {
		return s
	}
	return string(maskBody([]byte(s), secret, baseURL))
}
