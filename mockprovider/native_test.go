package mockprovider

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func nativeServer(t *testing.T) (*Provider, string) {
	p, srv := newServer(t, Options{
		Models: []string{"claude-test", "gemini-test", "gpt-test", "whisper-1"},
		Keys:   map[string]Behavior{"good": OK, "limited": RateLimited, "broke": QuotaExhausted},
	})
	return p, srv.URL
}

func post(t *testing.T, url string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func anthHeader(key string) map[string]string {
	return map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01"}
}

func TestAnthropicWire(t *testing.T) {
	_, base := nativeServer(t)
	req := `{"model":"claude-test","max_tokens":50,"system":"be brief","messages":[{"role":"user","content":"hello there"}]}`
	resp, body := post(t, base+"/v1/messages", anthHeader("good"), req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	doc := gjson.Parse(body)
	if doc.Get("type").Str != "message" || !strings.HasPrefix(doc.Get("content.0.text").Str, "mock reply hello there") ||
		doc.Get("stop_reason").Str != "end_turn" || doc.Get("usage.input_tokens").Int() != 7 || doc.Get("usage.output_tokens").Int() != 12 {
		t.Errorf("answer: %s", body)
	}

	// Streaming: Anthropic's events in order, the text adding up.
	resp, body = post(t, base+"/v1/messages", anthHeader("good"), strings.Replace(req, `"max_tokens":50`, `"max_tokens":50,"stream":true`, 1))
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var names []string
	var text strings.Builder
	for _, block := range strings.Split(body, "\n\n") {
		if block == "" {
			continue
		}
		lines := strings.SplitN(block, "\n", 2)
		name, data := strings.TrimPrefix(lines[0], "event: "), strings.TrimPrefix(lines[1], "data: ")
		if gjson.Get(data, "type").Str != name {
			t.Errorf("event %q with data %s", name, data)
		}
		if len(names) == 0 || names[len(names)-1] != name {
			names = append(names, name)
		}
		text.WriteString(gjson.Get(data, "delta.text").Str)
	}
	if strings.Join(names, ",") != "message_start,content_block_start,ping,content_block_delta,content_block_stop,message_delta,message_stop" {
		t.Errorf("events %v", names)
	}
	if !strings.HasPrefix(text.String(), "mock reply hello there") {
		t.Errorf("text %q", text.String())
	}

	// Tools: a tool_use block.
	tools := `{"model":"claude-test","max_tokens":50,"tools":[{"name":"lookup","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"find cats"}]}`
	_, body = post(t, base+"/v1/messages", anthHeader("good"), tools)
	if gjson.Get(body, "content.0.type").Str != "tool_use" || gjson.Get(body, "content.0.input.query").Str != "find cats" || gjson.Get(body, "stop_reason").Str != "tool_use" {
		t.Errorf("tool answer: %s", body)
	}

	for _, tc := range []struct {
		name, key string
		header    map[string]string
		body      string
		status    int
		typ       string
	}{
		{"no key", "", map[string]string{"anthropic-version": "2023-06-01"}, req, 401, "authentication_error"},
		{"bad key", "nope", nil, req, 401, "authentication_error"},
		{"rate limited", "limited", nil, req, 429, "rate_limit_error"},
		{"no credit", "broke", nil, req, 400, "invalid_request_error"},
		{"no version", "good", map[string]string{"x-api-key": "good"}, req, 400, "invalid_request_error"},
		{"no max_tokens", "good", nil, `{"model":"claude-test","messages":[]}`, 400, "invalid_request_error"},
		{"unknown model", "good", nil, `{"model":"claude-9","max_tokens":1,"messages":[]}`, 404, "not_found_error"},
	} {
		h := tc.header
		if h == nil {
			h = anthHeader(tc.key)
		}
		resp, body := post(t, base+"/v1/messages", h, tc.body)
		if resp.StatusCode != tc.status || gjson.Get(body, "type").Str != "error" || gjson.Get(body, "error.type").Str != tc.typ {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
}

func TestGeminiWire(t *testing.T) {
	_, base := nativeServer(t)
	req := `{"contents":[{"role":"user","parts":[{"text":"hello there"}]}],"generationConfig":{"maxOutputTokens":20}}`
	_, body := post(t, base+"/v1beta/models/gemini-test:generateContent", map[string]string{"x-goog-api-key": "good"}, req)
	doc := gjson.Parse(body)
	if !strings.HasPrefix(doc.Get("candidates.0.content.parts.0.text").Str, "mock reply hello there") ||
		doc.Get("candidates.0.finishReason").Str != "STOP" || doc.Get("usageMetadata.promptTokenCount").Int() != 5 ||
		doc.Get("usageMetadata.candidatesTokenCount").Int() != 12 {
		t.Errorf("answer: %s", body)
	}
	resp, body := post(t, base+"/v1beta/models/gemini-test:streamGenerateContent?alt=sse", map[string]string{"x-goog-api-key": "good"}, req)
	chunks := strings.Split(strings.TrimSpace(body), "\r\n\r\n")
	if resp.Header.Get("Content-Type") != "text/event-stream" || len(chunks) != 12 {
		t.Fatalf("stream of %d chunks: %q", len(chunks), body)
	}
	last := gjson.Parse(strings.TrimPrefix(chunks[11], "data: "))
	if last.Get("candidates.0.finishReason").Str != "STOP" || last.Get("usageMetadata.candidatesTokenCount").Int() != 12 {
		t.Errorf("last chunk %s", chunks[11])
	}
	for _, tc := range []struct {
		key    string
		status int
		state  string
	}{{"", 403, "PERMISSION_DENIED"}, {"nope", 400, "INVALID_ARGUMENT"}, {"limited", 429, "RESOURCE_EXHAUSTED"}} {
		resp, body := post(t, base+"/v1beta/models/gemini-test:generateContent?key="+tc.key, nil, req)
		if resp.StatusCode != tc.status || gjson.Get(body, "error.status").Str != tc.state {
			t.Errorf("key %q: %d %s", tc.key, resp.StatusCode, body)
		}
	}
	_, body = post(t, base+"/v1beta/models/gemini-test:generateContent", map[string]string{"x-goog-api-key": "good"},
		`{"contents":[{"role":"user","parts":[{"text":"weather"}]}],"tools":[{"functionDeclarations":[{"name":"w"}]}]}`)
	if gjson.Get(body, "candidates.0.content.parts.0.functionCall.name").Str != "w" {
		t.Errorf("tool call: %s", body)
	}
}

func TestAzureWire(t *testing.T) {
	_, base := nativeServer(t)
	url := base + "/openai/deployments/gpt-test/chat/completions?api-version=2024-10-21"
	_, body := post(t, url, map[string]string{"api-key": "good"}, `{"messages":[{"role":"user","content":"hi"}]}`)
	if gjson.Get(body, "object").Str != "chat.completion" || gjson.Get(body, "model").Str != "gpt-test" {
		t.Errorf("answer %s", body)
	}
	resp, body := post(t, url, map[string]string{"api-key": "nope"}, `{"messages":[]}`)
	if resp.StatusCode != 401 || gjson.Get(body, "error.code").Str != "401" {
		t.Errorf("bad key: %d %s", resp.StatusCode, body)
	}
	resp, _ = post(t, base+"/openai/deployments/gpt-test/chat/completions", map[string]string{"api-key": "good"}, `{"messages":[]}`)
	if resp.StatusCode != 404 {
		t.Errorf("no api-version: %d", resp.StatusCode)
	}
}

func TestResponsesAndOtherRoutes(t *testing.T) {
	_, base := nativeServer(t)
	auth := map[string]string{"Authorization": "Bearer good"}
	_, body := post(t, base+"/v1/responses", auth, `{"model":"gpt-test","input":"hello there"}`)
	if gjson.Get(body, "object").Str != "response" || !strings.HasPrefix(gjson.Get(body, "output.0.content.0.text").Str, "mock reply hello there") ||
		gjson.Get(body, "usage.output_tokens").Int() != 12 {
		t.Errorf("responses: %s", body)
	}
	_, body = post(t, base+"/v1/responses", auth, `{"model":"gpt-test","input":"hello","stream":true}`)
	if !strings.Contains(body, "event: response.output_text.delta") || !strings.Contains(body, "event: response.completed") {
		t.Errorf("responses stream: %s", body)
	}
	_, body = post(t, base+"/v1/completions", auth, `{"model":"gpt-test","prompt":"say this"}`)
	if gjson.Get(body, "object").Str != "text_completion" {
		t.Errorf("completions: %s", body)
	}

	_, body = post(t, base+"/v1/rerank", auth, `{"model":"gpt-test","query":"q","documents":["a","b","c"]}`)
	if gjson.Get(body, "results.2.index").Int() != 2 || gjson.Get(body, "results.#").Int() != 3 {
		t.Errorf("rerank: %s", body)
	}

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("model", "whisper-1")
	fw, _ := mw.CreateFormFile("file", "a.mp3")
	fw.Write([]byte("ID3"))
	mw.Close()
	resp, body := post(t, base+"/v1/audio/transcriptions", map[string]string{"Authorization": "Bearer good", "Content-Type": mw.FormDataContentType()}, form.String())
	if resp.StatusCode != 200 || gjson.Get(body, "text").Str == "" {
		t.Errorf("transcription: %d %s", resp.StatusCode, body)
	}
}

func TestVendorModelLists(t *testing.T) {
	_, base := nativeServer(t)
	get := func(url string, h map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := get(base+"/v1/models", anthHeader("good")); s != 200 || gjson.Get(b, "data.0.type").Str != "model" {
		t.Errorf("anthropic models: %d %s", s, b)
	}
	if s, b := get(base+"/v1/models", anthHeader("nope")); s != 401 || gjson.Get(b, "error.type").Str != "authentication_error" {
		t.Errorf("anthropic models, bad key: %d %s", s, b)
	}
	if s, b := get(base+"/v1beta/models", map[string]string{"x-goog-api-key": "good"}); s != 200 || gjson.Get(b, "models.0.name").Str != "models/claude-test" {
		t.Errorf("gemini models: %d %s", s, b)
	}
	if s, _ := get(base+"/openai/models?api-version=2024-10-21", map[string]string{"api-key": "good"}); s != 200 {
		t.Errorf("azure models: %d", s)
	}
}
