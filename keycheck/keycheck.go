// Package keycheck tests keys against their providers outside live
// traffic, with the cheapest call that proves a key (listing models, which
// costs nothing), classifies the answer with the same classifier as live
// traffic, and updates the key's state. It also runs the background
// recovery schedule that brings cooled or disabled keys back by itself.
package keycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/anthropic"
	"github.com/keygate/keygate/provider/azure"
)

// Vendors whose check call keycheck knows. Any other provider is checked
// the OpenAI way, which every OpenAI-compatible service answers.
const (
	VendorOpenAI      = "openai"
	VendorGemini      = "gemini"
	VendorAnthropic   = "anthropic"
	VendorSiliconFlow = "siliconflow"
	VendorAzure       = "azure"
)

// Result is the outcome of checking one key.
type Result struct {
	ID         string `json:"id"`
	Masked     string `json:"masked"`
	Model      string `json:"model"`
	Vendor     string `json:"vendor"`
	OK         bool   `json:"ok"`
	Class      string `json:"class,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
	LatencyMS  int64  `json:"latency_ms"`
	Message    string `json:"message,omitempty"`
	Status     string `json:"status"` // the key's status after the check
}

// Checker checks keys.
type Checker struct {
	Pool        *pool.Pool
	Client      *http.Client
	Clock       clockwork.Clock
	Logger      *slog.Logger
	Concurrency int // checks at once (default 8)
}

// Filter selects the keys to check; empty fields match everything.
type Filter struct {
	Model  string
	Vendor string   // openai, gemini, siliconflow, anthropic, or "all"
	IDs    []string // only these keys, if set (the dashboard's selection)
}

type target struct {
	key  *pool.Key
	slot *pool.Slot
	dep  *pool.Deployment
}

// CheckAll checks every key that f selects, a bounded number at a time,
// and calls progress (if set) after each. Results are ordered by key id.
func (c *Checker) CheckAll(ctx context.Context, f Filter, progress func(Result)) []Result {
	targets := c.targets(f)
	results := make([]Result, len(targets))
	n := c.Concurrency
	if n <= 0 {
		n = 8
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := c.check(ctx, t)
			results[i] = r
			if progress != nil {
				mu.Lock()
				progress(r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

// Plan tells how many keys CheckAll(f) would check.
func (c *Checker) Plan(f Filter) int { return len(c.targets(f)) }

func (c *Checker) targets(f Filter) []target {
	var out []target
	for _, k := range c.Pool.Keys() {
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, k.ID) {
			continue
		}
		for _, s := range k.Slots() {
			if f.Model != "" && s.Model != f.Model {
				continue
			}
			d := c.Pool.Deployment(k, s.Model)
			if d == nil {
				continue
			}
			if v := VendorOf(d.Model); f.Vendor != "" && f.Vendor != "all" && v != f.Vendor {
				continue
			}
			out = append(out, target{key: k, slot: s, dep: d})
			break // one check proves the key; its first matching model is enough
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.ID < out[j].key.ID })
	return out
}

// VendorOf names the vendor of a model, from its provider or its base URL.
func VendorOf(m keygate.Model) string {
	p, u := strings.ToLower(m.Provider), strings.ToLower(m.BaseURL)
	switch {
	case p == VendorGemini || p == "google" || strings.Contains(u, "generativelanguage.googleapis.com"):
		return VendorGemini
	case p == VendorAnthropic || p == "claude" || strings.Contains(u, "anthropic.com"):
		return VendorAnthropic
	case p == VendorSiliconFlow || strings.Contains(u, "siliconflow"):
		return VendorSiliconFlow
	case p == VendorAzure || strings.Contains(u, ".openai.azure.com"):
		return VendorAzure
	}
	return VendorOpenAI
}

// Check checks one key for one model now.
func (c *Checker) Check(ctx context.Context, k *pool.Key, model string) (Result, bool) {
	d := c.Pool.Deployment(k, model)
	if d == nil {
		return Result{}, false
	}
	for _, s := range k.Slots() {
		if s.Model == model {
			return c.check(ctx, target{key: k, slot: s, dep: d}), true
		}
	}
	return Result{}, false
}

func (c *Checker) check(ctx context.Context, t target) Result {
	vendor := VendorOf(t.dep.Model)
	r := Result{ID: t.key.ID, Masked: t.key.Masked(), Model: t.slot.Model, Vendor: vendor}
	secret := t.key.Secret()
	if secret == "" {
		r.Message, r.Status = "no key fetched yet", t.key.View(c.Clock.Now()).Status
		return r
	}
	// A quota, permission or rate-limit state is proved over only by a
	// real minimal call; a model list proves only that the key authenticates.
	// Native adapters (Anthropic, Gemini) build their own; OpenAI-compatible
	// vendors get a one-token chat completion.
	ad := provider.For(t.dep.Model.Provider)
	mc, native := ad.(provider.MinimalCaller)
	real := t.slot.NeedsRealCall() && (native || vendor == VendorOpenAI || vendor == VendorSiliconFlow)
	var req *http.Request
	var err error
	switch {
	case real && native:
		req, err = mc.MinimalRequest(ctx, provider.Target{Model: &t.dep.Model, Secret: secret})
	case real:
		req, err = newMinimalCall(ctx, t.dep.Model.BaseURL, t.dep.Model.UpstreamName(), secret)
	default:
		req, err = newCheckRequest(ctx, vendor, &t.dep.Model, secret)
	}
	if err != nil {
		r.Message = err.Error()
		return r
	}
	if t.key.Bearer() {
		provider.UseBearer(req, secret)
	}
	start := c.Clock.Now()
	resp, err := c.Client.Do(req)
	r.LatencyMS = c.Clock.Since(start).Milliseconds()
	now := c.Clock.Now()
	var v health.Verdict
	switch {
	case err != nil:
		v = health.ClassifyErr(err, ctx.Err() != nil)
		r.Message = keygate.MaskIn(v.Reason, secret)
	case resp.StatusCode < 400 && real && native:
		// The answer must be a generation, not a 200 carrying an error
		// object (as some relays send): judged as live traffic is.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		r.StatusCode = resp.StatusCode
		if _, _, f := ad.Answer(&provider.Request{Dialect: provider.DialectChat, Model: t.slot.Model}, resp.StatusCode, resp.Header, body, now); f != nil {
			v = f.Verdict
			r.Message = keygate.MaskIn(v.Reason, secret)
			break
		}
		return c.passed(t, r, true, now)
	case resp.StatusCode < 400:
		resp.Body.Close()
		r.StatusCode = resp.StatusCode
		return c.passed(t, r, real, now)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		r.StatusCode = resp.StatusCode
		v = health.Classify(resp.StatusCode, resp.Header, body, now)
		r.Message = keygate.MaskIn(v.Reason, secret)
	}
	r.Class = string(v.Class)
	v.Reason = r.Message
	if v.Scope != health.ScopeNone {
		c.Pool.Checked(t.slot, now, &v)
	}
	r.Status = t.key.View(now).Status
	c.Logger.Info("key checked", "key_id", t.key.ID, "model", t.slot.Model, "ok", r.OK, "class", r.Class, "status", r.StatusCode)
	return r
}

// passed records a check that passed: a real call heals every state of
// the key and model, a model list only an authentication failure.
func (c *Checker) passed(t target, r Result, real bool, now time.Time) Result {
	r.OK = true
	if real {
		c.Pool.Proved(t.slot, now)
	} else {
		c.Pool.Checked(t.slot, now, nil)
	}
	r.Status = t.key.View(now).Status
	return r
}

// newMinimalCall builds a one-token chat completion: the cheapest call
// that proves a key has quota and room, not only that it authenticates.
func newMinimalCall(ctx context.Context, baseURL, model, secret string) (*http.Request, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "max_tokens": 1,
		"messages": []map[string]string{{"role": "user", "content": "hi"}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	return req, nil
}

// newCheckRequest builds the cheapest request that proves a key: the
// provider's model list, which costs nothing, authenticated the way the
// vendor expects: GET {base}/models (OpenAI and compatible services,
// Gemini's {base}/v1beta/models), Anthropic's {base}/v1/models, Azure's
// {base}/openai/models?api-version=….
func newCheckRequest(ctx context.Context, vendor string, m *keygate.Model, secret string) (*http.Request, error) {
	base := strings.TrimRight(m.BaseURL, "/")
	url := base + "/models"
	switch vendor {
	case VendorAnthropic:
		// The base is https://api.anthropic.com; one ending in /v1 is taken too.
		url = strings.TrimSuffix(base, "/v1") + "/v1/models"
	case VendorAzure:
		v := m.APIVersion
		if v == "" {
			v = azure.DefaultAPIVersion
		}
		url = base + "/openai/models?api-version=" + v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	switch vendor {
	case VendorAzure:
		req.Header.Set("api-key", secret)
	case VendorAnthropic:
		req.Header.Set("x-api-key", secret)
		req.Header.Set("anthropic-version", anthropic.Version)
	case VendorGemini:
		// The native API reads x-goog-api-key, its OpenAI-compatible
		// endpoint a bearer token: send both.
		req.Header.Set("x-goog-api-key", secret)
		req.Header.Set("Authorization", "Bearer "+secret)
	default:
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	return req, nil
}

// KnownVendor reports whether v is a vendor name the check route accepts.
func KnownVendor(v string) bool {
	return v == "" || v == "all" || slices.Contains([]string{VendorOpenAI, VendorGemini, VendorAnthropic, VendorSiliconFlow, VendorAzure}, v)
}
