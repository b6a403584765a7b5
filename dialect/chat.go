package dialect

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
)

// ParseChatRequest reads an OpenAI chat completions request. The result
// points into body, which must not change while it is used.
func ParseChatRequest(body []byte) (*Request, error) {
	doc := parse(body)
	if !doc.IsObject() {
		return nil, fmt.Errorf("request body is not a JSON object")
	}
	req := &Request{}
	msgs := doc.Get("messages")
	if !msgs.IsArray() {
		return nil, fmt.Errorf("messages must be an array")
	}
	req.Messages = make([]Message, 0, 4)
	var err error
	msgs.ForEach(func(_, m gjson.Result) bool {
		role := m.Get("role").Str
		content := m.Get("content")
		switch role {
		case "system", "developer":
			req.System = append(req.System, textOf(content))
		case "user":
			msg := Message{Role: RoleUser}
			msg.Parts, err = chatParts(content, nil)
			req.Messages = append(req.Messages, msg)
		case "assistant":
			msg := Message{Role: RoleAssistant}
			if content.Exists() && content.Type != gjson.Null {
				msg.Parts, err = chatParts(content, msg.Parts)
			}
			m.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
				fn := tc.Get("function")
				msg.Parts = append(msg.Parts, Part{Type: PartToolCall, ID: literal(tc.Get("id")),
					Name: literal(fn.Get("name")), Input: objectOr(fn.Get("arguments").Str)})
				return true
			})
			req.Messages = append(req.Messages, msg)
		case "tool", "function":
			p := Part{Type: PartToolResult, ID: literal(m.Get("tool_call_id")), Content: textOf(content)}
			if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == RoleUser && lastIsToolResult(req.Messages[n-1]) {
				req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, p)
			} else {
				req.Messages = append(req.Messages, Message{Role: RoleUser, Parts: []Part{p}})
			}
		default:
			err = fmt.Errorf("messages: unknown role %q", role)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	doc.Get("tools").ForEach(func(_, t gjson.Result) bool {
		fn := t.Get("function")
		req.Tools = append(req.Tools, Tool{Name: literal(fn.Get("name")), Description: literal(fn.Get("description")),
			Schema: objectOr(fn.Get("parameters").Raw)})
		return true
	})
	switch tc := doc.Get("tool_choice"); {
	case tc.Type == gjson.String:
		req.ToolChoice.Mode = tc.Str
	case tc.IsObject():
		req.ToolChoice = ToolChoice{Mode: "tool", Name: literal(tc.Get("function.name"))}
	}
	req.MaxTokens = doc.Get("max_completion_tokens").Int()
	if req.MaxTokens == 0 {
		req.MaxTokens = doc.Get("max_tokens").Int()
	}
	req.Temperature = number(doc.Get("temperature"))
	req.TopP = number(doc.Get("top_p"))
	req.Stop = stops(doc.Get("stop"))
	req.Stream = doc.Get("stream").Bool()
	req.IncludeUsage = doc.Get("stream_options.include_usage").Bool()
	switch rf := doc.Get("response_format"); rf.Get("type").Str {
	case "json_object":
		req.JSON = true
	case "json_schema":
		req.JSON, req.Schema, req.SchemaName = true, objectOr(rf.Get("json_schema.schema").Raw), literal(rf.Get("json_schema.name"))
	}
	return req, nil
}

func lastIsToolResult(m Message) bool {
	return len(m.Parts) > 0 && m.Parts[len(m.Parts)-1].Type == PartToolResult
}

func number(r gjson.Result) string {
	if r.Type == gjson.Number {
		return r.Raw
	}
	return ""
}

func stops(r gjson.Result) []string {
	if r.Type == gjson.String {
		return []string{r.Raw}
	}
	var out []string
	r.ForEach(func(_, s gjson.Result) bool {
		if s.Type == gjson.String {
			out = append(out, s.Raw)
		}
		return true
	})
	return out
}

// chatParts reads an OpenAI content value: a string, or an array of text
// and image_url parts.
func chatParts(content gjson.Result, dst []Part) ([]Part, error) {
	if content.Type == gjson.String {
		return append(dst, Part{Type: PartText, Text: content.Raw}), nil
	}
	if !content.IsArray() {
		return dst, fmt.Errorf("message content must be a string or an array")
	}
	var err error
	content.ForEach(func(_, p gjson.Result) bool {
		switch typ := p.Get("type").Str; typ {
		case "text", "input_text", "output_text":
			dst = append(dst, Part{Type: PartText, Text: literal(p.Get("text"))})
		case "image_url", "input_image":
			u := p.Get("image_url")
			if u.IsObject() {
				u = u.Get("url")
			}
			dst = append(dst, imagePart(u.Str))
		default:
			err = fmt.Errorf("unsupported content part type %q", typ)
		}
		return err == nil
	})
	return dst, err
}

func imagePart(u string) Part {
	if mt, data, ok := splitDataURL(u); ok {
		return Part{Type: PartImage, MediaType: mt, Data: data}
	}
	return Part{Type: PartImage, URL: u, MediaType: guessMediaType(u)}
}

// AppendChatRequest writes req as an OpenAI chat completions request for
// model (a plain name). A stream asks for the usage chunk always, so the
// stream is billed.
func AppendChatRequest(b []byte, req *Request, model string) []byte {
	b = append(b, `{"model":`...)
	b = AppendString(b, model)
	b = append(b, `,"messages":[`...)
	for _, s := range req.System {
		b = comma(b)
		b = append(b, `{"role":"system","content":`...)
		b = append(b, s...)
		b = append(b, '}')
	}
	for i := range req.Messages {
		b = appendChatMessage(b, &req.Messages[i])
	}
	b = append(b, ']')
	if len(req.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i, t := range req.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"function","function":{"name":`...)
			b = appendLit(b, t.Name)
			if t.Description != "" {
				b = append(b, `,"description":`...)
				b = append(b, t.Description...)
			}
			b = append(b, `,"parameters":`...)
			b = append(b, t.Schema...)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	switch req.ToolChoice.Mode {
	case "auto", "none", "required":
		b = append(b, `,"tool_choice":"`...)
		b = append(b, req.ToolChoice.Mode...)
		b = append(b, '"')
	case "tool":
		b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
		b = appendLit(b, req.ToolChoice.Name)
		b = append(b, "}}"...)
	}
	if req.MaxTokens > 0 {
		b = append(b, `,"max_tokens":`...)
		b = appendInt(b, req.MaxTokens)
	}
	b = appendNumber(b, "temperature", req.Temperature)
	b = appendNumber(b, "top_p", req.TopP)
	if len(req.Stop) > 0 {
		b = append(b, `,"stop":`...)
		b = appendLits(b, req.Stop)
	}
	if req.Schema != "" {
		b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":`...)
		if req.SchemaName == "" {
			b = append(b, `"answer"`...)
		} else {
			b = append(b, req.SchemaName...)
		}
		b = append(b, `,"schema":`...)
		b = append(b, req.Schema...)
		b = append(b, "}}"...)
	} else if req.JSON {
		b = append(b, `,"response_format":{"type":"json_object"}`...)
	}
	if req.Stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}')
}

func appendNumber(b []byte, name, raw string) []byte {
	if raw == "" {
		return b
	}
	b = field(b, name)
	return append(b, raw...)
}

func appendLits(b []byte, lits []string) []byte {
	b = append(b, '[')
	for i, s := range lits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return append(b, ']')
}

func appendChatMessage(b []byte, m *Message) []byte {
	if m.Role == RoleAssistant {
		b = comma(b)
		b = append(b, `{"role":"assistant","content":`...)
		text := joinText(m.Parts)
		if text == "" {
			b = append(b, "null"...)
		} else {
			b = append(b, text...)
		}
		b = appendToolCalls(b, m.Parts)
		return append(b, '}')
	}
	// Tool results are messages of their own in OpenAI's dialect.
	rest := 0
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.Type != PartToolResult {
			rest++
			continue
		}
		b = comma(b)
		b = append(b, `{"role":"tool","tool_call_id":`...)
		b = appendLit(b, p.ID)
		b = append(b, `,"content":`...)
		b = appendLit(b, p.Content)
		b = append(b, '}')
	}
	if rest == 0 {
		return b
	}
	b = comma(b)
	b = append(b, `{"role":"user","content":`...)
	if rest == 1 && m.Parts[len(m.Parts)-1].Type == PartText {
		b = append(b, m.Parts[len(m.Parts)-1].Text...)
		return append(b, '}')
	}
	b = append(b, '[')
	for i := range m.Parts {
		p := &m.Parts[i]
		switch p.Type {
		case PartText:
			b = comma(b)
			b = append(b, `{"type":"text","text":`...)
			b = append(b, p.Text...)
			b = append(b, '}')
		case PartImage:
			b = comma(b)
			b = append(b, `{"type":"image_url","image_url":{"url":`...)
			b = appendImageURL(b, p)
			b = append(b, "}}"...)
		}
	}
	return append(b, "]}"...)
}

// appendToolCalls appends ,"tool_calls":[…] for the tool calls among
// parts (nothing when there are none), their arguments as a JSON string.
func appendToolCalls(b []byte, parts []Part) []byte {
	calls := 0
	for i := range parts {
		p := &parts[i]
		if p.Type != PartToolCall {
			continue
		}
		if calls == 0 {
			b = append(b, `,"tool_calls":[`...)
		} else {
			b = append(b, ',')
		}
		calls++
		b = append(b, `{"id":`...)
		b = appendLit(b, p.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendLit(b, p.Name)
		b = append(b, `,"arguments":`...)
		b = AppendString(b, p.Input)
		b = append(b, "}}"...)
	}
	if calls > 0 {
		b = append(b, ']')
	}
	return b
}

// joinText is the text parts of parts as one JSON string literal, or ""
// when there is none.
func joinText(parts []Part) string {
	n, last := 0, ""
	for i := range parts {
		if parts[i].Type == PartText {
			n++
			last = parts[i].Text
		}
	}
	if n <= 1 {
		return last
	}
	b := []byte{'"'}
	for i := range parts {
		if parts[i].Type == PartText {
			b = append(b, inner(parts[i].Text)...)
		}
	}
	return string(append(b, '"'))
}

// ParseChatResponse reads an OpenAI chat completion.
func ParseChatResponse(body []byte) (*Response, error) {
	doc := parse(body)
	if !doc.IsObject() {
		return nil, fmt.Errorf("answer is not a JSON object")
	}
	resp := &Response{ID: doc.Get("id").Str}
	choice := doc.Get("choices.0")
	msg := choice.Get("message")
	if c := msg.Get("content"); c.Type == gjson.String && c.Str != "" {
		resp.Parts = append(resp.Parts, Part{Type: PartText, Text: c.Raw})
	}
	msg.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		resp.Parts = append(resp.Parts, Part{Type: PartToolCall, ID: literal(tc.Get("id")),
			Name: literal(tc.Get("function.name")), Input: objectOr(tc.Get("function.arguments").Str)})
		return true
	})
	resp.Stop = chatStop(choice.Get("finish_reason").Str)
	resp.Usage, resp.HasUsage = ChatUsage(doc.Get("usage"))
	return resp, nil
}

// ChatUsage reads an OpenAI usage object (chat or completions).
func ChatUsage(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	return Usage{
		Input:     u.Get("prompt_tokens").Int(),
		Output:    u.Get("completion_tokens").Int(),
		CacheRead: u.Get("prompt_tokens_details.cached_tokens").Int(),
		Reasoning: u.Get("completion_tokens_details.reasoning_tokens").Int(),
	}, true
}

func chatStop(s string) StopReason {
	switch s {
	case "length":
		return StopMaxTokens
	case "tool_calls", "function_call":
		return StopToolUse
	case "content_filter":
		return StopFilter
	}
	return StopEnd
}

func chatFinish(s StopReason) string {
	switch s {
	case StopMaxTokens:
		return "length"
	case StopToolUse:
		return "tool_calls"
	case StopFilter:
		return "content_filter"
	}
	return "stop"
}

// AppendChatResponse writes resp as an OpenAI chat completion answering
// for model.
func AppendChatResponse(b []byte, resp *Response, model string, created int64) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, chatID(resp.ID))
	b = append(b, `,"object":"chat.completion","created":`...)
	b = appendInt(b, created)
	b = append(b, `,"model":`...)
	b = AppendString(b, model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if t := joinText(resp.Parts); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "null"...)
	}
	b = appendToolCalls(b, resp.Parts)
	b = append(b, `},"logprobs":null,"finish_reason":"`...)
	b = append(b, chatFinish(resp.Stop)...)
	b = append(b, `"}],"usage":`...)
	b = appendChatUsage(b, resp.Usage)
	return append(b, '}')
}

func appendChatUsage(b []byte, u Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.Input)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.Output)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, u.Input+u.Output)
	if u.CacheRead > 0 {
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = appendInt(b, u.CacheRead)
		b = append(b, '}')
	}
	return append(b, '}')
}

// chatID is id when it looks like OpenAI's, else one derived from it.
func chatID(id string) string {
	if len(id) > 9 && id[:9] == "chatcmpl-" {
		return id
	}
	if id == "" {
		return "chatcmpl-keygate"
	}
	return "chatcmpl-" + id
}

// toolCallID synthesises an id for a provider (Gemini) that gives none.
func toolCallID(i int) string { return `"call_` + strconv.Itoa(i) + `"` }
