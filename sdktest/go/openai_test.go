// Package sdktest drives a real keygate with the official openai-go SDK.
// scripts/sdk-test.sh starts keygate with the mock provider behind it and
// sets KEYGATE_SDK_INFO; without it the tests skip.
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

type info struct {
	BaseURL      string `json:"base_url"`
	Root         string `json:"root"`
	Token        string `json:"token"`
	LimitedToken string `json:"limited_token"`
	AdminToken   string `json:"admin_token"`
	Chat         string `json:"chat_model"`
	Embeddings   string `json:"embedding_model"`
	Limited      string `json:"limited_model"`
}

func load(t *testing.T) info {
	t.Helper()
	path := os.Getenv("KEYGATE_SDK_INFO")
	if path == "" {
		t.Skip("KEYGATE_SDK_INFO not set: run scripts/sdk-test.sh")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in info
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func client(in info, token string) openai.Client {
	return openai.NewClient(option.WithBaseURL(in.BaseURL), option.WithAPIKey(token), option.WithMaxRetries(0))
}

var hello = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there")}

func TestChatAndRequestID(t *testing.T) {
	in := load(t)
	c := client(in, in.Token)
	var raw *http.Response
	r, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: in.Chat, Messages: hello},
		option.WithResponseInto(&raw), option.WithHeader("X-Request-Id", "go-sdk-trace-7"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Choices[0].Message.Content == "" || r.Usage.TotalTokens == 0 {
		t.Fatalf("answer %+v", r)
	}
	if raw.Header.Get("X-Request-Id") != "go-sdk-trace-7" || !strings.HasPrefix(raw.Header.Get("X-Keygate-Key"), "k_") {
		t.Fatalf("headers %v", raw.Header)
	}
}

func TestStreamsWithAndWithoutUsage(t *testing.T) {
	in := load(t)
	c := client(in, in.Token)
	for _, include := range []bool{false, true} {
		p := openai.ChatCompletionNewParams{Model: in.Chat, Messages: hello}
		if include {
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		}
		s := c.Chat.Completions.NewStreaming(context.Background(), p)
		var acc openai.ChatCompletionAccumulator
		usage := false
		for s.Next() {
			ch := s.Current()
			acc.AddChunk(ch)
			if ch.Usage.TotalTokens > 0 {
				usage = true
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if usage != include || acc.Choices[0].Message.Content == "" {
			t.Fatalf("include_usage=%v: usage seen %v, text %q", include, usage, acc.Choices[0].Message.Content)
		}
	}
}

func TestEmbeddingsFloatAndBase64(t *testing.T) {
	in := load(t)
	c := client(in, in.Token)
	var lens []int
	for _, f := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		r, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Model: in.Embeddings, Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}, EncodingFormat: f})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		lens = append(lens, len(r.Data[0].Embedding))
	}
	if lens[0] == 0 || lens[0] != lens[1] {
		t.Fatalf("float and base64 vectors: %v", lens)
	}
}

func TestModelsListAndGet(t *testing.T) {
	in := load(t)
	c := client(in, in.Token)
	page, err := c.Models.List(context.Background())
	if err != nil || len(page.Data) < 2 {
		t.Fatalf("list: %v %v", err, page)
	}
	m, err := c.Models.Get(context.Background(), in.Chat)
	if err != nil || m.ID != in.Chat {
		t.Fatalf("get: %v %v", err, m)
	}
}

func TestToolCall(t *testing.T) {
	in := load(t)
	c := client(in, in.Token)
	r, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: in.Chat, Messages: hello,
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "lookup", Parameters: shared.FunctionParameters{"type": "object"}})}})
	if err != nil {
		t.Fatal(err)
	}
	call := r.Choices[0].Message.ToolCalls[0]
	if call.Function.Name != "lookup" || !strings.Contains(call.Function.Arguments, "hello there") {
		t.Fatalf("tool call %+v", call)
	}
}

func TestErrorClasses(t *testing.T) {
	in := load(t)
	cases := []struct {
		token, model string
		status       int
		code         string
	}{
		{"kg-wrong", in.Chat, 401, "invalid_api_key"},
		{in.LimitedToken, in.Chat, 403, "model_not_allowed"},
		{in.Token, "gpt-9", 404, "model_not_found"},
		{in.Token, in.Limited, 429, "rate_limit_exceeded"},
	}
	for _, tc := range cases {
		c := client(in, tc.token)
		_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: tc.model, Messages: hello})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code {
			t.Errorf("%s on %s: want %d %s, got %v", tc.token, tc.model, tc.status, tc.code, err)
		}
	}
	c := client(in, in.Token)
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: in.Chat, Messages: hello, MaxTokens: openai.Int(-1)})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Errorf("max_tokens -1: want 400, got %v", err)
	}
}

func TestOrganizationFromTheEnvironmentHurtsNoKey(t *testing.T) {
	in := load(t)
	t.Setenv("OPENAI_ORG_ID", "org-of-someone-else")
	t.Setenv("OPENAI_PROJECT_ID", "proj-of-someone-else")
	c := client(in, in.Token)
	for i := 0; i < 6; i++ {
		if _, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: in.Chat, Messages: hello}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, in.Root+"/api/v1/keys", nil)
	req.Header.Set("Authorization", "Bearer "+in.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var keys struct{ Data []struct{ ID, Status string } }
	json.NewDecoder(resp.Body).Decode(&keys)
	for _, k := range keys.Data {
		if k.Status == "disabled" {
			t.Errorf("key %s disabled by a caller's organisation header", k.ID)
		}
	}
}
