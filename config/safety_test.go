package config

import (
	"strings"
	"testing"
)

// Settings that used to start a gateway other than the one the operator
// meant: each is refused, naming what is wrong.
func TestRefusesWhatWouldStartTheWrongGateway(t *testing.T) {
	t.Parallel()
	const models = "models: [{model_id: a, base_url: http://up/v1, api_keys: [sk-a-0123456789]}, {model_id: b, base_url: http://up/v1, api_keys: [sk-b-0123456789]}]\n"
	tests := []struct {
		name string
		yaml string
		vars map[string]string
		want string
	}{
		{"a misspelt variable", "admin_token: ${KEYGATE_ADMIN_TOKN}\n", nil, "${KEYGATE_ADMIN_TOKN} is not set"},
		{"a variable set empty", "redis_url: ${R}\n", map[string]string{"R": ""}, "${R} is not set"},
		{"a short admin token off loopback", "listen: 0.0.0.0:8080\nadmin_token: short-token\n", nil, "admin_token: must be at least 16 characters"},
		{"a fallback to no model", "models: [{model_id: a, base_url: http://up/v1, api_keys: [sk-a-0123456789]}, {model_id: c, base_url: http://up/v1, api_keys: [sk-c-0123456789], fallbacks: [a, gpt-5]}]\n", nil,
			`models[1].fallbacks[1]: "gpt-5" is not a model_id`},
		{"a token for no model", models + "tokens: [{name: app, token: kg-0123456789abcdef, models: [a, gtp-4o]}]\n", nil,
			`tokens[0].models[1]: "gtp-4o" is not a model_id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, map[string]string{"keygate.yaml": tt.yaml}, tt.vars, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	// What stays accepted: a short token on loopback, a set variable, models
	// and fallbacks that exist, and expire_seconds alone.
	ok := models + "admin_token: ${T}\ntokens: [{name: app, token: kg-0123456789abcdef, models: [a, \"*\"]}]\n"
	cfg := mustLoad(t, map[string]string{"keygate.yaml": ok + "listen: 127.0.0.1:1\n"}, map[string]string{"T": "short"}, Options{})
	if cfg.AdminToken != "short" {
		t.Fatalf("admin token %q", cfg.AdminToken)
	}
	cfg = mustLoad(t, map[string]string{"keygate.yaml": "models: [{model_id: a, base_url: http://up/v1, key_source: {url: http://ks/get, scene_code: S, expire_seconds: 60}}]\n"}, nil, Options{})
	if s := cfg.Models[0].KeySource; s.ExpireSeconds != 60 || s.RefreshBeforeSeconds != 12 {
		t.Fatalf("expire_seconds: 60 alone: %+v", s)
	}
}
