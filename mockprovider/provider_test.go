package mockprovider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

const (
	goodKey = "sk-good-0000000000"
	chatReq = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there general kenobi how are you"}]}`
)

func newServer(t *testing.T, opts Options) (*Provider, *httptest.Server) {
	t.Helper()
	p := New(opts)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func call(t *testing.T, srv *httptest.Server, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if !bytes.Contains(body, []byte(`"param":null`)) {
		t.Errorf("error body has no param: %s", body)
	}
	return e
}

func code(e apiError) string {
	if e.Error.Code == nil {
		return "<null>"
	}
	return *e.Error.Code
}

func TestBehaviors(t *testing.T) {
	tests := []struct {
		behavior Behavior
		status   int
		typ      string
		code     string
		header   map[string]string
		message  string
	}{
		{InvalidKey, 401, "invalid_request_error", "invalid_api_key", nil, "Incorrect API key provided"},
		{RateLimited, 429, "requests", "rate_limit_exceeded",
			map[string]string{"Retry-After": "20", "X-Ratelimit-Reset-Requests": "20s"}, "Rate limit reached for gpt-4o-mini"},
		{QuotaExhausted, 429, "insufficient_quota", "insufficient_quota", nil, "You exceeded your current quota"},
		{ServerError, 500, "server_error", "<null>", nil, "The server had an error"},
		{Overloaded, 503, "server_error", "<null>", nil, "The engine is currently overloaded"},
		{"no_such_behavior", 500, "server_error", "<null>", nil, "unknown behavior"},
	}
	requests := []struct{ name, method, path, body string }{
		{"chat", "POST", "/v1/chat/completions", chatReq},
		// A failing stream is answered as plain JSON, before any event.
		{"stream", "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`},
		{"embeddings", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`},
		{"models", "GET", "/v1/models", ""},
	}
	for _, tt := range tests {
		_, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-k": tt.behavior}})
		for _, rq := range requests {
			t.Run(string(tt.behavior)+"/"+rq.name, func(t *testing.T) {
				resp, body := call(t, srv, rq.method, rq.path, "sk-k", rq.body)
				if resp.StatusCode != tt.status {
					t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				for k, v := range tt.header {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				e := decodeError(t, body)
				if e.Error.Type != tt.typ || code(e) != tt.code || !strings.Contains(e.Error.Message, tt.message) {
					t.Errorf("error = %+v (code %s), want type %q code %q message ~%q", e.Error, code(e), tt.typ, tt.code, tt.message)
				}
				status, header, want := ErrorBody(tt.behavior)
				if status != resp.StatusCode || !bytes.Equal(body, want) {
					t.Errorf("ErrorBody = %d %s, provider sent %d %s", status, want, resp.StatusCode, body)
				}
				for k := range header {
					if resp.Header.Get(k) != header.Get(k) {
						t.Errorf("ErrorBody header %s = %q, provider sent %q", k, header.Get(k), resp.Header.Get(k))
					}
				}
			})
		}
	}
}

func TestGarbage(t *testing.T) {
	_, srv := newServer(t, Options{Keys: map[string]Behavior{"sk-k": Garbage}})
	for _, body := range []string{chatReq, `{"model":"gpt-4o-mini","stream":true}`} {
		resp, got := call(t, srv, "POST", "/v1/chat/completions", "sk-k", body)
		if resp.StatusCode != 200 || json.Valid(got) || len(got) == 0 {
			t.Errorf("garbage = %d %q, want 200 and a non-JSON body", resp.StatusCode, got)
		}
		if _, _, want := ErrorBody(Garbage); !bytes.Equal(got, want) {
			t.Errorf("ErrorBody(Garbage) = %q, provider sent %q", want, got)
		}
	}
}

func TestMissingKey(t *testing.T) {
	_, srv := newServer(t, Options{Default: OK})
	for _, auth := range []string{"", "Basic abc", "Bearer "} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(chatReq))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := decodeError(t, body)
		if resp.StatusCode != 401 || code(e) != "invalid_api_key" || !strings.HasPrefix(e.Error.Message, "You didn't provide an API key") {
			t.Errorf("Authorization %q: %d %s", auth, resp.StatusCode, body)
		}
	}
}

func TestKeyResolution(t *testing.T) {
	validate := func(key string) (Behavior, bool) {
		if strings.HasPrefix(key, "dyn-") {
			return QuotaExhausted, true
		}
		return "", false
	}
	tests := []struct {
		name string
		opts Options
		key  string
		want int
	}{
		{"listed", Options{Keys: map[string]Behavior{"sk-a": OK}}, "sk-a", 200},
		{"unlisted rejected by default", Options{Keys: map[string]Behavior{"sk-a": OK}}, "sk-b", 401},
		{"unlisted with Default", Options{Default: ServerError}, "sk-b", 500},
		{"validated", Options{Validate: validate}, "dyn-1", 429},
		{"not validated falls to Default", Options{Validate: validate, Default: OK}, "sk-b", 200},
		{"Keys win over Validate", Options{Keys: map[string]Behavior{"dyn-1": OK}, Validate: validate}, "dyn-1", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t, tt.opts)
			if resp, body := call(t, srv, "POST", "/v1/chat/completions", tt.key, chatReq); resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	SystemFingerprint string `json:"system_fingerprint"`
}

func TestChat(t *testing.T) {
	tests := []struct {
		name, body  string
		words       int
		wantContent string
		wantPrompt  int
	}{
		{"echoes the last user message", chatReq, 0,
			"mock reply hello there general kenobi word7 word8 word9 word10 word11 word12", 2 + 7 + 2*3},
		{"content parts", `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"look at \"this\""},{"type":"image_url","image_url":{"url":"x"}}]}]}`, 5,
			`mock reply look at "this"`, 3 + 3},
		{"no messages", `{"model":"gpt-4o"}`, 3, "mock reply word3", 0},
		{"one word", chatReq, 1, "mock", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}, Words: tt.words})
			resp, body := call(t, srv, "POST", "/v1/chat/completions", goodKey, tt.body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var c chatCompletion
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			words := max(tt.words, 0)
			if words == 0 {
				words = 12
			}
			if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created == 0 ||
				c.Model != gjson.Get(tt.body, "model").Str || c.SystemFingerprint != "fp_mock" {
				t.Errorf("envelope: %s", body)
			}
			if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].FinishReason != "stop" {
				t.Fatalf("choices: %s", body)
			}
			if got := c.Choices[0].Message.Content; got != tt.wantContent {
				t.Errorf("content = %q, want %q", got, tt.wantContent)
			}
			if c.Usage.PromptTokens != tt.wantPrompt || c.Usage.CompletionTokens != words ||
				c.Usage.TotalTokens != tt.wantPrompt+words {
				t.Errorf("usage = %+v, want prompt %d completion %d", c.Usage, tt.wantPrompt, words)
			}
			if !gjson.GetBytes(body, "choices.0.logprobs").Exists() {
				t.Errorf("no logprobs: %s", body)
			}
		})
	}
}

// readEvent reads one server-sent event, which must be a single data line.
func readEvent(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	data, ok := strings.CutPrefix(line, "data: ")
	if !ok {
		return "", fmt.Errorf("event line %q is not data", line)
	}
	if blank, err := r.ReadString('\n'); err != nil || blank != "\n" {
		return "", fmt.Errorf("event %q not followed by a blank line (%q, %v)", line, blank, err)
	}
	return strings.TrimSuffix(data, "\n"), nil
}

func startStream(t *testing.T, ctx context.Context, srv *httptest.Server, body string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream answered %d %v", resp.StatusCode, resp.Header)
	}
	return resp, bufio.NewReader(resp.Body)
}

func TestStream(t *testing.T) {
	const stream = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream please"}]`
	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprintf("include_usage=%v", includeUsage), func(t *testing.T) {
			_, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}, Words: 5})
			body := stream + `}`
			if includeUsage {
				body = stream + `,"stream_options":{"include_usage":true}}`
			}
			_, r := startStream(t, context.Background(), srv, body)
			var events []string
			for {
				ev, err := readEvent(r)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, ev)
			}
			// role, 5 words, stop, [usage], [DONE]
			want := 8
			if includeUsage {
				want++
			}
			if len(events) != want || events[len(events)-1] != "[DONE]" {
				t.Fatalf("%d events, want %d ending in [DONE]: %q", len(events), want, events)
			}
			chunks := events[:len(events)-1]
			var id, content string
			for i, ev := range chunks {
				c := gjson.Parse(ev)
				if !gjson.Valid(ev) || c.Get("object").Str != "chat.completion.chunk" || c.Get("model").Str != "gpt-4o-mini" ||
					c.Get("system_fingerprint").Str != "fp_mock" || c.Get("created").Int() == 0 {
					t.Fatalf("chunk %d: %s", i, ev)
				}
				if id == "" {
					id = c.Get("id").Str
				} else if c.Get("id").Str != id {
					t.Errorf("chunk %d id %q, first was %q", i, c.Get("id").Str, id)
				}
				if usage := c.Get("usage"); usage.Exists() != includeUsage {
					t.Errorf("chunk %d: usage present = %v with include_usage %v: %s", i, usage.Exists(), includeUsage, ev)
				}
				choices := c.Get("choices").Array()
				switch {
				case i == 0:
					if c.Get("choices.0.delta.role").Str != "assistant" || !c.Get("choices.0.delta.content").Exists() ||
						c.Get("choices.0.finish_reason").Type != gjson.Null {
						t.Errorf("first chunk: %s", ev)
					}
				case i <= 5:
					content += c.Get("choices.0.delta.content").Str
					if c.Get("choices.0.finish_reason").Type != gjson.Null || !c.Get("choices.0.logprobs").Exists() {
						t.Errorf("word chunk: %s", ev)
					}
				case i == 6:
					if c.Get("choices.0.delta").Raw != "{}" || c.Get("choices.0.finish_reason").Str != "stop" {
						t.Errorf("stop chunk: %s", ev)
					}
				case i == 7:
					if len(choices) != 0 || c.Get("usage.completion_tokens").Int() != 5 ||
						c.Get("usage.prompt_tokens").Int() != 5 || c.Get("usage.total_tokens").Int() != 10 {
						t.Errorf("usage chunk: %s", ev)
					}
				}
				if i < 7 && (len(choices) != 1 || (includeUsage && c.Get("usage").Type != gjson.Null)) {
					t.Errorf("chunk %d: %s", i, ev)
				}
			}
			if content != "mock reply stream please word5" {
				t.Errorf("streamed content = %q", content)
			}
		})
	}
}

func TestStreamFlushesEachEvent(t *testing.T) {
	hold := make(chan struct{})
	p, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}, StreamHold: hold})
	_, r := startStream(t, context.Background(), srv, `{"model":"gpt-4o-mini","stream":true}`)

	// The provider is held after its first chunk: reading it proves it was
	// flushed, not buffered until the end.
	first := make(chan string, 1)
	go func() {
		ev, err := readEvent(r)
		if err != nil {
			ev = err.Error()
		}
		first <- ev
	}()
	select {
	case ev := <-first:
		if gjson.Get(ev, "choices.0.delta.role").Str != "assistant" {
			t.Fatalf("first event: %s", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk not received while the stream is held")
	}
	close(hold)
	rest, err := io.ReadAll(r)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("rest of stream (%v): %q", err, rest)
	}
	if p.Canceled() != 0 {
		t.Errorf("Canceled = %d after a complete stream", p.Canceled())
	}
}

func TestCanceled(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		stream bool
	}{
		{"held stream", Options{StreamHold: make(chan struct{})}, true},
		{"slow stream", Options{ChunkDelay: time.Hour}, true},
		{"latency", Options{Latency: time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Keys = map[string]Behavior{goodKey: OK}
			p, srv := newServer(t, tt.opts)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.stream {
				_, r := startStream(t, ctx, srv, `{"model":"gpt-4o-mini","stream":true}`)
				if _, err := readEvent(r); err != nil {
					t.Fatal(err)
				}
				cancel()
			} else {
				time.AfterFunc(50*time.Millisecond, cancel)
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(chatReq))
				req.Header.Set("Authorization", "Bearer "+goodKey)
				if resp, err := srv.Client().Do(req); err == nil {
					resp.Body.Close()
					t.Fatal("request answered despite an hour of latency")
				}
			}
			// The provider notices the hang-up asynchronously.
			deadline := time.Now().Add(5 * time.Second)
			for p.Canceled() != 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if p.Canceled() != 1 {
				t.Fatalf("Canceled = %d, want 1", p.Canceled())
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	_, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}})
	embed := func(input string, extra string) gjson.Result {
		t.Helper()
		resp, body := call(t, srv, "POST", "/v1/embeddings", goodKey,
			`{"model":"text-embedding-3-small","input":`+input+extra+`}`)
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return gjson.ParseBytes(body)
	}
	vector := func(e gjson.Result) []float64 {
		var v []float64
		for _, f := range e.Array() {
			v = append(v, f.Float())
		}
		return v
	}

	tests := []struct {
		name, input string
		n, tokens   int
	}{
		{"string", `"hello world"`, 1, 2},
		{"strings", `["hello world","a b c","hello world"]`, 3, 7},
		{"tokens", `[1,2,3,4]`, 1, 4},
		{"token arrays", `[[1,2],[3]]`, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := embed(tt.input, "")
			if r.Get("object").Str != "list" || r.Get("model").Str != "text-embedding-3-small" ||
				r.Get("usage.prompt_tokens").Int() != int64(tt.tokens) || r.Get("usage.total_tokens").Int() != int64(tt.tokens) {
				t.Errorf("envelope: %s", r.Raw)
			}
			data := r.Get("data").Array()
			if len(data) != tt.n {
				t.Fatalf("%d embeddings, want %d", len(data), tt.n)
			}
			for i, d := range data {
				v := vector(d.Get("embedding"))
				norm := 0.0
				for _, f := range v {
					norm += f * f
				}
				if d.Get("object").Str != "embedding" || d.Get("index").Int() != int64(i) || len(v) != 8 || math.Abs(norm-1) > 1e-4 {
					t.Errorf("embedding %d: %s (norm %v)", i, d.Raw, norm)
				}
			}
		})
	}

	t.Run("deterministic", func(t *testing.T) {
		a, b := embed(`["same","other","same"]`, ""), embed(`"same"`, "")
		same, other := a.Get("data.0.embedding").Raw, a.Get("data.1.embedding").Raw
		if same != a.Get("data.2.embedding").Raw || same != b.Get("data.0.embedding").Raw || same == other {
			t.Errorf("vectors: %s", a.Raw)
		}
	})

	t.Run("base64", func(t *testing.T) {
		floats := vector(embed(`"hello"`, "").Get("data.0.embedding"))
		raw, err := base64.StdEncoding.DecodeString(embed(`"hello"`, `,"encoding_format":"base64"`).Get("data.0.embedding").Str)
		if err != nil || len(raw) != 32 {
			t.Fatalf("base64 embedding: %v, %d bytes", err, len(raw))
		}
		for i := range 8 {
			f := math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
			if float32(floats[i]) != f {
				t.Errorf("float %d: base64 %v, JSON %v", i, f, floats[i])
			}
		}
	})
}

func TestModels(t *testing.T) {
	tests := []struct {
		models []string
		want   []string
	}{
		{nil, []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}},
		{[]string{"deepseek-chat"}, []string{"deepseek-chat"}},
	}
	for _, tt := range tests {
		_, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}, Models: tt.models})
		resp, body := call(t, srv, "GET", "/v1/models", goodKey, "")
		var list struct {
			Object string `json:"object"`
			Data   []struct {
				ID      string `json:"id"`
				Object  string `json:"object"`
				Created int64  `json:"created"`
				OwnedBy string `json:"owned_by"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 || list.Object != "list" {
			t.Fatalf("%d %v %s", resp.StatusCode, err, body)
		}
		var got []string
		for _, m := range list.Data {
			if m.Object != "model" || m.Created == 0 || m.OwnedBy != "mock" {
				t.Errorf("model entry: %+v", m)
			}
			got = append(got, m.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("models = %v, want %v", got, tt.want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name, method, path, key, body string
		status                        int
		code, message                 string
	}{
		{"bad JSON", "POST", "/v1/chat/completions", goodKey, `{"model":`, 400, "<null>", "We could not parse the JSON body"},
		{"not an object", "POST", "/v1/chat/completions", goodKey, `["gpt-4o"]`, 400, "<null>", "We could not parse the JSON body"},
		{"empty body", "POST", "/v1/embeddings", goodKey, ``, 400, "<null>", "We could not parse the JSON body"},
		{"missing model", "POST", "/v1/chat/completions", goodKey, `{"messages":[]}`, 400, "<null>", "you must provide a model parameter"},
		{"unknown model", "POST", "/v1/chat/completions", goodKey, `{"model":"gpt-9"}`, 404, "model_not_found", "The model `gpt-9` does not exist"},
		{"unknown embedding model", "POST", "/v1/embeddings", goodKey, `{"model":"x\"y","input":"a"}`, 404, "model_not_found", "The model `x\"y` does not exist"},
		// A client error is the request's fault whatever the key's health,
		// except a key that is invalid, which OpenAI checks first.
		{"bad JSON, rate-limited key", "POST", "/v1/chat/completions", "sk-limited", `nope`, 400, "<null>", "We could not parse"},
		{"bad JSON, dead key", "POST", "/v1/chat/completions", "sk-dead", `nope`, 401, "invalid_api_key", "Incorrect API key"},
		{"unknown model, dead key", "POST", "/v1/chat/completions", "sk-dead", `{"model":"gpt-9"}`, 401, "invalid_api_key", "Incorrect API key"},
		{"unknown route", "POST", "/v1/assistants", goodKey, `{}`, 404, "<null>", "Invalid URL (POST /v1/assistants)"},
		{"wrong method", "GET", "/v1/chat/completions", goodKey, ``, 404, "<null>", "Invalid URL (GET /v1/chat/completions)"},
		{"no /v1 prefix", "GET", "/models", goodKey, ``, 404, "<null>", "Invalid URL"},
	}
	_, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK, "sk-limited": RateLimited, "sk-dead": InvalidKey}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, srv, tt.method, tt.path, tt.key, tt.body)
			e := decodeError(t, body)
			if resp.StatusCode != tt.status || code(e) != tt.code || e.Error.Type != "invalid_request_error" ||
				!strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("%d %s, want %d code %s message ~%q", resp.StatusCode, body, tt.status, tt.code, tt.message)
			}
		})
	}
}

func TestSetBehavior(t *testing.T) {
	p, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}})
	for i, step := range []struct {
		set  Behavior
		want int
	}{{"", 200}, {RateLimited, 429}, {Overloaded, 503}, {OK, 200}} {
		if step.set != "" {
			p.SetBehavior(goodKey, step.set)
		}
		if resp, _ := call(t, srv, "POST", "/v1/chat/completions", goodKey, chatReq); resp.StatusCode != step.want {
			t.Errorf("step %d (%s): status %d, want %d", i, step.set, resp.StatusCode, step.want)
		}
	}
	p.SetBehavior("sk-new", OK) // a key the provider did not know
	if resp, _ := call(t, srv, "POST", "/v1/chat/completions", "sk-new", chatReq); resp.StatusCode != 200 {
		t.Errorf("new key: status %d", resp.StatusCode)
	}
	if p.Count(goodKey) != 4 || p.Count("sk-new") != 1 || p.Count("sk-other") != 0 {
		t.Errorf("counts = %d, %d, %d", p.Count(goodKey), p.Count("sk-new"), p.Count("sk-other"))
	}
}

func TestRecording(t *testing.T) {
	p, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}})
	stream := `{"model":"gpt-4o","stream":true}`
	call(t, srv, "POST", "/v1/chat/completions", goodKey, chatReq)
	call(t, srv, "POST", "/v1/chat/completions", "sk-bad", stream)
	call(t, srv, "GET", "/v1/models", "", "")

	reqs := p.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/chat/completions" || r.Key != goodKey || r.Model != "gpt-4o-mini" || r.Stream ||
		r.Authorization != "Bearer "+goodKey || string(r.Body) != chatReq || r.Header.Get("Content-Type") != "application/json" || r.Time.IsZero() {
		t.Errorf("first request: %+v", r)
	}
	if r := reqs[1]; r.Key != "sk-bad" || r.Model != "gpt-4o" || !r.Stream || string(r.Body) != stream {
		t.Errorf("second request: %+v", r)
	}
	if r := reqs[2]; r.Method != "GET" || r.Key != "" || r.Authorization != "" {
		t.Errorf("third request: %+v", r)
	}
	if p.Count(goodKey) != 1 || p.Count("sk-bad") != 1 || p.Count("") != 1 {
		t.Errorf("counts: %d %d %d", p.Count(goodKey), p.Count("sk-bad"), p.Count(""))
	}

	p.Reset()
	if len(p.Requests()) != 0 || p.Count(goodKey) != 0 || p.Canceled() != 0 {
		t.Errorf("after Reset: %d requests, count %d", len(p.Requests()), p.Count(goodKey))
	}
	if resp, _ := call(t, srv, "POST", "/v1/chat/completions", goodKey, chatReq); resp.StatusCode != 200 || p.Count(goodKey) != 1 {
		t.Errorf("after Reset the key's behaviour or count is lost: %d, count %d", resp.StatusCode, p.Count(goodKey))
	}

	t.Run("NoRecord", func(t *testing.T) {
		p, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}, NoRecord: true})
		call(t, srv, "POST", "/v1/chat/completions", goodKey, chatReq)
		if len(p.Requests()) != 0 || p.Count(goodKey) != 1 {
			t.Errorf("NoRecord: %d requests, count %d", len(p.Requests()), p.Count(goodKey))
		}
	})

	t.Run("bounded", func(t *testing.T) {
		p := New(Options{Default: OK})
		for i := range maxRecorded*2 + 5 {
			req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","n":`+fmt.Sprint(i)+`}`))
			req.Header.Set("Authorization", "Bearer sk-x")
			p.ServeHTTP(httptest.NewRecorder(), req)
		}
		reqs := p.Requests()
		if len(reqs) != maxRecorded || gjson.GetBytes(reqs[len(reqs)-1].Body, "n").Int() != maxRecorded*2+4 ||
			gjson.GetBytes(reqs[0].Body, "n").Int() != maxRecorded+5 {
			t.Errorf("%d recorded, last n=%s", len(reqs), gjson.GetBytes(reqs[len(reqs)-1].Body, "n").Raw)
		}
	})
}

// TestConcurrent is for -race: requests, SetBehavior, Count and Requests at once.
func TestConcurrent(t *testing.T) {
	p, srv := newServer(t, Options{Keys: map[string]Behavior{goodKey: OK}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				body := chatReq
				if j%2 == 0 {
					body = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`
				}
				call(t, srv, "POST", "/v1/chat/completions", goodKey, body)
				if i == 0 {
					p.SetBehavior(goodKey, []Behavior{OK, RateLimited}[j%2])
				}
				p.Count(goodKey)
				p.Requests()
			}
		})
	}
	wg.Wait()
	if p.Count(goodKey) != 160 || len(p.Requests()) != 160 {
		t.Errorf("count %d, recorded %d, want 160", p.Count(goodKey), len(p.Requests()))
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\tnl\nnul\x00\x1f", "héllo 世界 🙂", "bad\xffutf8", "\u2028"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantS string
		json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Errorf("appendString(%q) decodes to %q, want %q", s, got, wantS)
		}
	}
}

// discard is a ResponseWriter that costs nothing, so the benchmark measures
// the provider rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkChat(b *testing.B) {
	p := New(Options{Keys: map[string]Behavior{goodKey: OK}, NoRecord: true})
	body := []byte(chatReq)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rd := bytes.NewReader(body)
		req := httptest.NewRequest("POST", "/v1/chat/completions", rd)
		req.Header.Set("Authorization", "Bearer "+goodKey)
		w := &discard{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			clear(w.h)
			p.ServeHTTP(w, req)
		}
	})
}
