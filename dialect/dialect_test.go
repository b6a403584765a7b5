package dialect

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// chatFull is a chat request using every translated feature.
const chatFull = `{"model":"m","messages":[
 {"role":"system","content":"Be \"brief\"."},
 {"role":"user","content":[{"type":"text","text":"What is in these?"},
   {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}},
   {"type":"image_url","image_url":{"url":"https://example.com/cat.webp"}}]},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
 {"role":"tool","tool_call_id":"call_1","content":"sunny, 21\u00b0C"},
 {"role":"user","content":"thanks"}],
 "tools":[{"type":"function","function":{"name":"weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
 "tool_choice":"required","max_tokens":300,"temperature":0.2,"top_p":0.9,"stop":["END"],"stream":true}`

func mustJSON(t *testing.T, b []byte) gjson.Result {
	t.Helper()
	if !gjson.ValidBytes(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	return gjson.ParseBytes(b)
}

func eq(t *testing.T, doc gjson.Result, path string, want any) {
	t.Helper()
	got := doc.Get(path)
	var g any
	switch want.(type) {
	case string:
		g = got.String()
	case int:
		g = int(got.Int())
	case float64:
		g = got.Float()
	case bool:
		g = got.Bool()
	}
	if g != want {
		t.Errorf("%s = %v (raw %s), want %v", path, g, got.Raw, want)
	}
}

func TestChatToAnthropicRequest(t *testing.T) {
	req, err := ParseChatRequest([]byte(chatFull))
	if err != nil {
		t.Fatal(err)
	}
	doc := mustJSON(t, AppendMessagesRequest(nil, req, "claude-x", 0))
	eq(t, doc, "model", "claude-x")
	eq(t, doc, "system", `Be "brief".`)
	eq(t, doc, "max_tokens", 300)
	eq(t, doc, "temperature", 0.2)
	eq(t, doc, "top_p", 0.9)
	eq(t, doc, "stop_sequences.0", "END")
	eq(t, doc, "stream", true)
	eq(t, doc, "messages.#", 3)
	eq(t, doc, "messages.0.role", "user")
	eq(t, doc, "messages.0.content.0.text", "What is in these?")
	eq(t, doc, "messages.0.content.1.source.type", "base64")
	eq(t, doc, "messages.0.content.1.source.media_type", "image/png")
	eq(t, doc, "messages.0.content.1.source.data", "iVBORw0K")
	eq(t, doc, "messages.0.content.2.source.type", "url")
	eq(t, doc, "messages.0.content.2.source.url", "https://example.com/cat.webp")
	eq(t, doc, "messages.1.role", "assistant")
	eq(t, doc, "messages.1.content.0.type", "tool_use")
	eq(t, doc, "messages.1.content.0.id", "call_1")
	eq(t, doc, "messages.1.content.0.input.city", "Paris")
	// The tool result and the next user text are one user turn.
	eq(t, doc, "messages.2.role", "user")
	eq(t, doc, "messages.2.content.0.type", "tool_result")
	eq(t, doc, "messages.2.content.0.tool_use_id", "call_1")
	eq(t, doc, "messages.2.content.0.content", "sunny, 21°C")
	eq(t, doc, "messages.2.content.1.text", "thanks")
	eq(t, doc, "tools.0.name", "weather")
	eq(t, doc, "tools.0.description", "Weather now")
	eq(t, doc, "tools.0.input_schema.required.0", "city")
	eq(t, doc, "tool_choice.type", "any")
}

func TestAnthropicNeedsMaxTokens(t *testing.T) {
	req, _ := ParseChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	eq(t, mustJSON(t, AppendMessagesRequest(nil, req, "c", 0)), "max_tokens", DefaultMaxTokens)
	eq(t, mustJSON(t, AppendMessagesRequest(nil, req, "c", 1000)), "max_tokens", 1000)
}

func TestChatToGeminiRequest(t *testing.T) {
	req, err := ParseChatRequest([]byte(chatFull))
	if err != nil {
		t.Fatal(err)
	}
	doc := mustJSON(t, AppendGeminiRequest(nil, req))
	eq(t, doc, "systemInstruction.parts.0.text", `Be "brief".`)
	eq(t, doc, "contents.#", 3)
	eq(t, doc, "contents.0.role", "user")
	eq(t, doc, "contents.0.parts.1.inlineData.mimeType", "image/png")
	eq(t, doc, "contents.0.parts.1.inlineData.data", "iVBORw0K")
	eq(t, doc, "contents.0.parts.2.fileData.fileUri", "https://example.com/cat.webp")
	eq(t, doc, "contents.0.parts.2.fileData.mimeType", "image/webp")
	eq(t, doc, "contents.1.role", "model")
	eq(t, doc, "contents.1.parts.0.functionCall.name", "weather")
	eq(t, doc, "contents.1.parts.0.functionCall.args.city", "Paris")
	eq(t, doc, "contents.2.parts.0.functionResponse.name", "weather")
	eq(t, doc, "contents.2.parts.0.functionResponse.response.content", "sunny, 21°C")
	eq(t, doc, "contents.2.parts.1.text", "thanks")
	eq(t, doc, "tools.0.functionDeclarations.0.name", "weather")
	eq(t, doc, "tools.0.functionDeclarations.0.parametersJsonSchema.properties.city.type", "string")
	eq(t, doc, "toolConfig.functionCallingConfig.mode", "ANY")
	eq(t, doc, "generationConfig.maxOutputTokens", 300)
	eq(t, doc, "generationConfig.temperature", 0.2)
	eq(t, doc, "generationConfig.topP", 0.9)
	eq(t, doc, "generationConfig.stopSequences.0", "END")
}

func TestMessagesToChatRequest(t *testing.T) {
	body := `{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"sys one"},{"type":"text","text":"sys two"}],
	 "messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}}]},
	  {"role":"assistant","content":[{"type":"text","text":"calling"},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x"}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"found"}],"is_error":false}]}],
	 "tools":[{"name":"lookup","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"lookup"},"top_k":5,"stream":true}`
	req, err := ParseMessagesRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	doc := mustJSON(t, AppendChatRequest(nil, req, "gpt-x"))
	eq(t, doc, "model", "gpt-x")
	eq(t, doc, "messages.0.role", "system")
	eq(t, doc, "messages.0.content", "sys one")
	eq(t, doc, "messages.1.content", "sys two")
	eq(t, doc, "messages.2.role", "user")
	eq(t, doc, "messages.2.content.0.text", "look")
	eq(t, doc, "messages.2.content.1.image_url.url", "data:image/jpeg;base64,/9j/4AAQ")
	eq(t, doc, "messages.3.role", "assistant")
	eq(t, doc, "messages.3.content", "calling")
	eq(t, doc, "messages.3.tool_calls.0.id", "toolu_1")
	eq(t, doc, "messages.3.tool_calls.0.function.name", "lookup")
	eq(t, doc, "messages.3.tool_calls.0.function.arguments", `{"q":"x"}`)
	eq(t, doc, "messages.4.role", "tool")
	eq(t, doc, "messages.4.tool_call_id", "toolu_1")
	eq(t, doc, "messages.4.content", "found")
	eq(t, doc, "messages.#", 5)
	eq(t, doc, "tools.0.function.name", "lookup")
	eq(t, doc, "tool_choice.function.name", "lookup")
	eq(t, doc, "max_tokens", 64)
	eq(t, doc, "stream", true)
	eq(t, doc, "stream_options.include_usage", true)
}

func TestResponsesToAnthropicRequest(t *testing.T) {
	body := `{"model":"m","instructions":"be kind","input":[
	  {"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://x.test/a.png"}]},
	  {"type":"function_call","call_id":"call_9","name":"f","arguments":"{\"a\":1}"},
	  {"type":"function_call_output","call_id":"call_9","output":"ok"}],
	 "tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"}}],
	 "max_output_tokens":50,"temperature":1}`
	req, err := ParseResponsesRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	doc := mustJSON(t, AppendMessagesRequest(nil, req, "claude", 0))
	eq(t, doc, "system", "be kind")
	eq(t, doc, "max_tokens", 50)
	eq(t, doc, "messages.0.content.1.source.url", "https://x.test/a.png")
	eq(t, doc, "messages.1.content.0.type", "tool_use")
	eq(t, doc, "messages.1.content.0.input.a", 1)
	eq(t, doc, "messages.2.content.0.tool_use_id", "call_9")
	eq(t, doc, "messages.2.content.0.content", "ok")
	eq(t, doc, "tools.0.input_schema.type", "object")

	if _, err := ParseResponsesRequest([]byte(`{"model":"m","input":"x","tools":[{"type":"web_search"}]}`)); err == nil {
		t.Error("a web_search tool for a non-OpenAI provider should be refused")
	}
	req, _ = ParseResponsesRequest([]byte(`{"model":"m","input":"just text"}`))
	eq(t, mustJSON(t, AppendChatRequest(nil, req, "g")), "messages.0.content", "just text")
}

const anthropicAnswer = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-x",
 "content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01","name":"weather","input":{"city":"Oslo"}}],
 "stop_reason":"tool_use","stop_sequence":null,
 "usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":20}}`

func TestAnthropicAnswerToEachCaller(t *testing.T) {
	resp, err := ParseMessagesResponse([]byte(anthropicAnswer))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Input != 115 || resp.Usage.Output != 20 || resp.Usage.CacheRead != 100 || resp.Usage.CacheWrite != 5 {
		t.Errorf("usage = %+v, want input 115 (cache included), output 20", resp.Usage)
	}
	chat := mustJSON(t, AppendChatResponse(nil, resp, "my-model", 7))
	eq(t, chat, "object", "chat.completion")
	eq(t, chat, "model", "my-model")
	eq(t, chat, "choices.0.message.content", "Let me check.")
	eq(t, chat, "choices.0.message.tool_calls.0.id", "toolu_01")
	eq(t, chat, "choices.0.message.tool_calls.0.function.arguments", `{"city":"Oslo"}`)
	eq(t, chat, "choices.0.finish_reason", "tool_calls")
	eq(t, chat, "usage.prompt_tokens", 115)
	eq(t, chat, "usage.completion_tokens", 20)
	eq(t, chat, "usage.total_tokens", 135)
	eq(t, chat, "usage.prompt_tokens_details.cached_tokens", 100)

	r := mustJSON(t, AppendResponsesResponse(nil, resp, "my-model", 7))
	eq(t, r, "object", "response")
	eq(t, r, "status", "completed")
	eq(t, r, "output.0.type", "message")
	eq(t, r, "output.0.content.0.type", "output_text")
	eq(t, r, "output.0.content.0.text", "Let me check.")
	eq(t, r, "output.1.type", "function_call")
	eq(t, r, "output.1.call_id", "toolu_01")
	eq(t, r, "output.1.arguments", `{"city":"Oslo"}`)
	eq(t, r, "usage.input_tokens", 115)
	eq(t, r, "usage.output_tokens", 20)
	eq(t, r, "usage.input_tokens_details.cached_tokens", 100)

	m := mustJSON(t, AppendMessagesResponse(nil, resp, "my-model"))
	eq(t, m, "usage.input_tokens", 10)
	eq(t, m, "usage.cache_read_input_tokens", 100)
	eq(t, m, "content.1.input.city", "Oslo")
}

func TestGeminiAnswerToChat(t *testing.T) {
	body := `{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"Hi "},{"text":"there"},
	  {"functionCall":{"name":"f","args":{"x":[1,2]}}}],"role":"model"},"finishReason":"STOP","index":0}],
	 "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":4,"thoughtsTokenCount":2,"totalTokenCount":14},
	 "modelVersion":"gemini-2.5-flash","responseId":"abc"}`
	resp, err := ParseGeminiResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	chat := mustJSON(t, AppendChatResponse(nil, resp, "g", 1))
	eq(t, chat, "choices.0.message.content", "Hi there")
	eq(t, chat, "choices.0.message.tool_calls.0.function.name", "f")
	eq(t, chat, "choices.0.message.tool_calls.0.function.arguments", `{"x":[1,2]}`)
	eq(t, chat, "choices.0.finish_reason", "tool_calls")
	eq(t, chat, "usage.prompt_tokens", 8)
	eq(t, chat, "usage.completion_tokens", 6)

	max := `{"candidates":[{"content":{"parts":[{"text":"cut"}],"role":"model"},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}`
	resp, _ = ParseGeminiResponse([]byte(max))
	eq(t, mustJSON(t, AppendMessagesResponse(nil, resp, "g")), "stop_reason", "max_tokens")
	eq(t, mustJSON(t, AppendResponsesResponse(nil, resp, "g", 1)), "status", "incomplete")
}

func TestChatAnswerToMessages(t *testing.T) {
	body := `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a\nb"},"finish_reason":"length"}],
	 "usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4}}}`
	resp, err := ParseChatResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := mustJSON(t, AppendMessagesResponse(nil, resp, "claude-alias"))
	eq(t, m, "type", "message")
	eq(t, m, "model", "claude-alias")
	eq(t, m, "content.0.text", "a\nb")
	eq(t, m, "stop_reason", "max_tokens")
	eq(t, m, "usage.input_tokens", 5)
	eq(t, m, "usage.cache_read_input_tokens", 4)
	eq(t, m, "usage.output_tokens", 3)
}

// sseEvent is one server-sent event of a test stream.
type sseEvent struct{ name, data string }

// splitSSE splits a stream into events (test helper; the relay has its own
// reader).
func splitSSE(s string) []sseEvent {
	var out []sseEvent
	for _, block := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(line, "event:"):
				ev.name = strings.TrimSpace(line[6:])
			case strings.HasPrefix(line, "data:"):
				ev.data = strings.TrimPrefix(line[5:], " ")
			}
		}
		if ev.data != "" {
			out = append(out, ev)
		}
	}
	return out
}

func translate(t *testing.T, wire, caller, upstream string, includeUsage bool) (*Stream, []sseEvent) {
	t.Helper()
	s := NewStream(wire, caller, "alias", 42, includeUsage)
	var out []byte
	for _, ev := range splitSSE(upstream) {
		out = s.Translate(out, []byte(ev.name), []byte(ev.data))
	}
	out = s.Finish(out)
	evs := splitSSE(string(out))
	for _, ev := range evs {
		if ev.data != "[DONE]" && !gjson.Valid(ev.data) {
			t.Fatalf("invalid JSON in translated event %q: %s", ev.name, ev.data)
		}
	}
	return s, evs
}

// anthropicStream is Anthropic's stream for a text block then a tool call.
const anthropicStream = `event: message_start
data: {"type":"message_start","message":{"model":"claude-x","id":"msg_01K2","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":849,"cache_creation_input_tokens":0,"cache_read_input_tokens":51,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll \"check\""}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01K","name":"weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisco\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":47}}

event: message_stop
data: {"type":"message_stop"}

`

func TestAnthropicStreamToChat(t *testing.T) {
	s, evs := translate(t, WireAnthropic, Chat, anthropicStream, false)
	var text, args strings.Builder
	var finish, id, name string
	for _, ev := range evs {
		if ev.data == "[DONE]" {
			continue
		}
		d := gjson.Parse(ev.data)
		if d.Get("usage").IsObject() {
			t.Errorf("usage chunk sent to a caller that did not ask for it: %s", ev.data)
		}
		eq(t, d, "object", "chat.completion.chunk")
		eq(t, d, "model", "alias")
		delta := d.Get("choices.0.delta")
		text.WriteString(delta.Get("content").Str)
		if tc := delta.Get("tool_calls.0"); tc.Exists() {
			if tc.Get("id").Exists() {
				id, name = tc.Get("id").Str, tc.Get("function.name").Str
			}
			args.WriteString(tc.Get("function.arguments").Str)
		}
		if f := d.Get("choices.0.finish_reason"); f.Type == gjson.String {
			finish = f.Str
		}
	}
	if got := text.String(); got != `I'll "check"` {
		t.Errorf("text = %q", got)
	}
	if id != "toolu_01K" || name != "weather" || args.String() != `{"city": "San Francisco"}` {
		t.Errorf("tool call = %q %q %q", id, name, args.String())
	}
	if finish != "tool_calls" {
		t.Errorf("finish_reason = %q", finish)
	}
	if evs[len(evs)-1].data != "[DONE]" {
		t.Errorf("stream does not end with [DONE]: %v", evs[len(evs)-1])
	}
	if !s.HasUsage || s.Usage.Input != 900 || s.Usage.Output != 47 || s.Usage.CacheRead != 51 {
		t.Errorf("usage = %+v", s.Usage)
	}

	_, evs = translate(t, WireAnthropic, Chat, anthropicStream, true)
	u := gjson.Parse(evs[len(evs)-2].data)
	eq(t, u, "choices.#", 0)
	eq(t, u, "usage.prompt_tokens", 900)
	eq(t, u, "usage.completion_tokens", 47)
}

func TestAnthropicStreamToResponses(t *testing.T) {
	_, evs := translate(t, WireAnthropic, Responses, anthropicStream, false)
	var types []string
	seq := int64(0)
	var text strings.Builder
	for _, ev := range evs {
		d := gjson.Parse(ev.data)
		if ev.name != d.Get("type").Str {
			t.Errorf("event name %q, data type %q", ev.name, d.Get("type").Str)
		}
		if n := d.Get("sequence_number").Int(); n != seq {
			t.Errorf("sequence_number %d, want %d", n, seq)
		}
		seq++
		types = append(types, ev.name)
		if ev.name == "response.output_text.delta" {
			text.WriteString(d.Get("delta").Str)
		}
	}
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done", "response.completed"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n got %v\nwant %v", types, want)
	}
	if text.String() != `I'll "check"` {
		t.Errorf("text deltas = %q", text.String())
	}
	done := gjson.Parse(evs[len(evs)-1].data).Get("response")
	eq(t, done, "status", "completed")
	eq(t, done, "output.0.content.0.text", `I'll "check"`)
	eq(t, done, "output.1.type", "function_call")
	eq(t, done, "output.1.name", "weather")
	eq(t, done, "output.1.arguments", `{"city": "San Francisco"}`)
	eq(t, done, "usage.input_tokens", 900)
	eq(t, done, "usage.output_tokens", 47)
	eq(t, done, "usage.total_tokens", 947)
	args := gjson.Parse(evs[11].data)
	eq(t, args, "arguments", `{"city": "San Francisco"}`)
}

// chatStream is OpenAI's stream of a tool call with the usage chunk.
const chatStream = `data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"content":"On it"},"finish_reason":null}]}

data:{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}

data: [DONE]

`

func TestChatStreamToMessages(t *testing.T) {
	s, evs := translate(t, WireOpenAI, Messages, chatStream, false)
	var types []string
	for _, ev := range evs {
		if ev.name != gjson.Get(ev.data, "type").Str {
			t.Errorf("event %q carries type %q", ev.name, gjson.Get(ev.data, "type").Str)
		}
		types = append(types, ev.name)
	}
	want := "message_start content_block_start content_block_delta content_block_stop content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(types, " ") != want {
		t.Errorf("events:\n got %v\nwant %s", types, want)
	}
	eq(t, gjson.Parse(evs[0].data), "message.model", "alias")
	eq(t, gjson.Parse(evs[1].data), "content_block.type", "text")
	eq(t, gjson.Parse(evs[2].data), "delta.text", "On it")
	eq(t, gjson.Parse(evs[4].data), "content_block.type", "tool_use")
	eq(t, gjson.Parse(evs[4].data), "content_block.id", "call_A")
	eq(t, gjson.Parse(evs[4].data), "index", 1)
	eq(t, gjson.Parse(evs[5].data), "delta.partial_json", `{"a":`)
	md := gjson.Parse(evs[8].data)
	eq(t, md, "delta.stop_reason", "tool_use")
	eq(t, md, "usage.output_tokens", 7)
	eq(t, md, "usage.input_tokens", 12)
	if s.Usage.Input != 12 || s.Usage.Output != 7 {
		t.Errorf("usage = %+v", s.Usage)
	}
}

const geminiStream = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 5,\"totalTokenCount\": 5},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\":\"r1\"}\r\n\r\n" +
	"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"},{\"functionCall\":{\"name\":\"f\",\"args\":{\"q\":\"a\\\"b\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 5,\"candidatesTokenCount\": 3,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n"

func TestGeminiStreamToChatAndMessages(t *testing.T) {
	s, evs := translate(t, WireGemini, Chat, geminiStream, true)
	var text, args strings.Builder
	finish := ""
	for _, ev := range evs[:len(evs)-1] {
		d := gjson.Parse(ev.data)
		text.WriteString(d.Get("choices.0.delta.content").Str)
		args.WriteString(d.Get("choices.0.delta.tool_calls.0.function.arguments").Str)
		if f := d.Get("choices.0.finish_reason"); f.Type == gjson.String {
			finish = f.Str
		}
	}
	if text.String() != "Hello" || args.String() != `{"q":"a\"b"}` || finish != "tool_calls" {
		t.Errorf("text %q args %q finish %q", text.String(), args.String(), finish)
	}
	eq(t, gjson.Parse(evs[len(evs)-2].data), "usage.completion_tokens", 3)
	if s.Usage.Input != 5 || s.Usage.Output != 3 {
		t.Errorf("usage = %+v", s.Usage)
	}

	_, evs = translate(t, WireGemini, Messages, geminiStream, false)
	last := gjson.Parse(evs[len(evs)-2].data)
	eq(t, last, "type", "message_delta")
	eq(t, last, "delta.stop_reason", "tool_use")
	eq(t, last, "usage.output_tokens", 3)
	eq(t, gjson.Parse(evs[len(evs)-1].data), "type", "message_stop")
}

func TestStreamErrorEvent(t *testing.T) {
	up := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}\n\n" +
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	_, evs := translate(t, WireAnthropic, Chat, up, false)
	found := false
	for _, ev := range evs {
		if gjson.Get(ev.data, "error.message").Str == "Overloaded" {
			found = true
			eq(t, gjson.Parse(ev.data), "error.type", "overloaded_error")
		}
	}
	if !found {
		t.Errorf("the provider's error did not reach the chat caller: %v", evs)
	}
}

func TestErrorsInCallerDialect(t *testing.T) {
	gem := `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}`
	m := mustJSON(t, TranslateError(nil, WireGemini, Messages, 400, []byte(gem)))
	eq(t, m, "type", "error")
	eq(t, m, "error.type", "invalid_request_error")
	eq(t, m, "error.message", "API key not valid. Please pass a valid API key.")

	ant := `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`
	c := mustJSON(t, TranslateError(nil, WireAnthropic, Chat, 429, []byte(ant)))
	eq(t, c, "error.message", "slow down")
	eq(t, c, "error.type", "rate_limit_error")

	oa := `{"error":{"message":"over","type":"server_error","code":null}}`
	eq(t, mustJSON(t, TranslateError(nil, WireOpenAI, Messages, 529, []byte(oa))), "error.type", "overloaded_error")
	eq(t, mustJSON(t, TranslateError(nil, WireOpenAI, Messages, 502, []byte("<html>bad gateway</html>"))), "error.type", "api_error")

	k := mustJSON(t, AppendError(nil, Messages, 404, "model_not_found", "", "The model `x` does not exist"))
	eq(t, k, "error.type", "not_found_error")
	eq(t, k, "error.message", "model_not_found: The model `x` does not exist")
}

func TestBadRequests(t *testing.T) {
	for _, tc := range []struct{ caller, body string }{
		{Chat, `{"model":"m","messages":"x"}`},
		{Chat, `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`},
		{Chat, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`},
		{Messages, `{"model":"m","max_tokens":1}`},
		{Messages, `{"model":"m","messages":[{"role":"user","content":[{"type":"document"}]}]}`},
		{Responses, `{"model":"m","input":3}`},
		{Responses, `{"model":"m","input":"x","previous_response_id":"resp_1"}`},
	} {
		if _, err := ParseRequest(tc.caller, []byte(tc.body)); err == nil {
			t.Errorf("%s %s: accepted", tc.caller, tc.body)
		}
	}
}

// Structured output: OpenAI's response_format and the Responses API's
// text.format become Gemini's responseMimeType and responseJsonSchema, and
// chat's response_format for an Azure (chat) upstream.
func TestJSONOutput(t *testing.T) {
	req, err := ParseChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],
	  "response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object","properties":{"age":{"type":"integer"}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	g := mustJSON(t, AppendGeminiRequest(nil, req))
	eq(t, g, "generationConfig.responseMimeType", "application/json")
	eq(t, g, "generationConfig.responseJsonSchema.properties.age.type", "integer")

	req, _ = ParseResponsesRequest([]byte(`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"p","schema":{"type":"object"}}}}`))
	c := mustJSON(t, AppendChatRequest(nil, req, "gpt"))
	eq(t, c, "response_format.type", "json_schema")
	eq(t, c, "response_format.json_schema.name", "p")
	eq(t, c, "response_format.json_schema.schema.type", "object")

	req, _ = ParseChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`))
	eq(t, mustJSON(t, AppendGeminiRequest(nil, req)), "generationConfig.responseMimeType", "application/json")
}
