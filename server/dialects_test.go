package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/tidwall/gjson"
)

// nativeFixture has one model behind each provider wire, all served by the
// same mock provider (which speaks every wire).
func nativeFixture(t *testing.T) *fixture {
	return newFixture(t, setup{
		opts: mockprovider.Options{Models: []string{"gpt-test", "claude-test", "gemini-test"}},
		models: func(base string) []keygate.Model {
			root := strings.TrimSuffix(base, "/v1")
			keys := []keygate.KeySpec{{Key: healthyKey1}}
			return []keygate.Model{
				{ModelID: "m-openai", Provider: "openai", BaseURL: base, UpstreamModel: "gpt-test", APIKeys: keys},
				{ModelID: "m-azure", Provider: "azure", BaseURL: root, UpstreamModel: "gpt-test", APIVersion: "2024-10-21", APIKeys: keys},
				{ModelID: "m-anthropic", Provider: "anthropic", BaseURL: root, UpstreamModel: "claude-test", APIKeys: keys},
				{ModelID: "m-gemini", Provider: "gemini", BaseURL: root + "/v1beta", UpstreamModel: "gemini-test", APIKeys: keys},
			}
		},
	})
}

const (
	userText = "describe three small cats"
	imgData  = "iVBORw0KGgo="
	reply    = "mock reply describe three small cats word7 word8 word9 word10 word11 word12"
)

// callerBody is a request in a caller dialect with text, a tool, or an image.
func callerBody(caller, content, model string, stream bool) string {
	var msg, tools string
	switch caller {
	case "chat":
		msg = `{"role":"user","content":"` + userText + `"}`
		if content == "image" {
			msg = `{"role":"user","content":[{"type":"text","text":"` + userText + `"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + imgData + `"}}]}`
		}
		tools = `"tools":[{"type":"function","function":{"name":"lookup","description":"find","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}],`
		msg = `"messages":[{"role":"system","content":"be brief"},` + msg + `]`
		if stream {
			msg += `,"stream_options":{"include_usage":true}`
		}
	case "responses":
		msg = `"instructions":"be brief","input":"` + userText + `"`
		if content == "image" {
			msg = `"instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"` + userText + `"},{"type":"input_image","image_url":"data:image/png;base64,` + imgData + `"}]}]`
		}
		tools = `"tools":[{"type":"function","name":"lookup","description":"find","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}],`
	case "messages":
		msg = `{"role":"user","content":"` + userText + `"}`
		if content == "image" {
			msg = `{"role":"user","content":[{"type":"text","text":"` + userText + `"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + imgData + `"}}]}`
		}
		tools = `"tools":[{"name":"lookup","description":"find","input_schema":{"type":"object","properties":{"q":{"type":"string"}}}}],`
		msg = `"max_tokens":100,"system":"be brief","messages":[` + msg + `]`
	}
	if content != "tools" {
		tools = ""
	}
	return fmt.Sprintf(`{"model":%q,%s%s,"stream":%v}`, model, tools, msg, stream)
}

var callerPaths = map[string]string{"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}

// answer is what a caller got, read the way its SDK reads it.
type answer struct {
	text, tool, args, stop string
	prompt, completion     int64
}

func readAnswer(t *testing.T, caller string, stream bool, body []byte) answer {
	t.Helper()
	var a answer
	if !stream {
		doc := gjson.ParseBytes(body)
		switch caller {
		case "chat":
			m := doc.Get("choices.0.message")
			a.text, a.stop = m.Get("content").Str, doc.Get("choices.0.finish_reason").Str
			a.tool, a.args = m.Get("tool_calls.0.function.name").Str, m.Get("tool_calls.0.function.arguments").Str
			a.prompt, a.completion = doc.Get("usage.prompt_tokens").Int(), doc.Get("usage.completion_tokens").Int()
		case "responses":
			readResponseObject(doc, &a)
		case "messages":
			doc.Get("content").ForEach(func(_, b gjson.Result) bool {
				switch b.Get("type").Str {
				case "text":
					a.text += b.Get("text").Str
				case "tool_use":
					a.tool, a.args = b.Get("name").Str, b.Get("input").Raw
				}
				return true
			})
			a.stop = doc.Get("stop_reason").Str
			u := doc.Get("usage")
			a.prompt = u.Get("input_tokens").Int() + u.Get("cache_read_input_tokens").Int() + u.Get("cache_creation_input_tokens").Int()
			a.completion = u.Get("output_tokens").Int()
		}
		return a
	}
	for _, block := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n\n") {
		name, data := "", ""
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if data == "" || data == "[DONE]" {
			continue
		}
		if !gjson.Valid(data) {
			t.Fatalf("event %q is not JSON: %s", name, data)
		}
		d := gjson.Parse(data)
		switch caller {
		case "chat":
			delta := d.Get("choices.0.delta")
			a.text += delta.Get("content").Str
			if tc := delta.Get("tool_calls.0"); tc.Exists() {
				if n := tc.Get("function.name").Str; n != "" {
					a.tool = n
				}
				a.args += tc.Get("function.arguments").Str
			}
			if f := d.Get("choices.0.finish_reason"); f.Type == gjson.String {
				a.stop = f.Str
			}
			if u := d.Get("usage"); u.IsObject() {
				a.prompt, a.completion = u.Get("prompt_tokens").Int(), u.Get("completion_tokens").Int()
			}
		case "responses":
			if name != d.Get("type").Str {
				t.Errorf("responses event %q carries type %q", name, d.Get("type").Str)
			}
			if name == "response.completed" {
				text := a.text
				readResponseObject(d.Get("response"), &a)
				if text != a.text {
					t.Errorf("deltas %q, completed text %q", text, a.text)
				}
			} else if name == "response.output_text.delta" {
				a.text += d.Get("delta").Str
			}
		case "messages":
			if name != d.Get("type").Str {
				t.Errorf("messages event %q carries type %q", name, d.Get("type").Str)
			}
			switch name {
			case "message_start":
				u := d.Get("message.usage")
				a.prompt = u.Get("input_tokens").Int() + u.Get("cache_read_input_tokens").Int()
			case "content_block_start":
				if b := d.Get("content_block"); b.Get("type").Str == "tool_use" {
					a.tool = b.Get("name").Str
				}
			case "content_block_delta":
				a.text += d.Get("delta.text").Str
				a.args += d.Get("delta.partial_json").Str
			case "message_delta":
				a.stop = d.Get("delta.stop_reason").Str
				a.completion = d.Get("usage.output_tokens").Int()
				if in := d.Get("usage.input_tokens"); in.Exists() {
					a.prompt = in.Int() + d.Get("usage.cache_read_input_tokens").Int()
				}
			}
		}
	}
	return a
}

func readResponseObject(doc gjson.Result, a *answer) {
	a.text = ""
	doc.Get("output").ForEach(func(_, it gjson.Result) bool {
		switch it.Get("type").Str {
		case "message":
			a.text += it.Get("content.0.text").Str
		case "function_call":
			a.tool, a.args = it.Get("name").Str, it.Get("arguments").Str
		}
		return true
	})
	a.stop = doc.Get("status").Str
	a.prompt, a.completion = doc.Get("usage.input_tokens").Int(), doc.Get("usage.output_tokens").Int()
}

// wantUpstream is what the mock must have received for each provider.
var wantUpstream = map[string]struct {
	path, auth string
	tools      string // a gjson path that exists when the tool went out in the wire's shape
	image      string // bytes the image takes in the wire's shape
}{
	"openai":    {"/v1/chat/completions", "Authorization", "tools.0.function.name", `"image_url"`},
	"azure":     {"/openai/deployments/gpt-test/chat/completions", "Api-Key", "tools.0.function.name", `"image_url"`},
	"anthropic": {"/v1/messages", "X-Api-Key", "tools.0.input_schema", `"media_type":"image/png"`},
	"gemini":    {"/v1beta/models/gemini-test:generateContent", "X-Goog-Api-Key", "tools.0.functionDeclarations.0.name", `"inlineData"`},
}

// TestTranslationTable drives every caller dialect against every provider
// wire, streamed and not, with text, a tool and an image, through the HTTP
// surface: the caller's answer field by field, the usage recorded, and the
// request the provider received.
func TestTranslationTable(t *testing.T) {
	f := nativeFixture(t)
	for _, caller := range []string{"chat", "responses", "messages"} {
		for _, prov := range []string{"openai", "azure", "anthropic", "gemini"} {
			for _, stream := range []bool{false, true} {
				for _, content := range []string{"text", "tools", "image"} {
					name := fmt.Sprintf("%s/%s/stream=%v/%s", caller, prov, stream, content)
					t.Run(name, func(t *testing.T) {
						f.provider.Reset()
						before := len(f.rec.all())
						resp := f.post(t, callerPaths[caller], appToken, callerBody(caller, content, "m-"+prov, stream))
						body, _ := io.ReadAll(resp.Body)
						if resp.StatusCode != 200 {
							t.Fatalf("status %d: %s", resp.StatusCode, body)
						}
						if ct := resp.Header.Get("Content-Type"); stream != strings.HasPrefix(ct, "text/event-stream") {
							t.Errorf("Content-Type %q", ct)
						}
						if resp.Header.Get("X-Keygate-Key") == "" {
							t.Error("no X-Keygate-Key")
						}
						a := readAnswer(t, caller, stream, body)
						if content == "tools" {
							if a.tool != "lookup" || gjson.Get(a.args, "query").Str != userText {
								t.Errorf("tool call %q %q, body %s", a.tool, a.args, body)
							}
							want := map[string]string{"chat": "tool_calls", "messages": "tool_use", "responses": "completed"}[caller]
							if a.stop != want {
								t.Errorf("stop %q, want %q", a.stop, want)
							}
						} else {
							if a.text != reply {
								t.Errorf("text %q, want %q; body %s", a.text, reply, body)
							}
							want := map[string]string{"chat": "stop", "messages": "end_turn", "responses": "completed"}[caller]
							if a.stop != want {
								t.Errorf("stop %q, want %q", a.stop, want)
							}
						}

						recs := f.rec.all()[before:]
						if len(recs) != 1 {
							t.Fatalf("%d usage records", len(recs))
						}
						rec := recs[0]
						wantOut := int64(12)
						if content == "tools" {
							wantOut = 5
						}
						if rec.Status != 200 || rec.Model != "m-"+prov || int64(rec.CompletionTokens) != wantOut || rec.PromptTokens < 5 {
							t.Errorf("record: status %d model %s tokens %d/%d, want completion %d", rec.Status, rec.Model, rec.PromptTokens, rec.CompletionTokens, wantOut)
						}
						if a.prompt != int64(rec.PromptTokens) || a.completion != int64(rec.CompletionTokens) {
							t.Errorf("caller saw usage %d/%d, record says %d/%d", a.prompt, a.completion, rec.PromptTokens, rec.CompletionTokens)
						}

						reqs := f.provider.Requests()
						if len(reqs) != 1 {
							t.Fatalf("provider got %d requests", len(reqs))
						}
						up := reqs[0]
						w := wantUpstream[prov]
						path := w.path
						switch {
						case prov == "gemini" && stream:
							path = "/v1beta/models/gemini-test:streamGenerateContent"
						case prov == "openai" && caller == "responses":
							path = "/v1/responses" // the same dialect: relayed as it is
						}
						if up.Path != path {
							t.Errorf("upstream path %s, want %s", up.Path, path)
						}
						if up.Header.Get(w.auth) == "" || (w.auth != "Authorization" && up.Header.Get("Authorization") != "") {
							t.Errorf("upstream auth: %v", up.Header)
						}
						if prov == "anthropic" && up.Header.Get("Anthropic-Version") != "2023-06-01" {
							t.Errorf("anthropic-version %q", up.Header.Get("Anthropic-Version"))
						}
						if stream != (up.Stream || (prov == "gemini" && stream)) {
							t.Errorf("upstream stream=%v", up.Stream)
						}
						ub := gjson.ParseBytes(up.Body)
						if m := ub.Get("model").Str; prov != "gemini" && prov != "azure" && m != "gpt-test" && m != "claude-test" {
							t.Errorf("upstream model %q", m)
						}
						sameDialect := (caller == "messages" && prov == "anthropic") || (caller == "responses" && prov == "openai")
						if content == "tools" && !sameDialect && !ub.Get(w.tools).Exists() {
							t.Errorf("upstream tools not in %s's shape: %s", prov, up.Body)
						}
						if content == "image" && (!bytes.Contains(up.Body, []byte(imgData)) || (!sameDialect && !bytes.Contains(up.Body, []byte(w.image)))) {
							t.Errorf("upstream image not in %s's shape: %s", prov, up.Body)
						}
						if !bytes.Contains(up.Body, []byte("be brief")) {
							t.Errorf("system prompt lost: %s", up.Body)
						}
					})
				}
			}
		}
	}
}

// A caller speaking the provider's own dialect gets the provider's bytes:
// only the model is renamed on the way out.
func TestSameDialectRelaysBytes(t *testing.T) {
	f := nativeFixture(t)
	in := `{"model":"m-anthropic","max_tokens":100,"metadata":{"user_id":"u1"},"messages":[{"role":"user","content":"hi"}]}`
	resp := f.post(t, "/v1/messages", appToken, in)
	body, _ := io.ReadAll(resp.Body)
	up := f.provider.Requests()[0]
	if want := strings.Replace(in, "m-anthropic", "claude-test", 1); string(up.Body) != want {
		t.Errorf("upstream body\n%s\nwant\n%s", up.Body, want)
	}
	if gjson.GetBytes(body, "model").Str != "claude-test" || !strings.HasPrefix(gjson.GetBytes(body, "id").Str, "msg_mock") {
		t.Errorf("answer %s", body)
	}
}

func TestUnsupportedEndpoint(t *testing.T) {
	f := nativeFixture(t)
	resp := f.post(t, "/v1/embeddings", appToken, `{"model":"m-anthropic","input":"x"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || gjson.GetBytes(body, "error.code").Str != "unsupported_endpoint" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if n := len(f.provider.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
	resp = f.post(t, "/v1/completions", appToken, `{"model":"m-gemini","prompt":"x"}`)
	if resp.StatusCode != 400 {
		t.Errorf("completions on gemini: %d", resp.StatusCode)
	}
}

// /v1/messages answers in Anthropic's shape, with the token as x-api-key.
func TestMessagesAuthAndErrors(t *testing.T) {
	f := nativeFixture(t)
	send := func(header map[string]string, body string) (int, gjson.Result) {
		req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/messages", strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	ok := `{"model":"m-openai","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	if s, doc := send(map[string]string{"x-api-key": appToken}, ok); s != 200 || doc.Get("type").Str != "message" {
		t.Errorf("x-api-key: %d %s", s, doc.Raw)
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		status int
		typ    string
		prefix string
	}{
		{"no token", nil, ok, 401, "authentication_error", "invalid_api_key"},
		{"bad token", map[string]string{"x-api-key": "kg-nope"}, ok, 401, "authentication_error", "invalid_api_key"},
		{"unknown model", map[string]string{"x-api-key": appToken}, `{"model":"nope","max_tokens":1,"messages":[]}`, 404, "not_found_error", "model_not_found"},
		{"not allowed", map[string]string{"Authorization": "Bearer " + limitedTok}, ok, 403, "permission_error", "model_not_allowed"},
		{"bad json", map[string]string{"x-api-key": appToken}, `{`, 400, "invalid_request_error", "invalid_request"},
	} {
		s, doc := send(tc.header, tc.body)
		if s != tc.status || doc.Get("type").Str != "error" || doc.Get("error.type").Str != tc.typ ||
			!strings.HasPrefix(doc.Get("error.message").Str, tc.prefix) {
			t.Errorf("%s: %d %s", tc.name, s, doc.Raw)
		}
	}
	// A provider's error reaches a Messages caller in Anthropic's shape, translated from OpenAI's.
	f.provider.SetBehavior(healthyKey1, mockprovider.InvalidKey)
	s, doc := send(map[string]string{"x-api-key": appToken}, ok)
	if s != 401 || doc.Get("error.type").Str != "authentication_error" || !strings.Contains(doc.Get("error.message").Str, "Incorrect API key") {
		t.Errorf("provider error: %d %s", s, doc.Raw)
	}
}

func TestCountTokens(t *testing.T) {
	f := nativeFixture(t)
	body := `{"model":"%s","system":"be brief","messages":[{"role":"user","content":"hello there general kenobi"}]}`
	for _, m := range []string{"m-anthropic", "m-openai"} {
		resp := f.post(t, "/v1/messages/count_tokens", appToken, fmt.Sprintf(body, m))
		b, _ := io.ReadAll(resp.Body)
		if n := gjson.GetBytes(b, "input_tokens").Int(); resp.StatusCode != 200 || n < 5 {
			t.Errorf("%s: %d %s", m, resp.StatusCode, b)
		}
	}
	reqs := f.provider.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages/count_tokens" {
		t.Errorf("only the anthropic deployment's count goes upstream: %v", len(reqs))
	}
}

func TestOtherOpenAIRoutes(t *testing.T) {
	f := nativeFixture(t)
	resp := f.post(t, "/v1/completions", appToken, `{"model":"m-openai","prompt":"say this"}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "object").Str != "text_completion" {
		t.Errorf("completions: %d %s", resp.StatusCode, b)
	}
	resp = f.post(t, "/v1/moderations", appToken, `{"model":"m-openai","input":"hi"}`)
	if resp.StatusCode != 200 {
		t.Errorf("moderations: %d", resp.StatusCode)
	}

	var form bytes.Buffer
	form.WriteString("--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\nID3data\r\n" +
		"--XB\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm-openai\r\n--XB--\r\n")
	req, _ := http.NewRequest(http.MethodPost, f.gateway.URL+"/v1/audio/transcriptions", bytes.NewReader(form.Bytes()))
	req.Header.Set("Authorization", "Bearer "+appToken)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=XB")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 200 || gjson.GetBytes(b, "text").Str == "" {
		t.Errorf("transcription: %d %s", r2.StatusCode, b)
	}
	last := f.provider.Requests()
	if up := last[len(last)-1]; up.Path != "/v1/audio/transcriptions" || !strings.HasPrefix(up.Header.Get("Content-Type"), "multipart/form-data; boundary=XB") {
		t.Errorf("upstream %s %s", up.Path, up.Header.Get("Content-Type"))
	}
}

// Keys on a native wire fail over and cool down by that vendor's own
// error bodies: Anthropic's 429 rate_limit_error and its invalid x-api-key,
// Gemini's RESOURCE_EXHAUSTED and API_KEY_INVALID; the caller never sees them.
func TestNativeWireFailover(t *testing.T) {
	const limited, invalid = "sk-native-limited-33", "sk-native-invalid-44"
	f := newFixture(t, setup{
		keys: map[string]mockprovider.Behavior{healthyKey1: mockprovider.OK, limited: mockprovider.RateLimited, invalid: mockprovider.InvalidKey},
		opts: mockprovider.Options{Models: []string{"claude-test", "gemini-test"}},
		models: func(base string) []keygate.Model {
			root := strings.TrimSuffix(base, "/v1")
			keys := []keygate.KeySpec{{Key: limited}, {Key: invalid}, {Key: healthyKey1}}
			return []keygate.Model{
				{ModelID: "c", Provider: "anthropic", BaseURL: root, UpstreamModel: "claude-test", KeyUsageMode: keygate.ModeSingle, APIKeys: keys},
				{ModelID: "g", Provider: "gemini", BaseURL: root + "/v1beta", UpstreamModel: "gemini-test", KeyUsageMode: keygate.ModeSingle, APIKeys: keys},
			}
		},
	})
	// The invalid key, disabled by the first request, is not tried for the
	// second model: an authentication failure is the key's, for every model.
	for _, tc := range []struct{ path, body, attempts, want string }{
		{"/v1/messages", `{"model":"c","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, "3", "event: message_stop"},
		{"/v1/chat/completions", `{"model":"g","messages":[{"role":"user","content":"hi"}]}`, "2", "mock reply hi"},
	} {
		resp := f.post(t, tc.path, appToken, tc.body)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Keygate-Attempts") != tc.attempts || !bytes.Contains(body, []byte(tc.want)) {
			t.Errorf("%s: %d attempts %s: %s", tc.path, resp.StatusCode, resp.Header.Get("X-Keygate-Attempts"), body)
		}
	}
	now := f.clock.Now()
	for _, k := range f.pool.Keys() {
		v := k.View(now)
		switch k.Masked() {
		case keygate.Mask(limited):
			if v.ErrorClass != "rate_limit_exceeded" {
				t.Errorf("limited key: %s %s", v.Status, v.ErrorClass)
			}
		case keygate.Mask(invalid):
			if v.ErrorClass != "authentication_error" {
				t.Errorf("invalid key: %s %s", v.Status, v.ErrorClass)
			}
		}
	}
}

// What no translation can carry is the caller's 400, and no key is tried.
func TestUntranslatableIsTheCallersError(t *testing.T) {
	f := nativeFixture(t)
	for _, tc := range []struct{ path, body string }{
		{"/v1/responses", `{"model":"m-anthropic","input":"x","tools":[{"type":"web_search"}]}`},
		{"/v1/responses", `{"model":"m-gemini","input":"x","previous_response_id":"resp_1"}`},
		{"/v1/chat/completions", `{"model":"m-anthropic","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`},
		{"/v1/messages", `{"model":"m-openai","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}`},
	} {
		resp := f.post(t, tc.path, appToken, tc.body)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte("invalid_request")) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, resp.StatusCode, body)
		}
	}
	if n := len(f.provider.Requests()); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
	// The same request on a deployment of the caller's own dialect goes as it is.
	resp := f.post(t, "/v1/responses", appToken, `{"model":"m-openai","input":"x","tools":[{"type":"web_search"}]}`)
	if resp.StatusCode != 200 {
		t.Errorf("responses with web_search on openai: %d", resp.StatusCode)
	}
}

// Embeddings on a Gemini deployment: embedContent for one input,
// batchEmbedContents for a list, answered in OpenAI's shape.
func TestGeminiEmbeddings(t *testing.T) {
	f := nativeFixture(t)
	for _, in := range []string{`"one text"`, `["first","second"]`} {
		resp := f.post(t, "/v1/embeddings", appToken, `{"model":"m-gemini","input":`+in+`}`)
		body, _ := io.ReadAll(resp.Body)
		doc := gjson.ParseBytes(body)
		n := 1
		if strings.HasPrefix(in, "[") {
			n = 2
		}
		if resp.StatusCode != 200 || doc.Get("object").Str != "list" || len(doc.Get("data").Array()) != n ||
			len(doc.Get("data.0.embedding").Array()) != 8 || doc.Get("model").Str != "m-gemini" {
			t.Errorf("%s: %d %s", in, resp.StatusCode, body)
		}
	}
	reqs := f.provider.Requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[0].Path, ":embedContent") || !strings.HasSuffix(reqs[1].Path, ":batchEmbedContents") {
		t.Errorf("upstream paths %v", reqs)
	}
	if rec := f.rec.all(); len(rec) != 2 || rec[1].PromptTokens == 0 {
		t.Errorf("usage counted by keygate: %+v", rec)
	}
}

func TestModelsInAnthropicShape(t *testing.T) {
	f := nativeFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.gateway.URL+"/v1/models", nil)
	req.Header.Set("x-api-key", appToken)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	doc := gjson.ParseBytes(body)
	if resp.StatusCode != 200 || doc.Get("data.0.type").Str != "model" || doc.Get("has_more").Type != gjson.False || doc.Get("data.#").Int() != 4 {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	resp2 := f.post(t, "/v1/models", "", "") // POST: not this route
	resp2.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, f.gateway.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+appToken)
	resp, _ = http.DefaultClient.Do(req)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if gjson.GetBytes(body, "object").Str != "list" {
		t.Errorf("OpenAI callers keep OpenAI's list: %s", body)
	}
}

// An Azure deployment's own defaults reach its native chat route as they
// reach OpenAI's: the deployment's temperature when the caller sent none,
// and a stream asked for its usage.
func TestAzureNativeChatGetsTheDeploymentsDefaults(t *testing.T) {
	temp := 0.3
	f := newFixture(t, setup{
		opts: mockprovider.Options{Models: []string{"gpt-test"}},
		models: func(base string) []keygate.Model {
			return []keygate.Model{{ModelID: "m-azure", Provider: "azure", BaseURL: strings.TrimSuffix(base, "/v1"), UpstreamModel: "gpt-test",
				APIVersion: "2024-10-21", Temperature: &temp, APIKeys: []keygate.KeySpec{{Key: healthyKey1}}}}
		},
	})
	for _, stream := range []bool{false, true} {
		body := `{"model":"m-azure","messages":[{"role":"user","content":"hi"}],"stream":` + strconv.FormatBool(stream) + `}`
		resp := f.post(t, "/v1/chat/completions", appToken, body)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("stream=%v: %d", stream, resp.StatusCode)
		}
		reqs := f.provider.Requests()
		up := gjson.ParseBytes(reqs[len(reqs)-1].Body)
		if up.Get("temperature").Float() != temp {
			t.Errorf("stream=%v: upstream temperature %v, want the deployment's %v: %s", stream, up.Get("temperature"), temp, reqs[len(reqs)-1].Body)
		}
		if stream && !up.Get("stream_options.include_usage").Bool() {
			t.Errorf("a stream must ask for its usage: %s", reqs[len(reqs)-1].Body)
		}
	}
}
