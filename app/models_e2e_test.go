package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
)

// jsonCall is call with the answer decoded.
func jsonCall(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	resp, b := call(t, method, url, token, body)
	var v map[string]any
	json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

// TestModelLifecycleThroughTheAPI creates a model through the admin API,
// calls it through the relay, changes its keys while a request is in
// flight, restarts on the same data directory and deletes it.
func TestModelLifecycleThroughTheAPI(t *testing.T) {
	const (
		key1 = "sk-lifecycle-key-00001"
		key2 = "sk-lifecycle-key-00002"
		key3 = "sk-lifecycle-key-00003"
	)
	provider := mockprovider.New(mockprovider.Options{Latency: 150 * time.Millisecond, Keys: map[string]mockprovider.Behavior{
		key1: mockprovider.OK, key2: mockprovider.OK, key3: mockprovider.OK}})
	upstream := httptest.NewServer(provider)
	defer upstream.Close()
	dir := t.TempDir()
	cfg := baseConfig(t, dir) // no models configured
	g := start(t, cfg)

	if code, _ := jsonCall(t, "POST", g.url+"/v1/chat/completions", appToken, chat); code != 404 {
		t.Fatalf("before the model exists: %d, want 404", code)
	}
	code, m := jsonCall(t, "POST", g.url+"/api/v1/llm-models", adminToken, fmt.Sprintf(
		`{"name":"Mini","model_id":"gpt-4o-mini","base_url":%q,"key_usage_mode":"single","input_price":1,"output_price":2,"api_keys":[{"key":%q}]}`,
		upstream.URL+"/v1", key1))
	if code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	id := fmt.Sprint(m["id"])
	resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode != 200 || last(provider).Key != key1 {
		t.Fatalf("the new model must serve at once with its key: %d %s", resp.StatusCode, b)
	}
	if code, v := jsonCall(t, "GET", g.url+"/v1/models", appToken, ""); code != 200 || !strings.Contains(fmt.Sprint(v), "gpt-4o-mini") {
		t.Fatalf("/v1/models must list it: %v", v)
	}

	// Replace key1 by key2 while a request with key1 is in flight: that
	// request finishes with key1, the next one uses key2.
	var wg sync.WaitGroup
	wg.Go(func() {
		if resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat); resp.StatusCode != 200 {
			t.Errorf("the request in flight during the change: %d %s", resp.StatusCode, b)
		}
	})
	waitFor(t, func() bool { return provider.Count(key1) == 2 })
	code, m = jsonCall(t, "PUT", g.url+"/api/v1/llm-models/"+id, adminToken, fmt.Sprintf(`{"api_keys":[%q]}`, key2))
	if code != 200 {
		t.Fatalf("update: %d %v", code, m)
	}
	wg.Wait()
	resp, _ = call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode != 200 || last(provider).Key != key2 || resp.Header.Get("X-Keygate-Key") != keyID(t, g.url, adminToken, key2) {
		t.Fatalf("after the update the model must use key2: %d, provider got %s", resp.StatusCode, keygate.Mask(last(provider).Key))
	}
	if code, v := jsonCall(t, "POST", g.url+"/api/v1/llm-models/"+id+"/keys", adminToken, fmt.Sprintf(`{"keys":[%q]}`, key3)); code != 200 {
		t.Fatalf("add key: %d %v", code, v)
	}
	keysBefore := keysByMasked(t, g.url)
	if _, ok := keysBefore[keygate.Mask(key1)]; ok || len(keysBefore) != 2 {
		t.Fatalf("the pool must hold key2 and key3 only: %v", keysBefore)
	}

	// Restart on the same data directory: the model, its keys and their ids come back.
	g.shutdown(t)
	g = start(t, cfg)
	keysAfter := keysByMasked(t, g.url)
	for masked, k := range keysBefore {
		if keysAfter[masked]["id"] != k["id"] {
			t.Fatalf("key %s: id %v before the restart, %v after: ids must be stable", masked, k["id"], keysAfter[masked]["id"])
		}
	}
	if keysAfter[keygate.Mask(key2)]["success_count"] != 1.0 {
		t.Errorf("key2's statistics must survive the restart: %v", keysAfter[keygate.Mask(key2)])
	}
	resp, _ = call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode != 200 || last(provider).Key != key2 {
		t.Fatalf("after the restart: %d, provider got %s", resp.StatusCode, keygate.Mask(last(provider).Key))
	}

	if code, v := jsonCall(t, "DELETE", g.url+"/api/v1/llm-models/"+id, adminToken, ""); code != 200 {
		t.Fatalf("delete: %d %v", code, v)
	}
	if code, v := jsonCall(t, "POST", g.url+"/v1/chat/completions", appToken, chat); code != 404 || !strings.Contains(fmt.Sprint(v), "model_not_found") {
		t.Fatalf("after delete: %d %v, want 404 model_not_found", code, v)
	}
	if keys := keysByMasked(t, g.url); len(keys) != 0 {
		t.Fatalf("no key may remain in service: %v", keys)
	}
}

func last(p *mockprovider.Provider) mockprovider.Request {
	r := p.Requests()
	if len(r) == 0 {
		return mockprovider.Request{}
	}
	return r[len(r)-1]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestConfigModelsAreUpserted checks that models from the file are stored
// with origin config, found again at the next start, and that an operator's
// disable of one of their keys survives it.
func TestConfigModelsAreUpserted(t *testing.T) {
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-config-key-000000001": mockprovider.OK, "sk-config-key-000000002": mockprovider.OK}}))
	defer provider.Close()
	cfg := baseConfig(t, t.TempDir())
	cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: provider.URL + "/v1", Status: "enabled", KeyUsageMode: "single",
		APIKeys: []keygate.KeySpec{{Key: "sk-config-key-000000001", Status: "enabled"}, {Key: "sk-config-key-000000002", Status: "enabled"}}}}
	g := start(t, cfg)
	_, list := jsonCall(t, "GET", g.url+"/api/v1/llm-models", adminToken, "")
	models := list["data"].([]any)
	if len(models) != 1 || models[0].(map[string]any)["origin"] != "config" {
		t.Fatalf("the file's model must be stored with origin config: %v", list)
	}
	first := models[0].(map[string]any)
	kid := first["api_keys"].([]any)[0].(map[string]any)["id"].(string)
	if code, v := jsonCall(t, "PATCH", g.url+"/api/v1/keys/"+kid, adminToken, `{"status":"disabled"}`); code != 200 {
		t.Fatalf("disable: %d %v", code, v)
	}
	g.shutdown(t)

	g = start(t, cfg)
	_, list = jsonCall(t, "GET", g.url+"/api/v1/llm-models", adminToken, "")
	again := list["data"].([]any)[0].(map[string]any)
	if again["id"] != first["id"] {
		t.Fatalf("the config model must keep its id across restarts: %v → %v", first["id"], again["id"])
	}
	if st := again["api_keys"].([]any)[0].(map[string]any)["status"]; st != "disabled" {
		t.Fatalf("the operator's disable must survive a restart: %v", st)
	}
	resp, _ := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Key") != keyID(t, g.url, adminToken, "sk-config-key-000000002") {
		t.Fatalf("the disabled key must not serve: %d %s", resp.StatusCode, resp.Header.Get("X-Keygate-Key"))
	}
}

func TestMasterKey(t *testing.T) {
	newApp := func(cfg *config.Config) error {
		a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			a.Store().Close()
		}
		return err
	}
	dir := t.TempDir()

	var logs bytes.Buffer
	a, err := app.New(context.Background(), baseConfig(t, dir), app.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.Store().Close()
	fi, err := os.Stat(filepath.Join(dir, "master.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("a generated master key must sit beside the database with mode 0600: %v %v", fi, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "KEYGATE_MASTER_KEY is not set") {
		t.Fatalf("generating a master key must warn: %s", logs.String())
	}
	if err := newApp(baseConfig(t, dir)); err != nil {
		t.Fatalf("a restart must reuse the generated key: %v", err)
	}

	cfg := baseConfig(t, dir)
	cfg.MasterKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	if err := newApp(cfg); err == nil || !strings.Contains(err.Error(), "not the one this database's keys were encrypted with") {
		t.Fatalf("another KEYGATE_MASTER_KEY must be refused: %v", err)
	}
	os.Rename(filepath.Join(dir, "master.key"), filepath.Join(dir, "master.key.lost"))
	if err := newApp(baseConfig(t, dir)); err == nil || !strings.Contains(err.Error(), "restore that file") {
		t.Fatalf("a lost master key file must not be replaced silently: %v", err)
	}
	for _, bad := range []string{"too-short", strings.Repeat("z", 64)} {
		cfg := baseConfig(t, t.TempDir())
		cfg.MasterKey = bad
		if err := newApp(cfg); err == nil || !strings.Contains(err.Error(), "KEYGATE_MASTER_KEY") || strings.Contains(err.Error(), bad) {
			t.Fatalf("an invalid KEYGATE_MASTER_KEY must be refused without being shown: %v", err)
		}
	}
	cfg = baseConfig(t, t.TempDir())
	cfg.JWTSecret = "short"
	if err := newApp(cfg); err == nil || !strings.Contains(err.Error(), "KEYGATE_JWT_SECRET") {
		t.Fatalf("a short KEYGATE_JWT_SECRET must be refused: %v", err)
	}
}

// TestKeySourceModelAddedAtRuntime creates a model fed by a key service
// while the gateway runs: its source starts at once and serves.
func TestKeySourceModelAddedAtRuntime(t *testing.T) {
	e := newKeyServiceEnv(t, nil)
	g := start(t, baseConfig(t, t.TempDir()))
	body, _ := json.Marshal(e.model())
	if code, v := jsonCall(t, "POST", g.url+"/api/v1/llm-models", adminToken, string(body)); code != 201 {
		t.Fatalf("create: %d %v", code, v)
	}
	resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
	if resp.StatusCode != 200 || !e.ks.Valid(last(e.provider).Key) {
		t.Fatalf("a model with a key service added at runtime must serve with a fetched key: %d %s", resp.StatusCode, b)
	}
	for _, k := range keysByMasked(t, g.url) {
		if k["source"] == nil {
			t.Fatalf("the fetched key must show its source: %v", k)
		}
	}
}
