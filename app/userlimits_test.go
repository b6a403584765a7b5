package app_test

import (
	"encoding/json"
	"testing"
)

// TestUsersLoginTokensObeyLimits: a user's models, rpm and budget apply
// when their login token calls the client API.
func TestUsersLoginTokensObeyLimits(t *testing.T) {
	e := newLimitsEnv(t, nil, nil)
	loginAs := func(body, user string) string {
		t.Helper()
		if resp, b := call(t, "POST", e.g.url+"/api/v1/users", adminToken, body); resp.StatusCode != 201 {
			t.Fatalf("create user: %d %s", resp.StatusCode, b)
		}
		return loginToken(t, e.g.url, user, "correct horse")
	}
	other := loginAs(`{"username":"dave","password":"correct horse","role":"user","models":["gpt-4o"]}`, "dave")
	if resp, v := e.chat(t, other, chat); resp.StatusCode != 403 || errCode(v) != "model_not_allowed" {
		t.Fatalf("a model outside the user's models: %d %v", resp.StatusCode, v)
	}
	slow := loginAs(`{"username":"erin","password":"correct horse","role":"user","rpm":1}`, "erin")
	if resp, v := e.chat(t, slow, chat); resp.StatusCode != 200 {
		t.Fatalf("first: %d %v", resp.StatusCode, v)
	}
	if resp, v := e.chat(t, slow, chat); resp.StatusCode != 429 || errCode(v) != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the user's rpm: %d %v", resp.StatusCode, v)
	}
	broke := loginAs(`{"username":"frank","password":"correct horse","role":"user","budget":{"amount":0.000001,"period":"daily"}}`, "frank")
	if resp, v := e.chat(t, broke, chat); resp.StatusCode != 429 || errCode(v) != "budget_exceeded" {
		t.Fatalf("over the user's budget: %d %v", resp.StatusCode, v)
	}
	if resp, b := call(t, "POST", e.g.url+"/api/v1/users", adminToken, `{"username":"gina","password":"correct horse","rpm":-1}`); resp.StatusCode != 400 {
		t.Fatalf("a negative rpm: %d %s", resp.StatusCode, b)
	}
	// The limits survive in the store and show in the list.
	resp, b := call(t, "GET", e.g.url+"/api/v1/users", adminToken, "")
	var list struct{ Data []map[string]any }
	json.Unmarshal(b, &list)
	if resp.StatusCode != 200 || len(list.Data) != 3 || list.Data[1]["rpm"] != float64(1) {
		t.Fatalf("users list: %d %s", resp.StatusCode, b)
	}
}

// loginToken logs user in and returns their login token.
func loginToken(t *testing.T, url, user, password string) string {
	t.Helper()
	resp, b := call(t, "POST", url+"/api/v1/auth/login", "", `{"username":"`+user+`","password":"`+password+`"}`)
	var v map[string]any
	json.Unmarshal(b, &v)
	tok, _ := v["token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	return tok
}
