package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// load writes files into a fresh work directory and loads from it with vars
// as the process environment.
func load(t *testing.T, files, vars map[string]string, opts Options) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts.WorkDir = dir
	if opts.ConfigFile != "" {
		opts.ConfigFile = filepath.Join(dir, opts.ConfigFile)
	}
	opts.LookupEnv = func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	return Load(opts)
}

func mustLoad(t *testing.T, files, vars map[string]string, opts Options) *Config {
	t.Helper()
	cfg, err := load(t, files, vars, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, nil, nil, Options{})
	want := &Config{
		Listen:          "127.0.0.1:8080",
		DatabaseURL:     "sqlite://./data/keygate.db",
		MaxBodyBytes:    32 << 20,
		UpstreamTimeout: 300 * time.Second,
		ShutdownTimeout: 60 * time.Second,
		LogLevel:        "info",
		KeyPolicy:       keygate.DefaultKeyPolicy(),
		Pacing:          Pacing{MaxQueueWait: 5 * time.Second},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	yaml := map[string]string{"keygate.yaml": "listen: 127.0.0.1:1001\n"}
	tests := []struct {
		name  string
		files map[string]string
		vars  map[string]string
		opts  Options
		want  string
	}{
		{name: "default", want: "127.0.0.1:8080"},
		{name: "yaml over default", files: yaml, want: "127.0.0.1:1001"},
		{
			name:  ".env over yaml",
			files: map[string]string{"keygate.yaml": "listen: 127.0.0.1:1001\n", ".env": "KEYGATE_LISTEN=127.0.0.1:1002\n"},
			want:  "127.0.0.1:1002",
		},
		{
			name:  "env over .env",
			files: map[string]string{"keygate.yaml": "listen: 127.0.0.1:1001\n", ".env": "KEYGATE_LISTEN=127.0.0.1:1002\n"},
			vars:  map[string]string{"KEYGATE_LISTEN": "127.0.0.1:1003"},
			want:  "127.0.0.1:1003",
		},
		{
			name:  "flag over env",
			files: map[string]string{"keygate.yaml": "listen: 127.0.0.1:1001\n", ".env": "KEYGATE_LISTEN=127.0.0.1:1002\n"},
			vars:  map[string]string{"KEYGATE_LISTEN": "127.0.0.1:1003"},
			opts:  Options{Listen: "127.0.0.1:1004"},
			want:  "127.0.0.1:1004",
		},
		{
			name:  "flag over yaml",
			files: yaml,
			opts:  Options{Listen: "127.0.0.1:1004"},
			want:  "127.0.0.1:1004",
		},
		{
			name:  "env over yaml",
			files: yaml,
			vars:  map[string]string{"KEYGATE_LISTEN": "127.0.0.1:1003"},
			want:  "127.0.0.1:1003",
		},
		{
			name:  "empty env falls back to yaml",
			files: yaml,
			vars:  map[string]string{"KEYGATE_LISTEN": ""},
			want:  "127.0.0.1:1001",
		},
		{
			name:  "--config instead of ./keygate.yaml",
			files: map[string]string{"keygate.yaml": "listen: 127.0.0.1:1001\n", "other.yaml": "listen: 127.0.0.1:1005\n"},
			opts:  Options{ConfigFile: "other.yaml"},
			want:  "127.0.0.1:1005",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if cfg := mustLoad(t, tt.files, tt.vars, tt.opts); cfg.Listen != tt.want {
				t.Errorf("Listen = %q, want %q", cfg.Listen, tt.want)
			}
		})
	}
}

func TestDotenvNeverOverridesEnv(t *testing.T) {
	t.Parallel()
	files := map[string]string{".env": "KEYGATE_LOG_LEVEL=debug\nKEYGATE_REDIS_URL=redis://dotenv:6379\n"}
	vars := map[string]string{"KEYGATE_LOG_LEVEL": "warn"}
	cfg := mustLoad(t, files, vars, Options{})
	if cfg.LogLevel != "warn" {
		t.Errorf("LogLevel = %q, want the environment's warn", cfg.LogLevel)
	}
	if cfg.RedisURL != "redis://dotenv:6379" {
		t.Errorf("RedisURL = %q, want the .env value", cfg.RedisURL)
	}
}

// TestEveryField checks that each setting is read from its YAML key and that
// its variable overrides it.
func TestEveryField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml, variable, value string
		get                   func(*Config) any
		fromYAML, fromEnv     any
	}{
		{"listen: 127.0.0.1:9", "KEYGATE_LISTEN", "[::1]:10", func(c *Config) any { return c.Listen }, "127.0.0.1:9", "[::1]:10"},
		{"database_url: postgres://db/a", "KEYGATE_DATABASE_URL", "postgres://db/b", func(c *Config) any { return c.DatabaseURL }, "postgres://db/a", "postgres://db/b"},
		{"redis_url: redis://a:6379", "KEYGATE_REDIS_URL", "redis://b:6379", func(c *Config) any { return c.RedisURL }, "redis://a:6379", "redis://b:6379"},
		{"admin_token: admin-from-yaml", "KEYGATE_ADMIN_TOKEN", "admin-from-env", func(c *Config) any { return c.AdminToken }, "admin-from-yaml", "admin-from-env"},
		{"master_key: master-from-yaml", "KEYGATE_MASTER_KEY", "master-from-env", func(c *Config) any { return c.MasterKey }, "master-from-yaml", "master-from-env"},
		{"jwt_secret: jwt-from-yaml", "KEYGATE_JWT_SECRET", "jwt-from-env", func(c *Config) any { return c.JWTSecret }, "jwt-from-yaml", "jwt-from-env"},
		{"max_body_bytes: 1024", "KEYGATE_MAX_BODY_BYTES", "2048", func(c *Config) any { return c.MaxBodyBytes }, int64(1024), int64(2048)},
		{"upstream_timeout: 90s", "KEYGATE_UPSTREAM_TIMEOUT", "2m", func(c *Config) any { return c.UpstreamTimeout }, 90 * time.Second, 2 * time.Minute},
		{"upstream_client: fasthttp", "KEYGATE_UPSTREAM_CLIENT", "net", func(c *Config) any { return c.UpstreamClient }, "fasthttp", "net"},
		{"log_level: debug", "KEYGATE_LOG_LEVEL", "ERROR", func(c *Config) any { return c.LogLevel }, "debug", "error"},
		{"key_policy: {max_retries: 5}", "", "", func(c *Config) any { return c.KeyPolicy }, policyWith(func(p *keygate.KeyPolicy) { p.MaxRetries = 5 }), nil},
		{"key_policy: {rate_limit_exceeded: {cooldown: 30s}}", "", "", func(c *Config) any { return c.KeyPolicy },
			policyWith(func(p *keygate.KeyPolicy) { p.RateLimit.Cooldown = keygate.Duration(30 * time.Second) }), nil},
		{"key_policy: {}", "", "", func(c *Config) any { return c.KeyPolicy }, keygate.DefaultKeyPolicy(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"keygate.yaml": tt.yaml + "\n"}
			if got := tt.get(mustLoad(t, files, nil, Options{})); !reflect.DeepEqual(got, tt.fromYAML) {
				t.Errorf("from YAML: got %v, want %v", got, tt.fromYAML)
			}
			if tt.variable == "" {
				return
			}
			vars := map[string]string{tt.variable: tt.value}
			if got := tt.get(mustLoad(t, files, vars, Options{})); !reflect.DeepEqual(got, tt.fromEnv) {
				t.Errorf("with %s: got %v, want %v", tt.variable, got, tt.fromEnv)
			}
		})
	}
}

// policyWith is the default key policy with change applied: the fields the
// YAML does not name must keep their defaults.
func policyWith(change func(*keygate.KeyPolicy)) keygate.KeyPolicy {
	p := keygate.DefaultKeyPolicy()
	change(&p)
	return p
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		yaml   string
		dotenv string
		vars   map[string]string
		want   string
	}{
		{name: "from env", yaml: "redis_url: ${R}", vars: map[string]string{"R": "redis://env"}, want: "redis://env"},
		{name: "from .env", yaml: "redis_url: ${R}", dotenv: "R=redis://dotenv", want: "redis://dotenv"},
		{name: "env before .env", yaml: "redis_url: ${R}", dotenv: "R=redis://dotenv", vars: map[string]string{"R": "redis://env"}, want: "redis://env"},
		{name: "inside a string", yaml: `redis_url: "redis://${HOST}:6379/0"`, vars: map[string]string{"HOST": "cache"}, want: "redis://cache:6379/0"},
		{name: "lone $ and $VAR left alone", yaml: `redis_url: "a$ b$R c${"`, vars: map[string]string{"R": "no"}, want: "a$ b$R c${"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"keygate.yaml": tt.yaml + "\n"}
			if tt.dotenv != "" {
				files[".env"] = tt.dotenv + "\n"
			}
			if cfg := mustLoad(t, files, tt.vars, Options{}); cfg.RedisURL != tt.want {
				t.Errorf("RedisURL = %q, want %q", cfg.RedisURL, tt.want)
			}
		})
	}
}

func TestSource(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, map[string]string{"keygate.yaml": ""}, nil, Options{})
	if filepath.Base(cfg.Source) != "keygate.yaml" {
		t.Errorf("Source = %q, want the keygate.yaml read", cfg.Source)
	}
	if cfg := mustLoad(t, nil, nil, Options{}); cfg.Source != "" {
		t.Errorf("Source = %q with no file, want empty", cfg.Source)
	}
}

func TestConfigFileMissing(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, nil, Options{ConfigFile: "missing.yaml"})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("err = %v, want one naming missing.yaml", err)
	}
}

func TestUnknownField(t *testing.T) {
	t.Parallel()
	const model = "models:\n  - model_id: m\n    base_url: http://up\n    api_keys: [sk-aaa]\n"
	tests := []struct{ yaml, want string }{
		{"lisen: 127.0.0.1:1\n", "line 1: lisen: unknown field"},
		{"zero_config: x\n", "zero_config: unknown field"},
		{model + "    retries: 3\n", "line 5: models[0].retries: unknown field"},
		{model + "    id: 7\n", "models[0].id: unknown field"},
		{model + "    key_source: {url: http://k, ttl: 5}\n", "models[0].key_source.ttl: unknown field"},
		{"models:\n  - model_id: m\n    base_url: http://up\n    api_keys: [{key: sk-aaa, wieght: 2}]\n", "models[0].api_keys[0].wieght: unknown field"},
		{"tokens: [{name: a, token: kg-a, owner: me}]\n", "tokens[0].owner: unknown field"},
		{"tokens: [{name: a, token: kg-a, budget: {amount: 1, per: daily}}]\n", "tokens[0].budget.per: unknown field"},
		{"key_policy: {max_retry: 1}\n", "key_policy.max_retry: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, map[string]string{"keygate.yaml": tt.yaml}, nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAPIKeysPlainStrings(t *testing.T) {
	t.Parallel()
	yaml := `models:
  - model_id: a
    base_url: http://up/v1
    api_keys: [sk-aaa, {key: sk-bbb, weight: 2, status: disabled}]
  - model_id: b
    base_url: http://up/v1
    api_keys:
      - sk-ccc
      - key: sk-ddd
`
	cfg := mustLoad(t, map[string]string{"keygate.yaml": yaml}, nil, Options{})
	want := [][]keygate.KeySpec{
		{{Key: "sk-aaa", Status: "enabled"}, {Key: "sk-bbb", Status: "disabled", Weight: 2}},
		{{Key: "sk-ccc", Status: "enabled"}, {Key: "sk-ddd", Status: "enabled"}},
	}
	for i, m := range cfg.Models {
		if !reflect.DeepEqual(m.APIKeys, want[i]) {
			t.Errorf("models[%d].APIKeys = %+v, want %+v", i, m.APIKeys, want[i])
		}
	}
}

func TestModelDefaults(t *testing.T) {
	t.Parallel()
	yaml := `models:
  - model_id: plain
    base_url: https://api.example.com/v1/
    key_source: {url: http://keys/get}
  - model_id: explicit
    provider: anthropic
    status: disabled
    auth_type: bearer
    key_usage_mode: weighted
    base_url: https://api.example.com
    key_source: {url: http://keys/get, method: post, result_field: data, expire_seconds: 60, refresh_before_seconds: 10, timeout_seconds: 2, retries: 1, retry_interval_ms: 5}
`
	cfg := mustLoad(t, map[string]string{"keygate.yaml": yaml}, nil, Options{})
	want := []keygate.Model{
		{
			ModelID: "plain", Provider: "openai", Status: "enabled", AuthType: "api_key", KeyUsageMode: "round_robin",
			BaseURL: "https://api.example.com/v1",
			KeySource: &keygate.KeySource{URL: "http://keys/get", Method: "GET", ResultField: "result",
				ExpireSeconds: 600, RefreshBeforeSeconds: 120, TimeoutSeconds: 10, Retries: 3, RetryIntervalMS: 1000},
		},
		{
			ModelID: "explicit", Provider: "anthropic", Status: "disabled", AuthType: "bearer", KeyUsageMode: "weighted",
			BaseURL: "https://api.example.com",
			KeySource: &keygate.KeySource{URL: "http://keys/get", Method: "POST", ResultField: "data",
				ExpireSeconds: 60, RefreshBeforeSeconds: 10, TimeoutSeconds: 2, Retries: 1, RetryIntervalMS: 5},
		},
	}
	if !reflect.DeepEqual(cfg.Models, want) {
		t.Errorf("Models =\n%+v\nwant\n%+v", cfg.Models, want)
	}
	if cfg.ZeroConfig != nil {
		t.Errorf("ZeroConfig = %+v with models in the YAML, want nil", cfg.ZeroConfig)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	yaml := `tokens:
  - {name: app, token: kg-app-secret, user: ana, models: ["*"], rpm: 600, budget: {amount: 5, period: daily}, expires_at: 2030-01-02T03:04:05Z}
`
	cfg := mustLoad(t, map[string]string{"keygate.yaml": yaml}, nil, Options{})
	want := []keygate.TokenSpec{{
		Name: "app", Token: "kg-app-secret", User: "ana", Models: []string{"*"}, RPM: 600,
		Budget:    &keygate.Budget{Amount: 5, Period: "daily"},
		ExpiresAt: new(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)),
	}}
	if !reflect.DeepEqual(cfg.Tokens, want) {
		t.Errorf("Tokens = %+v, want %+v", cfg.Tokens, want)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const ok = "  - {model_id: ok, base_url: http://up/v1, api_keys: [sk-ok]}\n"
	tests := []struct {
		name string
		yaml string
		vars map[string]string
		opts Options
		want string
	}{
		{name: "base_url", yaml: "models:\n" + ok + "  - {model_id: m, base_url: htp//x, api_keys: [k]}\n",
			want: `models[1].base_url: "htp//x" is not an absolute http(s) URL`},
		{name: "base_url required", yaml: "models:\n  - {model_id: m, api_keys: [k]}\n", want: "models[0].base_url: required"},
		{name: "key_usage_mode", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], key_usage_mode: random}\n",
			want: `models[0].key_usage_mode: "random" must be one of single, round_robin, least_used, weighted`},
		{name: "status", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], status: on}\n",
			want: `models[0].status: "on" must be one of enabled, disabled, inactive`},
		{name: "no keys", yaml: "models:\n  - {model_id: m, base_url: http://up}\n", want: "models[0]: needs api_keys or key_source"},
		{name: "model_id", yaml: "models:\n  - {base_url: http://up, api_keys: [k]}\n", want: "models[0].model_id: required"},
		{name: "empty key", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [{weight: 1}]}\n", want: "models[0].api_keys[0].key: required"},
		{name: "duplicate key", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [sk-a, sk-b, sk-a]}\n",
			want: "models[0].api_keys[2].key: same key as api_keys[0]"},
		{name: "key status", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [{key: k, status: broken}]}\n",
			want: `models[0].api_keys[0].status: "broken" must be one of enabled, disabled`},
		{name: "refresh after expiry", yaml: "models:\n  - {model_id: m, base_url: http://up, key_source: {url: http://k, refresh_before_seconds: 700}}\n",
			want: "models[0].key_source.refresh_before_seconds: 700 must be smaller than expire_seconds (600)"},
		{name: "key_source url", yaml: "models:\n  - {model_id: m, base_url: http://up, key_source: {scene_code: P1}}\n",
			want: "models[0].key_source.url: required"},
		{name: "key_source bad url", yaml: "models:\n  - {model_id: m, base_url: http://up, key_source: {url: '127.0.0.1:4532'}}\n",
			want: `models[0].key_source.url: "127.0.0.1:4532" is not an absolute http(s) URL`},
		{name: "key_source method", yaml: "models:\n  - {model_id: m, base_url: http://up, key_source: {url: http://k, method: put}}\n",
			want: `models[0].key_source.method: "PUT" must be one of GET, POST`},
		{name: "key_source retries", yaml: "models:\n  - {model_id: m, base_url: http://up, key_source: {url: http://k, retries: -1}}\n",
			want: "models[0].key_source.retries: -1 must not be negative"},
		{name: "price", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], input_price: -0.5}\n",
			want: "models[0].input_price: -0.5 must not be negative"},
		{name: "output price", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], output_price: -1}\n",
			want: "models[0].output_price: -1 must not be negative"},
		{name: "rpm", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], rpm: -5}\n", want: "models[0].rpm: -5 must not be negative"},
		{name: "tpm", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], tpm: -5}\n", want: "models[0].tpm: -5 must not be negative"},
		{name: "temperature", yaml: "models:\n  - {model_id: m, base_url: http://up, api_keys: [k], temperature: 3}\n",
			want: "models[0].temperature: 3 must be between 0 and 2"},
		{name: "token required", yaml: "tokens: [{name: app}]\n", want: "tokens[0].token: required"},
		{name: "token name required", yaml: "tokens: [{token: kg-a}]\n", want: "tokens[0].name: required"},
		{name: "duplicate token name", yaml: "tokens: [{name: app, token: kg-a}, {name: app, token: kg-b}]\n",
			want: `tokens[1].name: "app" is already the name of tokens[0]`},
		{name: "duplicate token", yaml: "tokens: [{name: a, token: kg-same}, {name: b, token: kg-same}]\n",
			want: "tokens[1].token: same token as tokens[0]"},
		{name: "token rpm", yaml: "tokens: [{name: a, token: kg-a, rpm: -1}]\n", want: "tokens[0].rpm: -1 must not be negative"},
		{name: "budget period", yaml: "tokens: [{name: a, token: kg-a, budget: {amount: 5, period: weekly}}]\n",
			want: `tokens[0].budget.period: "weekly" must be one of daily, monthly, total`},
		{name: "budget amount", yaml: "tokens: [{name: a, token: kg-a, budget: {amount: -5, period: daily}}]\n",
			want: "tokens[0].budget.amount: -5 must not be negative"},
		{name: "listen", yaml: "listen: nohost\n", want: `listen: "nohost" is not host:port`},
		{name: "listen flag port", opts: Options{Listen: "127.0.0.1:http"}, want: `listen: "127.0.0.1:http": port "http" is not a number`},
		{name: "log_level", yaml: "log_level: loud\n", want: `log_level: "loud" must be one of debug, info, warn, error`},
		{name: "upstream_client", yaml: "upstream_client: curl\n", want: `upstream_client: "curl" must be one of net, fasthttp`},
		{name: "max_body_bytes", yaml: "max_body_bytes: 0\n", want: "max_body_bytes: 0 must be positive"},
		{name: "upstream_timeout", yaml: "upstream_timeout: -1s\n", want: "upstream_timeout: -1s must be positive"},
		{name: "max_retries", yaml: "key_policy: {max_retries: -1}\n", want: "key_policy.max_retries: -1 must not be negative"},
		{name: "cooldown", yaml: "key_policy: {internal_error: {cooldown: -5s}}\n", want: "key_policy.internal_error.cooldown: -5s must not be negative"},
		{name: "disable_after", yaml: "key_policy: {unknown_error: {disable_after: -1}}\n", want: "key_policy.unknown_error.disable_after: -1 must not be negative"},
		{name: "database_url", yaml: "database_url: ''\n", want: "database_url: required"},
		{name: "KEYGATE_MAX_BODY_BYTES", vars: map[string]string{"KEYGATE_MAX_BODY_BYTES": "abc"},
			want: `KEYGATE_MAX_BODY_BYTES: "abc" is not a whole number`},
		{name: "KEYGATE_UPSTREAM_TIMEOUT", vars: map[string]string{"KEYGATE_UPSTREAM_TIMEOUT": "300"},
			want: `KEYGATE_UPSTREAM_TIMEOUT: "300" is not a duration`},
		{name: "LLM_TEMPERATURE", vars: map[string]string{"LLM_MODEL": "m", "LLM_TEMPERATURE": "hot"},
			want: `LLM_TEMPERATURE: "hot" is not a number`},
		{name: "LLM_TEMPERATURE range", vars: map[string]string{"LLM_MODEL": "m", "LLM_TEMPERATURE": "NaN"},
			want: "LLM_TEMPERATURE: NaN must be between 0 and 2"},
		{name: "APIKEY_REFRESH_BEFORE_SECONDS", vars: map[string]string{"APIKEY_SCENE_CODE": "P1", "APIKEY_REFRESH_BEFORE_SECONDS": "700"},
			want: "APIKEY_REFRESH_BEFORE_SECONDS: 700 must be smaller than APIKEY_EXPIRE_SECONDS (600)"},
		{name: "APIKEY_EXPIRE_SECONDS", vars: map[string]string{"APIKEY_SCENE_CODE": "P1", "APIKEY_EXPIRE_SECONDS": "10m"},
			want: `APIKEY_EXPIRE_SECONDS: "10m" is not a whole number`},
		{name: "APIKEY_SERVICE_URL", vars: map[string]string{"APIKEY_SERVICE_URL": "localhost:4532"},
			want: `APIKEY_SERVICE_URL: "localhost:4532" is not an absolute http(s) URL`},
		{name: "LLM_BASE_URL", vars: map[string]string{"LLM_BASE_URL": "api.openai.com/v1"},
			want: `LLM_BASE_URL: "api.openai.com/v1" is not an absolute http(s) URL`},
		{name: "APIKEY_SERVICE_ENABLED", vars: map[string]string{"APIKEY_SERVICE_ENABLED": "maybe"},
			want: `APIKEY_SERVICE_ENABLED: "maybe" must be true or false`},
		{name: "LLM_API_KEY required", vars: map[string]string{"APIKEY_SERVICE_ENABLED": "false"},
			want: "LLM_API_KEY: required when APIKEY_SERVICE_ENABLED is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var files map[string]string
			if tt.yaml != "" {
				files = map[string]string{"keygate.yaml": tt.yaml}
			}
			_, err := load(t, files, tt.vars, tt.opts)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "invalid config: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("err = %q\nwant it to start with \"invalid config: \" and contain %q", msg, tt.want)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	t.Parallel()
	yaml := `listen: nohost
log_level: loud
models:
  - {model_id: m, base_url: htp//x}
tokens: [{name: a}]
`
	vars := map[string]string{"KEYGATE_MAX_BODY_BYTES": "abc"}
	_, err := load(t, map[string]string{"keygate.yaml": yaml}, vars, Options{})
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, want := range []string{"listen:", "log_level:", "models[0].base_url:", "models[0]: needs", "tokens[0].token:", "KEYGATE_MAX_BODY_BYTES:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q\nmissing %q", err, want)
		}
	}
}

func TestYAMLTypeError(t *testing.T) {
	t.Parallel()
	tests := []struct{ yaml, want string }{
		{"max_body_bytes: lots\n", "line 1: cannot unmarshal !!str into int64"},
		{"upstream_timeout: soon\n", "line 1: cannot unmarshal !!str into time.Duration"},
		{"key_policy:\n  rate_limit_exceeded: {cooldown: fast}\n", `line 2: key_policy.rate_limit_exceeded.cooldown: "fast" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, map[string]string{"keygate.yaml": tt.yaml}, nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestZeroConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		vars   map[string]string
		dotenv string
		yaml   string
		want   *keygate.Model
	}{
		{
			name: "service disabled: one fixed key",
			vars: map[string]string{
				"APIKEY_SERVICE_ENABLED": "False", "LLM_API_KEY": "sk-fixed", "LLM_MODEL": "qwen-max",
				"LLM_BASE_URL": "https://llm.example.com/v1/", "LLM_TEMPERATURE": "0.3",
				"APIKEY_SCENE_CODE": "ignored",
			},
			want: &keygate.Model{
				Name: "zero-config", ModelID: "qwen-max", Provider: "openai", Status: "enabled",
				BaseURL: "https://llm.example.com/v1", AuthType: "api_key", KeyUsageMode: "single",
				APIKeys: []keygate.KeySpec{{Key: "sk-fixed", Status: "enabled"}}, Temperature: new(0.3),
			},
		},
		{
			name: "service disabled with 0",
			vars: map[string]string{"APIKEY_SERVICE_ENABLED": "0", "LLM_API_KEY": "sk-fixed"},
			want: &keygate.Model{
				Name: "zero-config", ModelID: "gpt-4", Provider: "openai", Status: "enabled",
				BaseURL: "https://api.openai.com/v1", AuthType: "api_key", KeyUsageMode: "single",
				APIKeys: []keygate.KeySpec{{Key: "sk-fixed", Status: "enabled"}},
			},
		},
		{
			name: "service enabled: key source and backup key",
			vars: map[string]string{
				"APIKEY_SERVICE_ENABLED": "YES", "LLM_API_KEY": "sk-backup", "APIKEY_SERVICE_URL": "http://keys.local/getApikey",
				"APIKEY_SCENE_CODE": "P2025122", "APIKEY_EXPIRE_SECONDS": "900", "APIKEY_REFRESH_BEFORE_SECONDS": "60",
			},
			want: &keygate.Model{
				Name: "zero-config", ModelID: "gpt-4", Provider: "openai", Status: "enabled",
				BaseURL: "https://api.openai.com/v1", AuthType: "api_key", KeyUsageMode: "single",
				APIKeys: []keygate.KeySpec{{Key: "sk-backup", Status: "enabled"}},
				KeySource: &keygate.KeySource{URL: "http://keys.local/getApikey", SceneCode: "P2025122", Method: "GET",
					ResultField: "result", ExpireSeconds: 900, RefreshBeforeSeconds: 60, TimeoutSeconds: 10, Retries: 3, RetryIntervalMS: 1000},
			},
		},
		{
			name:   "service on by default, from .env, no backup key",
			dotenv: "APIKEY_SCENE_CODE=P1\nLLM_MODEL=gpt-4o\n",
			want: &keygate.Model{
				Name: "zero-config", ModelID: "gpt-4o", Provider: "openai", Status: "enabled",
				BaseURL: "https://api.openai.com/v1", AuthType: "api_key", KeyUsageMode: "single",
				KeySource: &keygate.KeySource{URL: "http://127.0.0.1:4532/getApikey", SceneCode: "P1", Method: "GET",
					ResultField: "result", ExpireSeconds: 600, RefreshBeforeSeconds: 120, TimeoutSeconds: 10, Retries: 3, RetryIntervalMS: 1000},
			},
		},
		{
			name: "YAML models win",
			vars: map[string]string{"APIKEY_SERVICE_ENABLED": "false", "LLM_API_KEY": "sk-fixed"},
			yaml: "models: [{model_id: m, base_url: http://up, api_keys: [k]}]\n",
		},
		{name: "no variables"},
		{name: "temperature alone does not switch it on", vars: map[string]string{"LLM_TEMPERATURE": "0.5"}},
		{name: "empty variables do not switch it on", vars: map[string]string{"LLM_API_KEY": "", "LLM_MODEL": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{}
			if tt.dotenv != "" {
				files[".env"] = tt.dotenv
			}
			if tt.yaml != "" {
				files["keygate.yaml"] = tt.yaml
			}
			cfg := mustLoad(t, files, tt.vars, Options{})
			if !reflect.DeepEqual(cfg.ZeroConfig, tt.want) {
				t.Errorf("ZeroConfig =\n%s\nwant\n%s", dump(cfg.ZeroConfig), dump(tt.want))
			}
			if tt.want != nil && cfg.ZeroConfig.UpstreamName() != tt.want.ModelID {
				t.Errorf("UpstreamName = %q, want LLM_MODEL %q", cfg.ZeroConfig.UpstreamName(), tt.want.ModelID)
			}
		})
	}
}

func dump(m *keygate.Model) string {
	if m == nil {
		return "nil"
	}
	s := fmt.Sprintf("%+v", *m)
	if m.KeySource != nil {
		s += fmt.Sprintf(" key_source=%+v", *m.KeySource)
	}
	if m.Temperature != nil {
		s += fmt.Sprintf(" temperature=%v", *m.Temperature)
	}
	return s
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	const secret = "sk-Q7xv9ZpL2mWk4RtY8bNc"
	tests := []struct {
		name  string
		files map[string]string
		vars  map[string]string
	}{
		{
			name:  "key in a number field",
			files: map[string]string{"keygate.yaml": "models: [{model_id: m, base_url: http://up, api_keys: [k], rpm: " + secret + "}]\n"},
		},
		{
			name:  "key with a stray colon",
			files: map[string]string{"keygate.yaml": "models:\n  - model_id: m\n    base_url: http://up\n    api_keys:\n      - " + secret + ":\n"},
		},
		{
			name:  "key in base_url",
			files: map[string]string{"keygate.yaml": "models: [{model_id: m, base_url: '${K}', api_keys: ['${K}']}]\n"},
			vars:  map[string]string{"K": secret},
		},
		{
			name:  "key in a URL's password and query",
			files: map[string]string{"keygate.yaml": "models: [{model_id: m, base_url: 'ftp://u:" + secret + "@up/v1?key=" + secret + "', api_keys: [k]}]\n"},
		},
		{
			name:  "admin token in listen",
			files: map[string]string{"keygate.yaml": "listen: ${KEYGATE_ADMIN_TOKEN}\n"},
			vars:  map[string]string{"KEYGATE_ADMIN_TOKEN": secret},
		},
		{
			name:  "duplicate tokens",
			files: map[string]string{"keygate.yaml": "tokens: [{name: a, token: " + secret + "}, {name: b, token: " + secret + "}]\n"},
		},
		{
			name: "zero-config key as base URL",
			vars: map[string]string{"APIKEY_SERVICE_ENABLED": "false", "LLM_API_KEY": secret, "LLM_BASE_URL": secret},
		},
		{
			name:  "unterminated quote in .env",
			files: map[string]string{".env": "KEYGATE_ADMIN_TOKEN=\"" + secret + "\nOTHER=1\n"},
		},
		{
			name:  "bad variable name in .env",
			files: map[string]string{".env": "BAD-NAME=1\nLLM_API_KEY=" + secret + "\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tt.files, tt.vars, Options{})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			// Any six characters in a row of the secret count as a leak.
			for i := 0; i+6 <= len(secret); i++ {
				if strings.Contains(err.Error(), secret[i:i+6]) {
					t.Fatalf("err = %q\nleaks %q of the secret", err, secret[i:i+6])
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.9.8.7:80", true},
		{"[::1]:8080", true},
		{"::1", true},
		{"localhost:8080", true},
		{"LocalHost:1", true},
		{"localhost", true},
		{"", false},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"example.com:80", false},
		{"localhost.example.com:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			t.Parallel()
			if got := IsLoopback(tt.listen); got != tt.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tt.listen, got, tt.want)
			}
		})
	}
}
