package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/secret"
	"golang.org/x/crypto/bcrypt"
)

func init() { secret.PasswordCost = bcrypt.MinCost }

const (
	adminToken = "kg-admin-test-secret"
	appToken   = "kg-app-test-secret"
)

// adminAPI is a gateway built by app.New with a fake clock, and every
// answer it gave, to check that none holds a key in clear.
type adminAPI struct {
	t     *testing.T
	url   string
	clock *clockwork.FakeClock

	mu      sync.Mutex
	answers []string
}

func newAdminAPI(t *testing.T) *adminAPI {
	t.Helper()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	a, err := app.New(context.Background(), baseConfig(t, t.TempDir()),
		app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Store().Close() })
	return &adminAPI{t: t, url: srv.URL, clock: clock}
}

// do sends a request and decodes the JSON answer.
func (a *adminAPI) do(method, path, token, body string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.mu.Lock()
	a.answers = append(a.answers, string(b))
	a.mu.Unlock()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		a.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, b)
	}
	return resp.StatusCode, v
}

// want sends a request and fails unless the status is as expected.
func (a *adminAPI) want(status int, method, path, token, body string) map[string]any {
	a.t.Helper()
	got, v := a.do(method, path, token, body)
	if got != status {
		a.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, v)
	}
	return v
}

// noClearKeys fails if any answer so far contains one of secrets.
func (a *adminAPI) noClearKeys(secrets ...string) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ans := range a.answers {
		for _, s := range secrets {
			if strings.Contains(ans, s) {
				a.t.Errorf("an answer holds %q in clear: %s", s, ans)
			}
		}
	}
}

func errorMessage(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (a *adminAPI) login(user, password string) string {
	a.t.Helper()
	v := a.want(200, "POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, password))
	tok, _ := v["token"].(string)
	if tok == "" || v["expires_at"] == nil {
		a.t.Fatalf("login answer: %v", v)
	}
	return tok
}

const fullModelBody = `{
  "name": "GPT-4 Turbo", "model_id": "gpt-4-turbo", "provider": "openai",
  "type": "生文", "description": "best", "status": "enabled",
  "base_url": "https://api.openai.com/v1", "auth_type": "api_key",
  "key_usage_mode": "round_robin",
  "api_keys": [{"key": "sk-turbo-key-one-000001", "status": "enabled"}, {"key": "sk-turbo-key-two-000002", "status": "disabled"}],
  "key_source": {"url": "http://127.0.0.1:4532/getApikey", "scene_code": "P2025122",
                 "expire_seconds": 600, "refresh_before_seconds": 120, "headers": {"X-Auth": "ks-header-secret-0001"}},
  "upstream_model": "gpt-4-turbo-2024-04-09",
  "fallbacks": ["gpt-4o"],
  "supports_vision": true, "max_tokens": 4096, "context_window": 128000,
  "input_price": 10.0, "output_price": 30.0,
  "rpm": 600, "tpm": 200000
}`

var modelSecrets = []string{"sk-turbo-key-one-000001", "sk-turbo-key-two-000002", "ks-header-secret-0001"}

func TestAdminAuth(t *testing.T) {
	api := newAdminAPI(t)
	api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"root","password":"root-password","role":"admin"}`)
	api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"alice","password":"alice-password","role":"user"}`)
	adminJWT := api.login("root", "root-password")
	userJWT := api.login("alice", "alice-password")

	routes := []struct{ method, path, body string }{
		{"POST", "/api/v1/llm-models", fullModelBody},
		{"GET", "/api/v1/llm-models", ""},
		{"GET", "/api/v1/llm-models/1", ""},
		{"PUT", "/api/v1/llm-models/1", `{"status":"enabled"}`},
		{"POST", "/api/v1/llm-models/1/keys", `{"keys":["sk-added-by-test-000001"]}`},
		{"DELETE", "/api/v1/llm-models/999", ""},
		{"GET", "/api/v1/keys", ""},
		{"PATCH", "/api/v1/keys/k_nope", `{"status":"disabled"}`},
		{"DELETE", "/api/v1/keys/k_nope", ""},
		{"POST", "/api/v1/users", `{"username":"bob","password":"bob-password"}`},
		{"GET", "/api/v1/users", ""},
		{"DELETE", "/api/v1/users/999", ""},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			for _, c := range []struct {
				name, token string
				status      int
			}{
				{"no credential", "", 401},
				{"unknown token", "kg-not-a-token", 401},
				{"gateway token", appToken, 403},
				{"user's login token", userJWT, 403},
				{"forged login token", adminJWT[:len(adminJWT)-3] + "abc", 401},
			} {
				if got, v := api.do(r.method, r.path, c.token, r.body); got != c.status {
					t.Errorf("%s: status %d, want %d: %v", c.name, got, c.status, v)
				}
			}
			for _, tok := range []string{adminToken, adminJWT} {
				if got, v := api.do(r.method, r.path, tok, r.body); got == 401 || got == 403 || got >= 500 {
					t.Errorf("admin credential refused: %d %v", got, v)
				}
			}
		})
	}

	t.Run("expired login token", func(t *testing.T) {
		api.clock.Advance(24*time.Hour + time.Minute)
		got, v := api.do("GET", "/api/v1/llm-models", adminJWT, "")
		if got != 401 || !strings.Contains(errorMessage(v), "expired") {
			t.Fatalf("a login token past its 24 h: %d %v, want 401 saying expired", got, v)
		}
		fresh := api.login("root", "root-password")
		api.want(200, "GET", "/api/v1/llm-models", fresh, "")
	})

	t.Run("deleted user", func(t *testing.T) {
		tok := api.login("root", "root-password")
		users := api.want(200, "GET", "/api/v1/users", adminToken, "")["data"].([]any)
		var id float64
		for _, u := range users {
			if u.(map[string]any)["username"] == "root" {
				id = u.(map[string]any)["id"].(float64)
			}
		}
		api.want(200, "DELETE", fmt.Sprintf("/api/v1/users/%d", int(id)), adminToken, "")
		if got, _ := api.do("GET", "/api/v1/llm-models", tok, ""); got != 401 {
			t.Fatalf("the login token of a deleted user: %d, want 401", got)
		}
	})
	api.noClearKeys(append(modelSecrets, "sk-added-by-test-000001", "root-password", "alice-password")...)
}

func TestLogin(t *testing.T) {
	api := newAdminAPI(t)
	api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"root","password":"root-password","role":"admin"}`)
	for _, c := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"wrong password", `{"username":"root","password":"wrong-password"}`, 401, "invalid username or password"},
		{"unknown user", `{"username":"nobody","password":"root-password"}`, 401, "invalid username or password"},
		{"missing fields", `{}`, 400, "username: required; password: required"},
		{"not JSON", `username=root`, 400, "not valid JSON"},
		{"unknown field", `{"username":"root","password":"root-password","otp":"1"}`, 400, "otp: unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, v := api.do("POST", "/api/v1/auth/login", "", c.body)
			if got != c.status || !strings.Contains(errorMessage(v), c.want) {
				t.Fatalf("%d %v, want %d with %q", got, v, c.status, c.want)
			}
		})
	}
	tok := api.login("root", "root-password")
	if c, err := secret.NewSigner([]byte("x"), time.Hour, time.Now).Verify(tok); err == nil {
		t.Fatalf("a login token must not verify under another key: %+v", c)
	}
}

func TestUsersAPI(t *testing.T) {
	api := newAdminAPI(t)
	u := api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"alice","password":"alice-password","role":"admin"}`)
	if u["username"] != "alice" || u["role"] != "admin" || u["id"] == nil || u["created_at"] == nil {
		t.Fatalf("created user: %v", u)
	}
	if u := api.want(201, "POST", "/api/v1/users", adminToken, `{"username":"bob","password":"bob-password"}`); u["role"] != "user" {
		t.Fatalf("role defaults to user: %v", u)
	}
	v := api.want(409, "POST", "/api/v1/users", adminToken, `{"username":"alice","password":"other-password"}`)
	if !strings.Contains(errorMessage(v), "taken") {
		t.Errorf("duplicate: %v", v)
	}
	v = api.want(400, "POST", "/api/v1/users", adminToken, `{"username":"","password":"short","role":"root"}`)
	for _, field := range []string{"username:", "password: at least 8", "role: must be admin or user"} {
		if !strings.Contains(errorMessage(v), field) {
			t.Errorf("validation must name %q: %s", field, errorMessage(v))
		}
	}
	v = api.want(400, "POST", "/api/v1/users", adminToken, `{"username":"carol","password":"`+strings.Repeat("x", 73)+`"}`)
	if !strings.Contains(errorMessage(v), "password: at most 72 bytes") {
		t.Errorf("long password: %v", v)
	}
	list := api.want(200, "GET", "/api/v1/users", adminToken, "")["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("users: %v", list)
	}
	for _, x := range list {
		if _, ok := x.(map[string]any)["password_hash"]; ok {
			t.Fatal("a password hash is answered")
		}
	}
	api.want(200, "DELETE", fmt.Sprintf("/api/v1/users/%v", u["id"]), adminToken, "")
	api.want(404, "DELETE", fmt.Sprintf("/api/v1/users/%v", u["id"]), adminToken, "")
	api.want(404, "DELETE", "/api/v1/users/alice", adminToken, "")
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, ans := range api.answers {
		if strings.Contains(ans, "$2a$") || strings.Contains(ans, "alice-password") {
			t.Fatalf("an answer shows a password or its hash: %s", ans)
		}
	}
}

func TestModelsAPI(t *testing.T) {
	api := newAdminAPI(t)
	m := api.want(201, "POST", "/api/v1/llm-models", adminToken, fullModelBody)
	id := fmt.Sprint(m["id"])
	keys := m["api_keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("api_keys: %v", keys)
	}
	k0 := keys[0].(map[string]any)
	if k0["masked"] != "sk-t…0001" || !strings.HasPrefix(k0["id"].(string), "k_") || k0["status"] != "enabled" ||
		keys[1].(map[string]any)["status"] != "disabled" {
		t.Fatalf("keys must be answered as id, masked, status: %v", keys)
	}
	for field, want := range map[string]any{"name": "GPT-4 Turbo", "model_id": "gpt-4-turbo", "type": "生文", "origin": "api",
		"supports_vision": true, "max_tokens": 4096.0, "input_price": 10.0, "tpm": 200000.0, "upstream_model": "gpt-4-turbo-2024-04-09"} {
		if m[field] != want {
			t.Errorf("%s = %v, want %v", field, m[field], want)
		}
	}
	if h := m["key_source"].(map[string]any)["headers"].(map[string]any)["X-Auth"]; h != "ks-h…0001" {
		t.Errorf("key service headers must be masked: %v", h)
	}

	t.Run("get and list with filters", func(t *testing.T) {
		api.want(201, "POST", "/api/v1/llm-models", adminToken,
			`{"model_id":"claude","provider":"anthropic","type":"chat","status":"disabled","base_url":"https://api.anthropic.com/v1"}`)
		if got := api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, ""); got["model_id"] != "gpt-4-turbo" {
			t.Fatalf("get: %v", got)
		}
		for q, want := range map[string]int{"": 2, "?provider=openai": 1, "?provider=anthropic&status=disabled": 1,
			"?type=" + "%E7%94%9F%E6%96%87": 1, "?status=inactive": 0} {
			if got := api.want(200, "GET", "/api/v1/llm-models"+q, adminToken, "")["data"].([]any); len(got) != want {
				t.Errorf("list %q: %d models, want %d", q, len(got), want)
			}
		}
		api.want(404, "GET", "/api/v1/llm-models/999", adminToken, "")
		api.want(404, "GET", "/api/v1/llm-models/gpt-4", adminToken, "")
	})

	t.Run("create validation", func(t *testing.T) {
		for _, c := range []struct{ body, want string }{
			{`{}`, "model_id: required; base_url: required"},
			{`{"model_id":"x","base_url":"ftp://x","key_usage_mode":"random","rpm":-1,"api_keys":[{"status":"on"}, {"key":"sk-with space-0000001"}]}`,
				`api_keys[0].key: required; api_keys[1].key: must not contain spaces or control characters; base_url: "ftp://x" is not an absolute http(s) URL; key_usage_mode: "random" must be one of`},
			{`{"model_id":"x","base_url":"https://x","api_keys":[{"key":"sk-same-key-0000000001"},{"key":"sk-same-key-0000000001","status":"off"}]}`,
				`api_keys[1].key: same key as api_keys[0]; api_keys[1].status: "off" must be one of enabled, disabled`},
			{`{"model_id":"x","base_url":"https://x","max_tokens":"many"}`, "max_tokens: want a whole number, got string"},
			{`{"model_id":"x","base_url":"https://x","sk-live-pasted-in-a-key":1}`, "sk-l…-key: unknown field"},
			{`{"model_id":"x","base_url":"https://x","key_source":{"url":"http://ks","expire_seconds":60,"refresh_before_seconds":90}}`,
				"key_source.refresh_before_seconds: 90 must be smaller than expire_seconds (60)"},
			{`[1,2]`, "body: want an object, got array"},
			{`{"model_id":"x"} {}`, "want one JSON object"},
		} {
			v := api.want(400, "POST", "/api/v1/llm-models", adminToken, c.body)
			if !strings.Contains(errorMessage(v), c.want) {
				t.Errorf("body %s:\n got %q\nwant it to contain %q", c.body, errorMessage(v), c.want)
			}
		}
		api.noClearKeys("sk-live-pasted-in-a-key", "sk-same-key-0000000001")
	})

	t.Run("update", func(t *testing.T) {
		// Only the fields sent change.
		got := api.want(200, "PUT", "/api/v1/llm-models/"+id, adminToken, `{"status":"inactive","rpm":10}`)
		if got["status"] != "inactive" || got["rpm"] != 10.0 || got["name"] != "GPT-4 Turbo" || len(got["api_keys"].([]any)) != 2 {
			t.Fatalf("partial update: %v", got)
		}
		// Keys: keep one by its id (disabling it), drop the other, add a new one.
		got = api.want(200, "PUT", "/api/v1/llm-models/"+id, adminToken,
			fmt.Sprintf(`{"api_keys":[{"id":%q,"masked":"sk-t…0001","status":"disabled"},"sk-turbo-key-three-0003"]}`, k0["id"]))
		keys := got["api_keys"].([]any)
		if len(keys) != 2 || keys[0].(map[string]any)["id"] != k0["id"] || keys[0].(map[string]any)["status"] != "disabled" ||
			keys[1].(map[string]any)["masked"] != "sk-t…0003" || keys[1].(map[string]any)["status"] != "enabled" {
			t.Fatalf("keys after update: %v", keys)
		}
		// A GET answer sent back as it is changes nothing.
		before := api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")
		b, _ := json.Marshal(before)
		after := api.want(200, "PUT", "/api/v1/llm-models/"+id, adminToken, string(b))
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("round trip changed the model:\n%v\n%v", before, after)
		}

		v := api.want(400, "PUT", "/api/v1/llm-models/"+id, adminToken, `{"base_url":"","api_keys":[{"id":"k_0000000000000000"}],"colour":"red"}`)
		if !strings.Contains(errorMessage(v), "colour: unknown field") {
			t.Errorf("unknown field: %v", v)
		}
		v = api.want(400, "PUT", "/api/v1/llm-models/"+id, adminToken, `{"base_url":"","api_keys":[{"id":"k_0000000000000000"}]}`)
		if msg := errorMessage(v); !strings.Contains(msg, `api_keys[0].id: the model has no key "k_0000000000000000"`) || !strings.Contains(msg, "base_url: required") {
			t.Errorf("update validation: %q", msg)
		}
		api.want(404, "PUT", "/api/v1/llm-models/999", adminToken, `{"rpm":1}`)
	})

	t.Run("add keys", func(t *testing.T) {
		got := api.want(200, "POST", "/api/v1/llm-models/"+id+"/keys", adminToken,
			`{"keys":["sk-bulk-key-000000001","sk-turbo-key-three-0003"," sk-bulk-key-000000002\n","sk-bulk-key-000000001"]}`)
		if len(got["added"].([]any)) != 2 || len(got["duplicates"].([]any)) != 2 {
			t.Fatalf("added/duplicates: %v", got)
		}
		if d := got["duplicates"].([]any)[0].(map[string]any); d["masked"] != "sk-t…0003" || d["id"] == "" {
			t.Errorf("a duplicate is named by id and mask: %v", d)
		}
		for body, want := range map[string]string{
			`{"keys":[]}`:                       "keys: required",
			`{}`:                                "keys: required",
			`{"keys":["ok-key-0000000001",""]}`: "keys[1]: required",
			`{"keys":["sk-a b"]}`:               "keys[0]: must not contain spaces",
			`{"keys":"sk-bulk-key-000000009"}`:  "keys: want a list, got string",
			`{"key":["sk-bulk-key-000000009"]}`: "key: unknown field",
		} {
			v := api.want(400, "POST", "/api/v1/llm-models/"+id+"/keys", adminToken, body)
			if !strings.Contains(errorMessage(v), want) {
				t.Errorf("%s: %q, want %q", body, errorMessage(v), want)
			}
		}
		api.want(404, "POST", "/api/v1/llm-models/999/keys", adminToken, `{"keys":["sk-bulk-key-000000009"]}`)
		if n := len(api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")["api_keys"].([]any)); n != 4 {
			t.Errorf("the model has %d keys, want 4", n)
		}
	})

	t.Run("keys: disable, enable, delete", func(t *testing.T) {
		kid := k0["id"].(string)
		api.want(200, "PATCH", "/api/v1/keys/"+kid, adminToken, `{"status":"enabled"}`)
		if v := api.want(200, "GET", "/api/v1/keys/"+kid, adminToken, ""); v["status"] == "disabled" {
			t.Fatalf("enabled key still disabled in the pool: %v", v)
		}
		v := api.want(200, "PATCH", "/api/v1/keys/"+kid, adminToken, `{"status":"disabled"}`)
		if v["status"] != "disabled" || v["operator_disabled"] != true {
			t.Fatalf("patch answer: %v", v)
		}
		model := api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")
		if model["api_keys"].([]any)[0].(map[string]any)["status"] != "disabled" {
			t.Fatalf("a disable must be stored with the model's key: %v", model["api_keys"])
		}
		api.want(400, "PATCH", "/api/v1/keys/"+kid, adminToken, `{"status":"paused"}`)
		api.want(404, "PATCH", "/api/v1/keys/k_nope", adminToken, `{"status":"disabled"}`)

		api.want(200, "DELETE", "/api/v1/keys/"+kid, adminToken, "")
		api.want(404, "GET", "/api/v1/keys/"+kid, adminToken, "")
		api.want(404, "DELETE", "/api/v1/keys/"+kid, adminToken, "")
		if n := len(api.want(200, "GET", "/api/v1/llm-models/"+id, adminToken, "")["api_keys"].([]any)); n != 3 {
			t.Errorf("after deleting a key the model has %d keys, want 3", n)
		}
	})

	t.Run("delete", func(t *testing.T) {
		api.want(200, "DELETE", "/api/v1/llm-models/"+id, adminToken, "")
		api.want(404, "GET", "/api/v1/llm-models/"+id, adminToken, "")
		api.want(404, "DELETE", "/api/v1/llm-models/"+id, adminToken, "")
	})

	api.noClearKeys(append(modelSecrets, "sk-turbo-key-three-0003", "sk-bulk-key-000000001", "sk-bulk-key-000000002")...)
}
