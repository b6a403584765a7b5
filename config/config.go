// Package config loads keygate's configuration from built-in defaults, a YAML
// file, a .env file, the environment and flags, in that order of precedence
// (SPEC section 1), and validates the result.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/keygate/keygate"
)

// Options are the inputs of Load that do not come from files.
type Options struct {
	ConfigFile string                      // --config flag; "" means ./keygate.yaml in WorkDir if present
	Listen     string                      // --listen flag; "" means not given
	WorkDir    string                      // where ./keygate.yaml and .env are looked for; "" = "."
	LookupEnv  func(string) (string, bool) // the process environment; nil = os.LookupEnv
}

// Config is the loaded, validated configuration. The yaml tags are the keys of
// the YAML file.
type Config struct {
	Listen          string        `yaml:"listen"`           // KEYGATE_LISTEN; --listen
	DatabaseURL     string        `yaml:"database_url"`     // KEYGATE_DATABASE_URL
	RedisURL        string        `yaml:"redis_url"`        // KEYGATE_REDIS_URL
	AdminToken      string        `yaml:"admin_token"`      // KEYGATE_ADMIN_TOKEN
	MasterKey       string        `yaml:"master_key"`       // KEYGATE_MASTER_KEY
	MasterKeyFile   string        `yaml:"master_key_file"`  // KEYGATE_MASTER_KEY_FILE: where the master key is kept (default: beside the database)
	JWTSecret       string        `yaml:"jwt_secret"`       // KEYGATE_JWT_SECRET
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`   // KEYGATE_MAX_BODY_BYTES
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"` // a Go duration, e.g. "90s"; KEYGATE_UPSTREAM_TIMEOUT
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // how long requests in flight may finish after SIGTERM; KEYGATE_SHUTDOWN_TIMEOUT
	LogLevel        string        `yaml:"log_level"`        // debug|info|warn|error; KEYGATE_LOG_LEVEL
	// UpstreamClient is the HTTP client of the calls to providers: net
	// (net/http) or fasthttp; "" is keygate's default. KEYGATE_UPSTREAM_CLIENT
	UpstreamClient string `yaml:"upstream_client"`
	// OTelEndpoint is where traces go over OTLP/HTTP (e.g. http://collector:4318;
	// /v1/traces is added). Empty: OTEL_EXPORTER_OTLP_ENDPOINT, else no traces.
	OTelEndpoint string `yaml:"otel_endpoint"` // KEYGATE_OTEL_ENDPOINT
	// StreamIdleTimeout is how long a provider may send nothing once its
	// answer's headers arrived (a stream between events, a plain answer's
	// body) before keygate gives up on it; 0 means 2 minutes.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`
	// RequestReadTimeout bounds reading a caller's request body; 0 means 60 s.
	RequestReadTimeout time.Duration       `yaml:"request_read_timeout"`
	Tokens             []keygate.TokenSpec `yaml:"tokens"`
	Models             []keygate.Model     `yaml:"models"`
	KeyPolicy          keygate.KeyPolicy   `yaml:"key_policy"` // fields absent from the YAML keep keygate.DefaultKeyPolicy()
	// Pacing keeps keys under their providers' rate limits (SPEC section 4a).
	Pacing Pacing `yaml:"pacing"`

	// ZeroConfig is the model built from the LLM_* / APIKEY_* variables when
	// the YAML declares no models (SPEC "Zero-config mode"); nil when the YAML
	// has models, or when none of LLM_API_KEY, LLM_BASE_URL, LLM_MODEL,
	// APIKEY_SERVICE_ENABLED, APIKEY_SERVICE_URL, APIKEY_SCENE_CODE is set.
	ZeroConfig *keygate.Model `yaml:"-"`
	// Source is the YAML file actually read, "" if none.
	Source string `yaml:"-"`
}

// Pacing is the pacing: block. Pacing is on unless disabled.
type Pacing struct {
	Disabled bool `yaml:"disabled"`
	// MaxQueueWait is how long a request may wait for a key with room
	// before it is answered 503 (a Go duration; default 5s).
	MaxQueueWait time.Duration `yaml:"max_queue_wait"`
}

func defaults() *Config {
	return &Config{
		Listen:          "127.0.0.1:8080",
		DatabaseURL:     "sqlite://./data/keygate.db",
		MaxBodyBytes:    32 << 20,
		UpstreamTimeout: 300 * time.Second,
		ShutdownTimeout: 60 * time.Second,
		LogLevel:        "info",
		KeyPolicy:       keygate.DefaultKeyPolicy(),
		Pacing:          Pacing{MaxQueueWait: 5 * time.Second},
	}
}

// Load builds the configuration. Precedence, lowest to highest: defaults,
// the YAML file, .env in WorkDir (never overriding a variable the process
// environment already has), the environment, flags. A variable set to the
// empty string counts as not set. Load never modifies the process environment.
func Load(opts Options) (*Config, error) {
	dir := cmp.Or(opts.WorkDir, ".")
	dotenv, err := readDotenv(filepath.Join(dir, ".env"))
	if err != nil {
		return nil, err
	}
	lookupEnv := opts.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	get := func(name string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return dotenv[name]
	}

	cfg := defaults()
	path, explicit := opts.ConfigFile, true
	if path == "" {
		path, explicit = filepath.Join(dir, "keygate.yaml"), false
	}
	if err := cfg.readYAML(path, explicit, get); err != nil {
		return nil, err
	}

	var p problems
	cfg.applyEnv(get, &p)
	if opts.Listen != "" {
		cfg.Listen = opts.Listen
	}
	if len(cfg.Models) == 0 {
		cfg.ZeroConfig = zeroConfig(get, &p)
	}
	cfg.applyDefaults()
	cfg.validate(&p)
	if len(p) > 0 {
		return nil, cfg.invalid(p)
	}
	return cfg, nil
}

// readDotenv returns the variables of the .env file at path; none if it does
// not exist.
func readDotenv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .env: %w", err)
	}
	defer f.Close()
	vars, err := godotenv.Parse(f)
	if err != nil {
		// godotenv quotes the rest of the file after the faulty line, which
		// may hold secrets: keep only the reason.
		reason, _, _ := strings.Cut(err.Error(), " near ")
		if strings.HasPrefix(reason, "unterminated quoted value") {
			reason = "unterminated quoted value"
		}
		return nil, fmt.Errorf("invalid config: %s: %s", path, reason)
	}
	return vars, nil
}

func (c *Config) applyEnv(get func(string) string, p *problems) {
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"KEYGATE_LISTEN", &c.Listen},
		{"KEYGATE_DATABASE_URL", &c.DatabaseURL},
		{"KEYGATE_REDIS_URL", &c.RedisURL},
		{"KEYGATE_ADMIN_TOKEN", &c.AdminToken},
		{"KEYGATE_MASTER_KEY", &c.MasterKey},
		{"KEYGATE_MASTER_KEY_FILE", &c.MasterKeyFile},
		{"KEYGATE_JWT_SECRET", &c.JWTSecret},
		{"KEYGATE_LOG_LEVEL", &c.LogLevel},
		{"KEYGATE_OTEL_ENDPOINT", &c.OTelEndpoint},
		{"KEYGATE_UPSTREAM_CLIENT", &c.UpstreamClient},
	} {
		if s := get(v.name); s != "" {
			*v.dst = s
		}
	}
	if s := get("KEYGATE_MAX_BODY_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			p.add("KEYGATE_MAX_BODY_BYTES", "%q is not a whole number", s)
		} else {
			c.MaxBodyBytes = n
		}
	}
	if s := get("KEYGATE_SHUTDOWN_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			p.add("KEYGATE_SHUTDOWN_TIMEOUT", "%q is not a duration such as 60s or 2m", s)
		} else {
			c.ShutdownTimeout = d
		}
	}
	if s := get("KEYGATE_UPSTREAM_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			p.add("KEYGATE_UPSTREAM_TIMEOUT", "%q is not a duration such as 90s or 5m", s)
		} else {
			c.UpstreamTimeout = d
		}
	}
}

func (c *Config) applyDefaults() {
	c.LogLevel = strings.ToLower(c.LogLevel)
	for i := range c.Models {
		modelDefaults(&c.Models[i])
	}
	if c.ZeroConfig != nil {
		modelDefaults(c.ZeroConfig)
	}
}

func modelDefaults(m *keygate.Model) {
	m.Status = cmp.Or(m.Status, keygate.StatusEnabled)
	m.Provider = cmp.Or(m.Provider, "openai")
	m.AuthType = cmp.Or(m.AuthType, "api_key")
	m.KeyUsageMode = cmp.Or(m.KeyUsageMode, keygate.ModeRoundRobin)
	m.BaseURL = strings.TrimRight(m.BaseURL, "/")
	for i := range m.APIKeys {
		m.APIKeys[i].Status = cmp.Or(m.APIKeys[i].Status, keygate.StatusEnabled)
	}
	if s := m.KeySource; s != nil {
		if s.Kind() == keygate.SourceKeyService {
			s.Method = cmp.Or(strings.ToUpper(s.Method), "GET")
			s.ResultField = cmp.Or(s.ResultField, "result")
		}
		s.ExpireSeconds = cmp.Or(s.ExpireSeconds, 600)
		if s.RefreshBeforeSeconds == 0 && s.ExpireSeconds > 0 {
			// A fifth of a short lifetime, as keysource does, so that
			// expire_seconds: 60 alone is valid.
			s.RefreshBeforeSeconds = min(120, s.ExpireSeconds/5)
		}
		s.TimeoutSeconds = cmp.Or(s.TimeoutSeconds, 10)
		s.Retries = cmp.Or(s.Retries, 3)
		s.RetryIntervalMS = cmp.Or(s.RetryIntervalMS, 1000)
	}
}
