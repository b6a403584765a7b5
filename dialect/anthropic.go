package dialect

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// DefaultMaxTokens is sent to Anthropic, which requires max_tokens, when
// the caller's dialect left it out and the model configures none.
const DefaultMaxTokens = 4096

// ParseMessagesRequest reads an Anthropic Messages request.
func ParseMessagesRequest(body []byte) (*Request, error) {
	doc := parse(body)
	if !doc.IsObject() {
		return nil, fmt.Errorf("request body is not a JSON object")
	}
	req := &Request{}
	switch sys := doc.Get("system"); {
	case sys.Type == gjson.String:
		req.System = append(req.System, sys.Raw)
	case sys.IsArray():
		sys.ForEach(func(_, blk gjson.Result) bool {
			if t := blk.Get("text"); t.Type == gjson.String {
				req.System = append(req.System, t.Raw)
			}
			return true
		})
	}
	msgs := doc.Get("messages")
	if !msgs.IsArray() {
		return nil, fmt.Errorf("messages: Field required")
	}
	req.Messages = make([]Message, 0, 4)
	var err error
	msgs.ForEach(func(_, m gjson.Result) bool {
		msg := Message{Role: RoleUser}
		switch r := m.Get("role").Str; r {
		case "user":
		case "assistant":
			msg.Role = RoleAssistant
		default:
			err = fmt.Errorf("messages: unexpected role %q", r)
			return false
		}
		msg.Parts, err = anthropicBlocks(m.Get("content"), nil)
		req.Messages = append(req.Messages, msg)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	doc.Get("tools").ForEach(func(_, t gjson.Result) bool {
		req.Tools = append(req.Tools, Tool{Name: literal(t.Get("name")), Description: literal(t.Get("description")),
			Schema: objectOr(t.Get("input_schema").Raw)})
		return true
	})
	if tc := doc.Get("tool_choice"); tc.IsObject() {
		switch tc.Get("type").Str {
		case "auto":
			req.ToolChoice.Mode = "auto"
		case "any":
			req.ToolChoice.Mode = "required"
		case "none":
			req.ToolChoice.Mode = "none"
		case "tool":
			req.ToolChoice = ToolChoice{Mode: "tool", Name: literal(tc.Get("name"))}
		}
	}
	req.MaxTokens = doc.Get("max_tokens").Int()
	req.Temperature = number(doc.Get("temperature"))
	req.TopP = number(doc.Get("top_p"))
	req.TopK = number(doc.Get("top_k"))
	req.Stop = stops(doc.Get("stop_sequences"))
	req.Stream = doc.Get("stream").Bool()
	req.IncludeUsage = true
	return req, nil
}

func anthropicBlocks(content gjson.Result, dst []Part) ([]Part, error) {
	if content.Type == gjson.String {
		return append(dst, Part{Type: PartText, Text: content.Raw}), nil
	}
	if !content.IsArray() {
		return dst, fmt.Errorf("messages: content must be a string or a list of blocks")
	}
	var err error
	content.ForEach(func(_, blk gjson.Result) bool {
		switch typ := blk.Get("type").Str; typ {
		case "text":
			dst = append(dst, Part{Type: PartText, Text: literal(blk.Get("text"))})
		case "image":
			src := blk.Get("source")
			if src.Get("type").Str == "url" {
				u := src.Get("url").Str
				dst = append(dst, Part{Type: PartImage, URL: u, MediaType: guessMediaType(u)})
			} else {
				dst = append(dst, Part{Type: PartImage, MediaType: src.Get("media_type").Str, Data: src.Get("data").Str})
			}
		case "tool_use":
			dst = append(dst, Part{Type: PartToolCall, ID: literal(blk.Get("id")), Name: literal(blk.Get("name")),
				Input: objectOr(blk.Get("input").Raw)})
		case "tool_result":
			dst = append(dst, Part{Type: PartToolResult, ID: literal(blk.Get("tool_use_id")),
				Content: textOf(blk.Get("content")), IsError: blk.Get("is_error").Bool()})
		case "thinking", "redacted_thinking":
			// Only Anthropic can read its own thinking blocks back.
		default:
			err = fmt.Errorf("messages: unsupported content block type %q", typ)
		}
		return err == nil
	})
	return dst, err
}

// AppendMessagesRequest writes req as an Anthropic Messages request for
// model. maxTokens is used when req has none (Anthropic requires it).
func AppendMessagesRequest(b []byte, req *Request, model string, maxTokens int64) []byte {
	b = append(b, `{"model":`...)
	b = AppendString(b, model)
	if req.MaxTokens > 0 {
		maxTokens = req.MaxTokens
	}
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	b = append(b, `,"max_tokens":`...)
	b = appendInt(b, maxTokens)
	if len(req.System) == 1 {
		b = append(b, `,"system":`...)
		b = append(b, req.System[0]...)
	} else if len(req.System) > 1 {
		b = append(b, `,"system":[`...)
		for i, s := range req.System {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"text","text":`...)
			b = append(b, s...)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"messages":[`...)
	// Consecutive turns of one role become one (Anthropic alternates).
	for i := 0; i < len(req.Messages); {
		role := req.Messages[i].Role
		b = comma(b)
		if role == RoleAssistant {
			b = append(b, `{"role":"assistant","content":[`...)
		} else {
			b = append(b, `{"role":"user","content":[`...)
		}
		for ; i < len(req.Messages) && req.Messages[i].Role == role; i++ {
			for j := range req.Messages[i].Parts {
				b = appendAnthropicBlock(b, &req.Messages[i].Parts[j])
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	if len(req.Tools) > 0 && req.ToolChoice.Mode != "none" {
		b = append(b, `,"tools":[`...)
		for i, t := range req.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendLit(b, t.Name)
			if t.Description != "" {
				b = append(b, `,"description":`...)
				b = append(b, t.Description...)
			}
			b = append(b, `,"input_schema":`...)
			b = append(b, t.Schema...)
			b = append(b, '}')
		}
		b = append(b, ']')
		switch req.ToolChoice.Mode {
		case "auto":
			b = append(b, `,"tool_choice":{"type":"auto"}`...)
		case "required":
			b = append(b, `,"tool_choice":{"type":"any"}`...)
		case "tool":
			b = append(b, `,"tool_choice":{"type":"tool","name":`...)
			b = appendLit(b, req.ToolChoice.Name)
			b = append(b, '}')
		}
	}
	b = appendNumber(b, "temperature", req.Temperature)
	b = appendNumber(b, "top_p", req.TopP)
	b = appendNumber(b, "top_k", req.TopK)
	if len(req.Stop) > 0 {
		b = append(b, `,"stop_sequences":`...)
		b = appendLits(b, req.Stop)
	}
	if req.Stream {
		b = append(b, `,"stream":true`...)
	}
	return append(b, '}')
}

func appendAnthropicBlock(b []byte, p *Part) []byte {
	b = comma(b)
	switch p.Type {
	case PartText:
		b = append(b, `{"type":"text","text":`...)
		b = appendLit(b, p.Text)
	case PartImage:
		if p.URL != "" {
			b = append(b, `{"type":"image","source":{"type":"url","url":`...)
			b = AppendString(b, p.URL)
		} else {
			b = append(b, `{"type":"image","source":{"type":"base64","media_type":`...)
			b = AppendString(b, p.MediaType)
			b = append(b, `,"data":`...)
			b = AppendString(b, p.Data)
		}
		b = append(b, '}')
	case PartToolCall:
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendLit(b, p.ID)
		b = append(b, `,"name":`...)
		b = appendLit(b, p.Name)
		b = append(b, `,"input":`...)
		b = append(b, p.Input...)
	case PartToolResult:
		b = append(b, `{"type":"tool_result","tool_use_id":`...)
		b = appendLit(b, p.ID)
		b = append(b, `,"content":`...)
		b = appendLit(b, p.Content)
		if p.IsError {
			b = append(b, `,"is_error":true`...)
		}
	}
	return append(b, '}')
}

// ParseMessagesResponse reads an Anthropic Messages answer.
func ParseMessagesResponse(body []byte) (*Response, error) {
	doc := parse(body)
	if !doc.IsObject() || doc.Get("type").Str != "message" {
		return nil, fmt.Errorf("answer is not an Anthropic message")
	}
	resp := &Response{ID: doc.Get("id").Str}
	doc.Get("content").ForEach(func(_, blk gjson.Result) bool {
		switch blk.Get("type").Str {
		case "text":
			resp.Parts = append(resp.Parts, Part{Type: PartText, Text: literal(blk.Get("text"))})
		case "tool_use":
			resp.Parts = append(resp.Parts, Part{Type: PartToolCall, ID: literal(blk.Get("id")),
				Name: literal(blk.Get("name")), Input: objectOr(blk.Get("input").Raw)})
		}
		return true
	})
	resp.Stop = anthropicStop(doc.Get("stop_reason").Str)
	resp.Usage, resp.HasUsage = AnthropicUsage(doc.Get("usage"))
	return resp, nil
}

// AnthropicUsage reads an Anthropic usage object. Anthropic counts cache
// reads and writes apart from input_tokens; Usage.Input is their sum.
func AnthropicUsage(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	read, write := u.Get("cache_read_input_tokens").Int(), u.Get("cache_creation_input_tokens").Int()
	return Usage{
		Input:     u.Get("input_tokens").Int() + read + write,
		Output:    u.Get("output_tokens").Int(),
		CacheRead: read, CacheWrite: write,
	}, true
}

func anthropicStop(s string) StopReason {
	switch s {
	case "max_tokens":
		return StopMaxTokens
	case "tool_use":
		return StopToolUse
	case "stop_sequence":
		return StopSequence
	case "refusal":
		return StopFilter
	}
	return StopEnd
}

func anthropicStopName(s StopReason) string {
	switch s {
	case StopMaxTokens:
		return "max_tokens"
	case StopToolUse:
		return "tool_use"
	case StopSequence:
		return "stop_sequence"
	case StopFilter:
		return "refusal"
	}
	return "end_turn"
}

// AppendMessagesResponse writes resp as an Anthropic message for model.
func AppendMessagesResponse(b []byte, resp *Response, model string) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, messageID(resp.ID))
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = AppendString(b, model)
	b = append(b, `,"content":[`...)
	for i := range resp.Parts {
		b = appendAnthropicBlock(b, &resp.Parts[i])
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, anthropicStopName(resp.Stop)...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, resp.Usage)
	return append(b, '}')
}

func appendAnthropicUsage(b []byte, u Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, max(0, u.Input-u.CacheRead-u.CacheWrite))
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, u.CacheWrite)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, u.CacheRead)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, u.Output)
	return append(b, '}')
}

func messageID(id string) string {
	if len(id) > 4 && id[:4] == "msg_" {
		return id
	}
	if id == "" {
		return "msg_keygate"
	}
	return "msg_" + id
}
