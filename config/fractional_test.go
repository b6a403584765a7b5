package config

import (
	"strings"
	"testing"
)

// A limit is a whole number: a fractional one is refused naming the field
// and its line, not truncated nor reported as a bare type error.
func TestFractionalLimitsRefused(t *testing.T) {
	t.Parallel()
	model := "models:\n  - model_id: gpt-4o-mini\n    base_url: https://api.openai.com/v1\n"
	tests := []struct{ yaml, want string }{
		{model + "    rpm: 1.5\n    api_keys: [sk-test-key-0000000001]\n", "line 4: models[0].rpm: 1.5 is not a whole number"},
		{model + "    tpm: 2.5\n    api_keys: [sk-test-key-0000000001]\n", "line 4: models[0].tpm: 2.5 is not a whole number"},
		{model + "    api_keys:\n      - key: sk-test-key-0000000001\n        rpm: 0.5\n", "line 6: models[0].api_keys[0].rpm: 0.5 is not a whole number"},
		{"tokens:\n  - name: app\n    token: kg-app-test-secret-000001\n    rpm: 10.25\n", "line 4: tokens[0].rpm: 10.25 is not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, map[string]string{"keygate.yaml": tt.yaml}, nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
