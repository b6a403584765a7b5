// Package keygate holds the domain of the gateway: the plain types shared by
// the key pool, the relay, the key sources, the stores and the admin API, and
// the small interfaces through which they talk. It imports only the standard
// library; every dependency lives behind a subpackage.
package keygate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Version is set at build time with -ldflags "-X github.com/keygate/keygate.Version=…".
var Version = "dev"

// Key usage modes (SPEC section 3).
const (
	ModeSingle     = "single"
	ModeRoundRobin = "round_robin"
	ModeLeastUsed  = "least_used"
	ModeWeighted   = "weighted"
)

// Model statuses (SPEC section 3).
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
	StatusInactive = "inactive"
)

// Model is one upstream deployment a client can reach by its ModelID. Several
// Models with the same ModelID form one load-balanced group. The field names
// are the contract's (SPEC section 3); the YAML file and the admin API share them.
type Model struct {
	ID             int64      `json:"id,omitempty" yaml:"-"`
	Name           string     `json:"name,omitempty" yaml:"name"`
	ModelID        string     `json:"model_id" yaml:"model_id"`
	Provider       string     `json:"provider" yaml:"provider"`
	Type           string     `json:"type,omitempty" yaml:"type"`
	Description    string     `json:"description,omitempty" yaml:"description"`
	Status         string     `json:"status,omitempty" yaml:"status"`
	BaseURL        string     `json:"base_url" yaml:"base_url"`
	AuthType       string     `json:"auth_type,omitempty" yaml:"auth_type"`
	KeyUsageMode   string     `json:"key_usage_mode,omitempty" yaml:"key_usage_mode"`
	APIKeys        []KeySpec  `json:"api_keys,omitempty" yaml:"api_keys"`
	KeySource      *KeySource `json:"key_source,omitempty" yaml:"key_source"`
	UpstreamModel  string     `json:"upstream_model,omitempty" yaml:"upstream_model"`
	Fallbacks      []string   `json:"fallbacks,omitempty" yaml:"fallbacks"`
	SupportsVision bool       `json:"supports_vision,omitempty" yaml:"supports_vision"`
	MaxTokens      int        `json:"max_tokens,omitempty" yaml:"max_tokens"`
	ContextWindow  int        `json:"context_window,omitempty" yaml:"context_window"`
	InputPrice     float64    `json:"input_price,omitempty" yaml:"input_price"`
	OutputPrice    float64    `json:"output_price,omitempty" yaml:"output_price"`
	RPM            int        `json:"rpm,omitempty" yaml:"rpm"`
	TPM            int        `json:"tpm,omitempty" yaml:"tpm"`
	// Hedge, if set, sends a slow request a second time on another key
	// (SPEC section 4a).
	Hedge *Hedge `json:"hedge,omitempty" yaml:"hedge"`
	// Temperature is the default temperature applied when a request has none
	// (zero-config mode's LLM_TEMPERATURE). Nil means "leave the request alone".
	Temperature *float64 `json:"temperature,omitempty" yaml:"temperature"`
	// APIVersion is Azure OpenAI's api-version query parameter (provider
	// azure; default 2024-10-21).
	APIVersion string `json:"api_version,omitempty" yaml:"api_version"`
	// Headers are sent to the provider with every call of this deployment
	// (a tenant or routing header the provider needs); they win over any
	// header keygate would forward.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers"`
	// Origin says where the model is declared: OriginConfig (the YAML file or
	// the LLM_* variables, upserted at every start) or OriginAPI.
	Origin string `json:"origin,omitempty" yaml:"-"`
}

// UpstreamName is the model name sent to the provider.
func (m *Model) UpstreamName() string {
	if m.UpstreamModel != "" {
		return m.UpstreamModel
	}
	return m.ModelID
}

// Hedge is a model's hedging: a request with no first byte of an answer
// after AfterMS (0: the key's recent p95 time to first byte) goes a second
// time to another key; extra calls stay within MaxExtraPercent of the
// model's requests over a sliding minute.
type Hedge struct {
	AfterMS         int     `json:"after_ms" yaml:"after_ms"`
	MaxExtraPercent float64 `json:"max_extra_percent" yaml:"max_extra_percent"`
}

// KeySpec is one provider key as configured. Key is the secret in clear and
// must never be logged or returned; use Mask.
type KeySpec struct {
	Key    string `json:"key" yaml:"key"`
	Status string `json:"status,omitempty" yaml:"status"`
	Weight int    `json:"weight,omitempty" yaml:"weight"`
	// RPM and TPM are the provider's limits for this key, if known;
	// keygate paces the key under them (SPEC section 4a).
	RPM int `json:"rpm,omitempty" yaml:"rpm"`
	TPM int `json:"tpm,omitempty" yaml:"tpm"`
}

// Key source types (SPEC section 5): where a credential that expires comes from.
const (
	SourceKeyService        = "key_service"
	SourceCommand           = "command"
	SourceOAuth2            = "oauth2"
	SourceGCPServiceAccount = "gcp_service_account"
)

// KeySource describes where a credential that expires comes from (SPEC
// section 5): a key service (the default), a command, an OAuth 2.0 token
// endpoint or a Google service account. ClientSecret, RefreshToken,
// CredentialsJSON and header values are secrets.
type KeySource struct {
	Type                 string            `json:"type,omitempty" yaml:"type"`
	URL                  string            `json:"url,omitempty" yaml:"url"`
	SceneCode            string            `json:"scene_code,omitempty" yaml:"scene_code"`
	Method               string            `json:"method,omitempty" yaml:"method"`
	ResultField          string            `json:"result_field,omitempty" yaml:"result_field"`
	Headers              map[string]string `json:"headers,omitempty" yaml:"headers"`
	Command              []string          `json:"command,omitempty" yaml:"command"`
	TokenURL             string            `json:"token_url,omitempty" yaml:"token_url"`
	ClientID             string            `json:"client_id,omitempty" yaml:"client_id"`
	ClientSecret         string            `json:"client_secret,omitempty" yaml:"client_secret"`
	Scope                string            `json:"scope,omitempty" yaml:"scope"`
	RefreshToken         string            `json:"refresh_token,omitempty" yaml:"refresh_token"`
	CredentialsFile      string            `json:"credentials_file,omitempty" yaml:"credentials_file"`
	CredentialsJSON      string            `json:"credentials_json,omitempty" yaml:"credentials_json"` // the file's content, for the admin API
	Scopes               []string          `json:"scopes,omitempty" yaml:"scopes"`
	ExpireSeconds        int               `json:"expire_seconds,omitempty" yaml:"expire_seconds"`
	RefreshBeforeSeconds int               `json:"refresh_before_seconds,omitempty" yaml:"refresh_before_seconds"`
	TimeoutSeconds       int               `json:"timeout_seconds,omitempty" yaml:"timeout_seconds"`
	Retries              int               `json:"retries,omitempty" yaml:"retries"`
	RetryIntervalMS      int               `json:"retry_interval_ms,omitempty" yaml:"retry_interval_ms"`
}

// Kind is the source's type, key_service when none is given.
func (s *KeySource) Kind() string {
	if s.Type == "" {
		return SourceKeyService
	}
	return s.Type
}

// Identity names the credential the source hands out, without its secrets:
// two sources with the same identity feed one key. It never changes for a
// key service (URL and scene code), so stored key ids stay valid.
func (s *KeySource) Identity() string {
	switch s.Kind() {
	case SourceCommand:
		return "command\x00" + strings.Join(s.Command, "\x00")
	case SourceOAuth2:
		grant := "client_credentials"
		if s.RefreshToken != "" {
			grant = "refresh_token"
		}
		return "oauth2\x00" + s.TokenURL + "\x00" + s.ClientID + "\x00" + s.Scope + "\x00" + grant
	case SourceGCPServiceAccount:
		var inline struct {
			Email string `json:"client_email"`
			KeyID string `json:"private_key_id"`
		}
		_ = json.Unmarshal([]byte(s.CredentialsJSON), &inline) // the private key stays out
		return "gcp\x00" + s.CredentialsFile + "\x00" + inline.Email + "\x00" + inline.KeyID + "\x00" + strings.Join(s.Scopes, " ")
	}
	return "key_source\x00" + s.URL + "\x00" + s.SceneCode
}

// Bearer reports whether the credential goes upstream as
// "Authorization: Bearer" whatever the provider: OAuth 2.0 and Google access
// tokens are bearer tokens, not a provider's API key.
func (s *KeySource) Bearer() bool {
	k := s.Kind()
	return k == SourceOAuth2 || k == SourceGCPServiceAccount
}

// Secrets lists the secret values the source holds, for masking.
func (s *KeySource) Secrets() []string {
	out := []string{s.ClientSecret, s.RefreshToken, s.CredentialsJSON}
	for _, v := range s.Headers {
		out = append(out, v)
	}
	return out
}

// TokenSpec is a gateway token (SPEC section 6). Token is the secret in clear
// only when declared in the YAML file or when just created.
type TokenSpec struct {
	ID        int64      `json:"id,omitempty" yaml:"-"`
	Name      string     `json:"name" yaml:"name"`
	Token     string     `json:"token,omitempty" yaml:"token"`
	User      string     `json:"user,omitempty" yaml:"user"`
	Models    []string   `json:"models,omitempty" yaml:"models"`
	RPM       int        `json:"rpm,omitempty" yaml:"rpm"`
	TPM       int        `json:"tpm,omitempty" yaml:"tpm"`
	Budget    *Budget    `json:"budget,omitempty" yaml:"budget"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" yaml:"expires_at"`
	// Hash is the hex SHA-256 of the token: all the store ever keeps.
	Hash      string    `json:"-" yaml:"-"`
	CreatedAt time.Time `json:"created_at,omitempty" yaml:"-"`
}

// Budget caps a token's spend in USD over a period: daily, monthly or total.
type Budget struct {
	Amount float64 `json:"amount" yaml:"amount"`
	Period string  `json:"period" yaml:"period"`
}

// AllowsModel reports whether the token may call modelID.
func (t *TokenSpec) AllowsModel(modelID string) bool {
	if len(t.Models) == 0 {
		return true
	}
	for _, m := range t.Models {
		if m == "*" || m == modelID {
			return true
		}
	}
	return false
}

// UsageRecord is one relayed request, as stored (SPEC section 6).
type UsageRecord struct {
	Time             time.Time
	RequestID        string
	User             string
	Token            string // the token's name, never its secret
	Model            string
	UpstreamModel    string
	KeyID            string
	Status           int
	Attempts         int
	PromptTokens     int
	CompletionTokens int
	LatencyMS        int64
	TTFTMS           int64
	Cost             float64
	Stream           bool
	// UsageSource says where the token counts come from: UsageProvider,
	// UsageEstimated or UsagePartial.
	UsageSource string
}

// Where a usage record's token counts come from (SPEC section 6).
const (
	UsageProvider  = "provider"  // reported by the provider
	UsageEstimated = "estimated" // counted by keygate's offline tokenizer
	UsagePartial   = "partial"   // a stream cut before the provider's usage arrived: what was relayed
)

// Mask shows a secret as its first and last four characters (sk-a…wxyz).
// Short secrets are hidden entirely.
func Mask(secret string) string {
	if len(secret) <= 12 {
		return "****"
	}
	return secret[:4] + "…" + secret[len(secret)-4:]
}

// KeyHasher derives a stable, non-reversible id for a key string, so that the
// same key under several models is one key without its clear text being the id.
type KeyHasher struct{ secret []byte }

// NewKeyHasher returns a hasher keyed by secret.
func NewKeyHasher(secret []byte) KeyHasher { return KeyHasher{secret: secret} }

// ID returns the key's id: "k_" and 16 hex characters of HMAC-SHA256.
func (h KeyHasher) ID(key string) string {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(key))
	return "k_" + hex.EncodeToString(m.Sum(nil))[:16]
}

// MaskIn replaces every occurrence of secret in s with its masked form, for
// error text that may echo a key.
func MaskIn(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, Mask(secret))
}
