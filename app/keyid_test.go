package app_test

import (
	"encoding/json"
	"testing"

	"github.com/keygate/keygate"
)

// keyID is the id GET /api/v1/keys gives the key secret: what
// X-Keygate-Key carries.
func keyID(t *testing.T, url, adminToken, secret string) string {
	t.Helper()
	resp, b := call(t, "GET", url+"/api/v1/keys", adminToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("keys: %d %s", resp.StatusCode, b)
	}
	var v struct{ Data []map[string]any }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range v.Data {
		if k["masked"] == keygate.Mask(secret) {
			return k["id"].(string)
		}
	}
	t.Fatalf("no key %s", keygate.Mask(secret))
	return ""
}
