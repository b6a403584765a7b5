package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// TestStreamRecordedAsWhatItWas: a stream that ends without [DONE], or
// carries an SSE error event, is not recorded as a clean 200; a clean one
// without provider usage is "estimated", one with it "provider".
func TestStreamRecordedAsWhatItWas(t *testing.T) {
	const chunk = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hello there"}}]}` + "\n\n"
	tests := []struct {
		name, body, source string
		clean              bool
	}{
		{"clean", chunk + "data: [DONE]\n\n", keygate.UsageEstimated, true},
		{"with usage", chunk + `data: {"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}` + "\n\ndata: [DONE]\n\n", keygate.UsageProvider, true},
		{"no [DONE]", chunk, keygate.UsagePartial, false},
		{"error event", chunk + `data: {"error":{"message":"overloaded","type":"server_error"}}` + "\n\n", keygate.UsagePartial, false},
		{"named error event", chunk + "event: error\ndata: {\"message\":\"boom\"}\n\n", keygate.UsagePartial, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				io.WriteString(w, tt.body)
			}))
			defer upstream.Close()
			dir := t.TempDir()
			cfg := baseConfig(t, dir)
			cfg.Models = []keygate.Model{{ModelID: "gpt-4o-mini", BaseURL: upstream.URL + "/v1", APIKeys: []keygate.KeySpec{{Key: "sk-stream-end-key-0001"}}}}
			g := start(t, cfg)
			resp, _ := call(t, "POST", g.url+"/v1/chat/completions", appToken, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			g.shutdown(t)
			s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "keygate.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			recs, err := s.ListUsage(context.Background(), store.UsageFilter{})
			if err != nil || len(recs) != 1 {
				t.Fatalf("records %v %v", recs, err)
			}
			r := recs[0]
			if r.UsageSource != tt.source || (r.Status == 200) != tt.clean || r.CompletionTokens == 0 {
				t.Fatalf("recorded status %d, usage_source %q, %d completion tokens; want source %q, clean %v", r.Status, r.UsageSource, r.CompletionTokens, tt.source, tt.clean)
			}
		})
	}
}
