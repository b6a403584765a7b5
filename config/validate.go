package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// failureClasses are the classes key_policy has a cooldown rule for.
var failureClasses = []string{
	"authentication_error", "permission_denied", "insufficient_quota", "rate_limit_exceeded",
	"service_unavailable", "internal_error", "unknown_error",
}

// problems collects every validation failure, each as "path: reason".
type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

func (p *problems) oneOf(path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(path, "%q must be one of %s", v, strings.Join(allowed, ", "))
	}
}

func notNegative[T int | float64 | time.Duration](p *problems, path string, v T) {
	if v < 0 {
		p.add(path, "%v must not be negative", v)
	}
}

func (p *problems) httpURL(path, s string) {
	if s == "" {
		p.add(path, "required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path, "%q is not an absolute http(s) URL", showURL(s))
	}
}

// showURL drops a URL's password and query, where credentials travel, before
// the URL goes into an error message.
func showURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

func (c *Config) validate(p *problems) {
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "%q is not host:port", c.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add("listen", "%q: port %q is not a number from 0 to 65535", c.Listen, port)
	}
	if c.DatabaseURL == "" {
		p.add("database_url", "required")
	}
	if c.MaxBodyBytes <= 0 {
		p.add("max_body_bytes", "%d must be positive", c.MaxBodyBytes)
	}
	if c.UpstreamTimeout <= 0 {
		p.add("upstream_timeout", "%s must be positive", c.UpstreamTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		p.add("shutdown_timeout", "%s must be positive", c.ShutdownTimeout)
	}
	notNegative(p, "stream_idle_timeout", c.StreamIdleTimeout)
	notNegative(p, "request_read_timeout", c.RequestReadTimeout)
	p.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	if c.UpstreamClient != "" {
		p.oneOf("upstream_client", c.UpstreamClient, "net", "fasthttp")
	}
	notNegative(p, "key_policy.max_retries", c.KeyPolicy.MaxRetries)
	notNegative(p, "key_policy.network_retries", c.KeyPolicy.NetworkRetries)
	for _, class := range failureClasses {
		rule, _ := c.KeyPolicy.ForClass(class)
		at := "key_policy." + class
		notNegative(p, at+".cooldown", time.Duration(rule.Cooldown))
		notNegative(p, at+".max_cooldown", time.Duration(rule.MaxCooldown))
		notNegative(p, at+".disable_after", rule.DisableAfter)
	}

	c.validateTokens(p)
	for i := range c.Models {
		prefix := fmt.Sprintf("models[%d]", i)
		name := func(field string) string { return join(prefix, field) }
		validateModel(p, &c.Models[i], name)
		needsKeys(p, &c.Models[i], name)
	}
	if c.ZeroConfig != nil {
		validateModel(p, c.ZeroConfig, zeroConfigName)
		needsKeys(p, c.ZeroConfig, zeroConfigName)
	}
	c.validateReferences(p)
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminToken && !IsLoopback(c.Listen) {
		p.add("admin_token", "must be at least %d characters on a non-loopback address (%s)", MinAdminToken, c.Listen)
	}
}

// MinAdminToken is the shortest admin_token accepted off loopback.
const MinAdminToken = 16

// validateReferences refuses fallbacks and token models naming a model the
// file does not declare: a typo there would fail over to nothing, or lock
// a token out of the model it was made for. Only a file that declares its
// models is checked; models added through the API live in the store.
func (c *Config) validateReferences(p *problems) {
	if len(c.Models) == 0 {
		return
	}
	ids := map[string]bool{}
	for _, m := range c.Models {
		ids[m.ModelID] = true
	}
	for i, m := range c.Models {
		for j, fb := range m.Fallbacks {
			if !ids[fb] {
				p.add(fmt.Sprintf("models[%d].fallbacks[%d]", i, j), "%q is not a model_id declared in models", fb)
			}
		}
	}
	for i, t := range c.Tokens {
		for j, m := range t.Models {
			if m != "*" && !ids[m] {
				p.add(fmt.Sprintf("tokens[%d].models[%d]", i, j), "%q is not a model_id declared in models", m)
			}
		}
	}
}

// needsKeys requires a model declared in the configuration to have a key:
// there is no other place to add one from.
func needsKeys(p *problems, m *keygate.Model, name func(string) string) {
	if len(m.APIKeys) == 0 && m.KeySource == nil {
		p.add(name(""), "needs api_keys or key_source")
	}
}

// ModelProblems fills in the defaults of a models: entry and checks m the
// way the YAML file's models are checked, returning every problem as
// "field: reason". A model without keys passes: the admin API lets keys be
// added to it afterwards. Secrets in the answer are masked.
func ModelProblems(m *keygate.Model) []string {
	modelDefaults(m)
	var p problems
	validateModel(&p, m, func(field string) string { return field })
	c := Config{Models: []keygate.Model{*m}}
	for i := range p {
		p[i] = c.mask(p[i])
	}
	return p
}

func (c *Config) validateTokens(p *problems) {
	names := make(map[string]int)
	secrets := make(map[string]int)
	for i, t := range c.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			p.add(at+".name", "required")
		} else if j, dup := names[t.Name]; dup {
			p.add(at+".name", "%q is already the name of tokens[%d]", t.Name, j)
		} else {
			names[t.Name] = i
		}
		if t.Token == "" {
			p.add(at+".token", "required")
		} else if j, dup := secrets[t.Token]; dup {
			p.add(at+".token", "same token as tokens[%d]", j)
		} else {
			secrets[t.Token] = i
		}
		notNegative(p, at+".rpm", t.RPM)
		notNegative(p, at+".tpm", t.TPM)
		if b := t.Budget; b != nil {
			notNegative(p, at+".budget.amount", b.Amount)
			p.oneOf(at+".budget.period", b.Period, "daily", "monthly", "total")
		}
	}
}

// validateModel checks one model; name turns a field path of the model into
// the name the operator knows it by.
func validateModel(p *problems, m *keygate.Model, name func(string) string) {
	if m.ModelID == "" {
		p.add(name("model_id"), "required")
	}
	p.httpURL(name("base_url"), m.BaseURL)
	p.oneOf(name("status"), m.Status, keygate.StatusEnabled, keygate.StatusDisabled, keygate.StatusInactive)
	p.oneOf(name("key_usage_mode"), m.KeyUsageMode, keygate.ModeSingle, keygate.ModeRoundRobin, keygate.ModeLeastUsed, keygate.ModeWeighted)
	notNegative(p, name("input_price"), m.InputPrice)
	notNegative(p, name("output_price"), m.OutputPrice)
	notNegative(p, name("rpm"), m.RPM)
	notNegative(p, name("tpm"), m.TPM)
	notNegative(p, name("max_tokens"), m.MaxTokens)
	notNegative(p, name("context_window"), m.ContextWindow)
	if h := m.Hedge; h != nil {
		notNegative(p, name("hedge.after_ms"), h.AfterMS)
		if !(h.MaxExtraPercent >= 0 && h.MaxExtraPercent <= 100) {
			p.add(name("hedge.max_extra_percent"), "%v must be between 0 and 100", h.MaxExtraPercent)
		}
	}
	if t := m.Temperature; t != nil && !(*t >= 0 && *t <= 2) {
		p.add(name("temperature"), "%v must be between 0 and 2", *t)
	}

	seen := make(map[string]int)
	for j, k := range m.APIKeys {
		at := fmt.Sprintf("api_keys[%d]", j)
		if k.Key == "" {
			p.add(name(at+".key"), "required")
		} else if first, dup := seen[k.Key]; dup {
			p.add(name(at+".key"), "same key as api_keys[%d]", first)
		} else {
			seen[k.Key] = j
		}
		p.oneOf(name(at+".status"), k.Status, keygate.StatusEnabled, keygate.StatusDisabled)
		notNegative(p, name(at+".weight"), k.Weight)
		notNegative(p, name(at+".rpm"), k.RPM)
		notNegative(p, name(at+".tpm"), k.TPM)
	}

	s := m.KeySource
	if s == nil {
		return
	}
	if s.Kind() == keygate.SourceKeyService {
		p.httpURL(name("key_source.url"), s.URL)
		p.oneOf(name("key_source.method"), s.Method, "GET", "POST")
	}
	sourceTypeProblems(p, s, name)
	if s.ExpireSeconds <= 0 {
		p.add(name("key_source.expire_seconds"), "%d must be positive", s.ExpireSeconds)
	}
	notNegative(p, name("key_source.refresh_before_seconds"), s.RefreshBeforeSeconds)
	if s.ExpireSeconds > 0 && s.RefreshBeforeSeconds >= s.ExpireSeconds {
		expire := name("key_source.expire_seconds")
		expire = expire[strings.LastIndex(expire, ".")+1:]
		p.add(name("key_source.refresh_before_seconds"), "%d must be smaller than %s (%d)",
			s.RefreshBeforeSeconds, expire, s.ExpireSeconds)
	}
	if s.TimeoutSeconds <= 0 {
		p.add(name("key_source.timeout_seconds"), "%d must be positive", s.TimeoutSeconds)
	}
	notNegative(p, name("key_source.retries"), s.Retries)
	notNegative(p, name("key_source.retry_interval_ms"), s.RetryIntervalMS)
}

// invalid turns the problems into one error, with every secret the
// configuration holds masked in case a value was put in the wrong field.
func (c *Config) invalid(p problems) error {
	return errors.New(c.mask("invalid config: " + strings.Join(p, "\n")))
}

// mask hides every secret the configuration holds inside msg.
func (c *Config) mask(msg string) string {
	for _, s := range c.secrets() {
		// Very short values would mask ordinary words; no real secret is that short.
		if len(s) >= 8 {
			msg = keygate.MaskIn(msg, s)
		}
	}
	return msg
}

func (c *Config) secrets() []string {
	s := []string{c.AdminToken, c.MasterKey, c.JWTSecret}
	for _, t := range c.Tokens {
		s = append(s, t.Token)
	}
	models := c.Models
	if c.ZeroConfig != nil {
		models = append(slices.Clip(models), *c.ZeroConfig)
	}
	for _, m := range models {
		for _, k := range m.APIKeys {
			s = append(s, k.Key)
		}
		if m.KeySource != nil {
			s = append(s, m.KeySource.Secrets()...)
		}
	}
	return s
}

// IsLoopback reports whether listen (host:port, or a bare host) binds only to
// the loopback interface: 127.0.0.0/8, ::1 or localhost. An empty host means
// every interface.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
