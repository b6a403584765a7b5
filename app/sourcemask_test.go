package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestKeyServiceURLSecretsMasked: a key service's URL often carries its
// secret in the query (?appSecret=…) or as a password; no answer shows it,
// and an answer sent back as it is keeps the stored URL.
func TestKeyServiceURLSecretsMasked(t *testing.T) {
	const query, password = "ks-app-secret-0000001", "ks-url-password-00001"
	api := newAdminAPI(t)
	body := `{"model_id":"m1","base_url":"http://127.0.0.1:9/v1","key_source":{"url":"http://svc:` + password +
		`@127.0.0.1:4532/getApikey?appSecret=` + query + `&tenant=bank","scene_code":"P1"}}`
	v := api.want(201, "POST", "/api/v1/llm-models", adminToken, body)
	id := fmt.Sprint(v["id"])
	got := api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")
	api.want(200, "GET", "/api/v1/llm-models", adminToken, "")
	api.want(200, "GET", "/api/v1/keys", adminToken, "")
	ks, _ := got["key_source"].(map[string]any)
	u, _ := ks["url"].(string)
	if !strings.Contains(u, "appSecret=") || !strings.Contains(u, "127.0.0.1:4532/getApikey") {
		t.Fatalf("the masked URL must still say where the service is: %q", u)
	}
	// Sent back as GET showed it: the stored URL, secrets and all, stays.
	got["key_source"] = ks
	b, _ := json.Marshal(got)
	api.want(200, "PUT", "/api/v1/llm-models/"+id, adminToken, string(b))
	again := api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")
	if again["key_source"].(map[string]any)["url"] != u {
		t.Fatalf("sending the answer back changed the URL: %v", again["key_source"])
	}
	api.noClearKeys(query, password)
}
