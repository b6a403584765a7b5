package config

import (
	"strings"
	"testing"

	"github.com/keygate/keygate"
)

func TestKeySourceTypes(t *testing.T) {
	model := func(source string) map[string]string {
		return map[string]string{"keygate.yaml": `
models:
  - model_id: gpt-4o
    base_url: https://example.openai.azure.com
    key_source:
` + source}
	}
	t.Run("each type loads with its fields", func(t *testing.T) {
		for _, src := range []string{
			"      type: command\n      command: [vault, read, -field=key, secret/llm]\n      timeout_seconds: 5\n",
			"      type: oauth2\n      token_url: https://login.microsoftonline.com/t/oauth2/v2.0/token\n      client_id: app\n      client_secret: ${ENTRA_SECRET}\n      scope: https://cognitiveservices.azure.com/.default\n",
			"      type: oauth2\n      token_url: https://idp.internal/token\n      client_id: app\n      refresh_token: ${REFRESH}\n",
		} {
			c, err := load(t, model(src), map[string]string{"ENTRA_SECRET": "cs-entra-0123456789", "REFRESH": "rt-0123456789abcdef"}, Options{})
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			s := c.Models[0].KeySource
			if s.Method != "" || s.ResultField != "" || s.TimeoutSeconds == 0 || s.ExpireSeconds != 600 {
				t.Errorf("defaults of %s: %+v", s.Kind(), s)
			}
		}
	})

	tests := []struct{ name, source, want string }{
		{"unknown type", "      type: vault\n", `models[0].key_source.type: "vault" must be one of key_service, command, oauth2, gcp_service_account`},
		{"command without argv", "      type: command\n", "models[0].key_source.command: required"},
		{"a key service field on oauth2", "      type: oauth2\n      token_url: https://idp/token\n      client_id: a\n      client_secret: cs-0123456789abcdef\n      url: https://keys/get\n",
			"models[0].key_source.url: belongs to type key_service, not oauth2"},
		{"oauth2 without a secret", "      type: oauth2\n      token_url: https://idp/token\n      client_id: a\n", "models[0].key_source.client_secret: required"},
		{"gcp without a file", "      type: gcp_service_account\n      credentials_file: /nonexistent/sa.json\n",
			"models[0].key_source.credentials_file: cannot read it: open /nonexistent/sa.json: no such file or directory"},
		{"a secret in the wrong field is masked", "      type: oauth2\n      token_url: cs-0123456789abcdef\n      client_id: a\n      client_secret: cs-0123456789abcdef\n",
			`models[0].key_source.token_url: "` + keygate.Mask("cs-0123456789abcdef") + `" must be an absolute http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, model(tt.source), nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v\nwant %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "cs-0123456789abcdef") {
				t.Errorf("a secret in clear: %v", err)
			}
		})
	}
}
