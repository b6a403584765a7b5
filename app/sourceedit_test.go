package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/mockprovider"
)

// TestEditingKeySourceRestartsIt: a key service that wants a new header
// value is fixed by editing the model's key_source through the API, with
// no restart of keygate.
func TestEditingKeySourceRestartsIt(t *testing.T) {
	var n atomic.Int64
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-App-Secret") != "ks-secret-new-000001" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"bad app secret"}`))
			return
		}
		fmt.Fprintf(w, `{"result":"sk-good-%012d"}`, n.Add(1))
	}))
	t.Cleanup(ks.Close)
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Default: mockprovider.OK}))
	t.Cleanup(provider.Close)
	g := start(t, baseConfig(t, t.TempDir()))

	model := func(secret string) string {
		b, _ := json.Marshal(map[string]any{"model_id": "gpt-4o-mini", "base_url": provider.URL + "/v1",
			"key_source": map[string]any{"url": ks.URL + "/getApikey", "scene_code": "P1", "retries": 1, "retry_interval_ms": 10,
				"headers": map[string]string{"X-App-Secret": secret}}})
		return string(b)
	}
	code, v := jsonCall(t, "POST", g.url+"/api/v1/llm-models", adminToken, model("ks-secret-old-000001"))
	if code != 201 {
		t.Fatalf("create: %d %v", code, v)
	}
	id := fmt.Sprint(v["id"])
	if code, v := jsonCall(t, "PUT", g.url+"/api/v1/llm-models/"+id, adminToken, model("ks-secret-new-000001")); code != 200 {
		t.Fatalf("edit: %d %v", code, v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, b := call(t, "POST", g.url+"/v1/chat/completions", appToken, chat)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited key_source was not put in force: %d %s", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
