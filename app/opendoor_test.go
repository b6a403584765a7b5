package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/secret"
	"github.com/keygate/keygate/store"
)

// TestNoOpenDoorAtRuntime is the sequence that opened a gateway on
// 0.0.0.0: login users and one gateway token, no admin token, and an admin
// revokes the token. The door stays shut, and the last credential cannot
// be removed.
func TestNoOpenDoorAtRuntime(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir)
	cfg.AdminToken, cfg.Listen = "", "0.0.0.0:0"
	db, err := store.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := secret.HashPassword("root-password")
	if err := db.CreateUser(context.Background(), &keygate.User{Username: "root", Role: keygate.RoleAdmin, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	g := start(t, cfg)

	code, v := jsonCall(t, "POST", g.url+"/api/v1/auth/login", "", `{"username":"root","password":"root-password"}`)
	root, _ := v["token"].(string)
	if code != 200 || root == "" {
		t.Fatalf("login: %d %v", code, v)
	}
	code, v = jsonCall(t, "GET", g.url+"/api/v1/tokens", root, "")
	data, _ := v["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("tokens: %d %v", code, v)
	}
	id := fmt.Sprint(data[0].(map[string]any)["id"])
	if resp, b := call(t, "DELETE", g.url+"/api/v1/tokens/"+id, root, ""); resp.StatusCode != 204 {
		t.Fatalf("revoking the token while a user remains: %d %s", resp.StatusCode, b)
	}

	// No credential now opens nothing.
	for _, path := range []string{"/api/v1/keys", "/api/v1/users", "/v1/models"} {
		req, _ := http.NewRequest("GET", g.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("GET %s with no credential after the last token was revoked: %d, want 401", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", g.url+"/api/v1/users", strings.NewReader(`{"username":"eve","password":"eve-password","role":"admin"}`))
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
		t.Fatalf("creating an admin with no credential: %d, want 401", resp.StatusCode)
	}

	// The last user is the last way in: it cannot be deleted.
	code, v = jsonCall(t, "GET", g.url+"/api/v1/users", root, "")
	users, _ := v["data"].([]any)
	uid := fmt.Sprint(users[0].(map[string]any)["id"])
	if code, v := jsonCall(t, "DELETE", g.url+"/api/v1/users/"+uid, root, ""); code != 409 || !strings.Contains(errorMessage(v), "last credential") {
		t.Fatalf("deleting the last credential off loopback: %d %v, want 409", code, v)
	}
	if code, _ := jsonCall(t, "GET", g.url+"/api/v1/keys", root, ""); code != 200 {
		t.Fatalf("the admin must still get in: %d", code)
	}
}
