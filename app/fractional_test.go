package app_test

import (
	"fmt"
	"strings"
	"testing"
)

// The admin API refuses a fractional limit with a 400 naming the field,
// rather than truncating it or answering a bare type error.
func TestAdminRefusesFractionalLimits(t *testing.T) {
	g := start(t, baseConfig(t, t.TempDir()))
	model := `{"name":"Mini","model_id":"gpt-4o-mini","base_url":"https://api.openai.com/v1",%s"api_keys":[{"key":"sk-fraction-key-00001"%s}]}`
	tests := []struct{ model, key, field string }{
		{`"rpm":1.5,`, "", "rpm"},
		{`"tpm":2.5,`, "", "tpm"},
		{"", `,"rpm":0.5`, "api_keys.rpm"},
	}
	for _, tt := range tests {
		code, v := jsonCall(t, "POST", g.url+"/api/v1/llm-models", adminToken, fmt.Sprintf(model, tt.model, tt.key))
		msg := fmt.Sprint(v["error"])
		if code != 400 || !strings.Contains(msg, tt.field+": want a whole number") {
			t.Errorf("%s%s: %d %v, want 400 naming %s", tt.model, tt.key, code, v, tt.field)
		}
	}
	code, v := jsonCall(t, "POST", g.url+"/api/v1/tokens", adminToken, `{"name":"frac","models":["*"],"rpm":1.5}`)
	if code != 400 || !strings.Contains(fmt.Sprint(v["error"]), "rpm: want a whole number") {
		t.Errorf("token rpm 1.5: %d %v, want 400 naming rpm", code, v)
	}
}
