package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAuditTrailOfAnAdminSession scripts an admin session and reads its
// trail back through GET /api/v1/audit: who did what to which object from
// where, logins and failed logins included, and never a secret.
func TestAuditTrailOfAnAdminSession(t *testing.T) {
	const key = "sk-audited-key-000000001"
	g := start(t, baseConfig(t, t.TempDir()))
	must := func(code int, v map[string]any) map[string]any {
		t.Helper()
		if code >= 300 && !(code == 401 && v != nil && strings.Contains(errorMessage(v), "invalid username or password")) {
			t.Fatalf("status %d: %v", code, v)
		}
		return v
	}
	must(jsonCall(t, "POST", g.url+"/api/v1/users", adminToken, `{"username":"root","password":"root-password","role":"admin"}`))
	must(jsonCall(t, "POST", g.url+"/api/v1/auth/login", "", `{"username":"root","password":"wrong-password"}`))
	v := must(jsonCall(t, "POST", g.url+"/api/v1/auth/login", "", `{"username":"root","password":"root-password"}`))
	root := v["token"].(string)
	m := must(jsonCall(t, "POST", g.url+"/api/v1/llm-models", root, `{"model_id":"gpt-4o-mini","base_url":"http://127.0.0.1:9/v1","api_keys":[{"key":"`+key+`"}]}`))
	id := fmt.Sprint(m["id"])
	keys := must(jsonCall(t, "GET", g.url+"/api/v1/keys", root, ""))
	kid := keys["data"].([]any)[0].(map[string]any)["id"].(string)
	must(jsonCall(t, "PATCH", g.url+"/api/v1/keys/"+kid, root, `{"status":"disabled"}`))
	must(jsonCall(t, "DELETE", g.url+"/api/v1/llm-models/"+id, adminToken, ""))

	want := []string{ // oldest first
		"admin users.create ",
		"root login.failed ",
		"user:root login ",
		"user:root llm-models.create ",
		"user:root keys.update " + kid,
		"admin llm-models.delete " + id,
	}
	var got []string
	var raw string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, b := call(t, "GET", g.url+"/api/v1/audit", adminToken, "")
		raw = string(b)
		_, v := jsonCall(t, "GET", g.url+"/api/v1/audit", adminToken, "")
		got = got[:0]
		entries, _ := v["data"].([]any)
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i].(map[string]any)
			if e["source"] != "127.0.0.1" || e["time"] == nil {
				t.Fatalf("entry without its source address or time: %v", e)
			}
			got = append(got, fmt.Sprintf("%s %s %s", e["actor"], e["action"], e["target"]))
		}
		if resp.StatusCode == 200 && len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{key, "root-password", "wrong-password", adminToken, root} {
		if strings.Contains(raw, s) {
			t.Fatalf("the audit log holds a secret: %s", raw)
		}
	}
	_, v = jsonCall(t, "GET", g.url+"/api/v1/audit?actor=user:root&action=login", adminToken, "")
	if n := len(v["data"].([]any)); n != 1 {
		t.Fatalf("filter by actor and action: %d entries, want 1: %v", n, v)
	}
}
