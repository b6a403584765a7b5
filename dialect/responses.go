package dialect

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// ParseResponsesRequest reads an OpenAI Responses API request.
func ParseResponsesRequest(body []byte) (*Request, error) {
	doc := parse(body)
	if !doc.IsObject() {
		return nil, fmt.Errorf("request body is not a JSON object")
	}
	req := &Request{Messages: make([]Message, 0, 4)}
	if ins := doc.Get("instructions"); ins.Type == gjson.String {
		req.System = append(req.System, ins.Raw)
	}
	if p := doc.Get("previous_response_id"); p.Type == gjson.String {
		return nil, fmt.Errorf("previous_response_id is not supported: keygate stores no responses; send the conversation in input")
	}
	input := doc.Get("input")
	var err error
	switch {
	case input.Type == gjson.String:
		req.Messages = append(req.Messages, Message{Role: RoleUser, Parts: []Part{{Type: PartText, Text: input.Raw}}})
	case input.IsArray():
		input.ForEach(func(_, it gjson.Result) bool {
			err = req.addResponsesItem(it)
			return err == nil
		})
	default:
		return nil, fmt.Errorf("input must be a string or an array")
	}
	if err != nil {
		return nil, err
	}
	doc.Get("tools").ForEach(func(_, t gjson.Result) bool {
		if typ := t.Get("type").Str; typ != "function" {
			err = fmt.Errorf("tools: type %q is served by OpenAI only; this model's provider takes function tools", typ)
			return false
		}
		req.Tools = append(req.Tools, Tool{Name: literal(t.Get("name")), Description: literal(t.Get("description")),
			Schema: objectOr(t.Get("parameters").Raw)})
		return true
	})
	if err != nil {
		return nil, err
	}
	switch tc := doc.Get("tool_choice"); {
	case tc.Type == gjson.String:
		req.ToolChoice.Mode = tc.Str
	case tc.IsObject():
		req.ToolChoice = ToolChoice{Mode: "tool", Name: literal(tc.Get("name"))}
	}
	req.MaxTokens = doc.Get("max_output_tokens").Int()
	req.Temperature = number(doc.Get("temperature"))
	req.TopP = number(doc.Get("top_p"))
	req.Stream = doc.Get("stream").Bool()
	req.IncludeUsage = true
	switch f := doc.Get("text.format"); f.Get("type").Str {
	case "json_object":
		req.JSON = true
	case "json_schema":
		req.JSON, req.Schema, req.SchemaName = true, objectOr(f.Get("schema").Raw), literal(f.Get("name"))
	}
	return req, nil
}

func (req *Request) addResponsesItem(it gjson.Result) error {
	typ := it.Get("type").Str
	switch typ {
	case "", "message":
		content := it.Get("content")
		switch role := it.Get("role").Str; role {
		case "system", "developer":
			req.System = append(req.System, textOf(content))
			return nil
		case "user", "assistant":
			msg := Message{Role: RoleUser}
			if role == "assistant" {
				msg.Role = RoleAssistant
			}
			var err error
			msg.Parts, err = chatParts(content, nil)
			req.Messages = append(req.Messages, msg)
			return err
		default:
			return fmt.Errorf("input: unknown role %q", role)
		}
	case "function_call":
		p := Part{Type: PartToolCall, ID: literal(it.Get("call_id")), Name: literal(it.Get("name")),
			Input: objectOr(it.Get("arguments").Str)}
		if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == RoleAssistant {
			req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, p)
		} else {
			req.Messages = append(req.Messages, Message{Role: RoleAssistant, Parts: []Part{p}})
		}
	case "function_call_output":
		p := Part{Type: PartToolResult, ID: literal(it.Get("call_id")), Content: textOf(it.Get("output"))}
		if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == RoleUser && lastIsToolResult(req.Messages[n-1]) {
			req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, p)
		} else {
			req.Messages = append(req.Messages, Message{Role: RoleUser, Parts: []Part{p}})
		}
	case "reasoning":
		// Only OpenAI reads its reasoning items back.
	default:
		return fmt.Errorf("input: unsupported item type %q", typ)
	}
	return nil
}

// ResponsesUsage reads a Responses API usage object.
func ResponsesUsage(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	return Usage{
		Input:     u.Get("input_tokens").Int(),
		Output:    u.Get("output_tokens").Int(),
		CacheRead: u.Get("input_tokens_details.cached_tokens").Int(),
		Reasoning: u.Get("output_tokens_details.reasoning_tokens").Int(),
	}, true
}

// AppendResponsesResponse writes resp as a Responses API response object.
func AppendResponsesResponse(b []byte, resp *Response, model string, created int64) []byte {
	return appendResponseObject(b, responseID(resp.ID), model, created, statusOf(resp.Stop), resp.Parts, &resp.Usage)
}

func statusOf(s StopReason) string {
	switch s {
	case StopMaxTokens, StopFilter:
		return "incomplete"
	}
	return "completed"
}

// appendResponseObject writes the response object; usage nil means none yet
// (in_progress events).
func appendResponseObject(b []byte, id, model string, created int64, status string, parts []Part, usage *Usage) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, id)
	b = append(b, `,"object":"response","created_at":`...)
	b = appendInt(b, created)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","error":null,"incomplete_details":`...)
	if status == "incomplete" {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"model":`...)
	b = AppendString(b, model)
	b = append(b, `,"output":[`...)
	msg := 0
	for i := range parts {
		p := &parts[i]
		b = comma(b)
		switch p.Type {
		case PartText:
			b = appendMessageItem(b, id, msg, "completed", p.Text)
			msg++
		case PartToolCall:
			b = appendFunctionCallItem(b, p, "completed", p.Input)
		}
	}
	b = append(b, `],"parallel_tool_calls":true,"tool_choice":"auto","tools":[],"text":{"format":{"type":"text"}},"usage":`...)
	if usage == nil {
		b = append(b, "null"...)
	} else {
		b = appendResponsesUsage(b, *usage)
	}
	return append(b, '}')
}

// appendMessageItem writes an output message item holding one text (a JSON
// string literal).
func appendMessageItem(b []byte, respID string, n int, status, text string) []byte {
	b = append(b, `{"id":`...)
	b = appendItemID(b, "msg_", respID, n)
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","role":"assistant","content":[`...)
	if text != "" {
		b = appendOutputText(b, text)
	}
	return append(b, "]}"...)
}

func appendOutputText(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","text":`...)
	b = appendLit(b, text)
	return append(b, `,"annotations":[]}`...)
}

// appendFunctionCallItem writes a function_call item; args is the JSON
// object of its arguments ("" while none are known).
func appendFunctionCallItem(b []byte, p *Part, status, args string) []byte {
	b = append(b, `{"id":"fc_`...)
	b = append(b, inner(p.ID)...)
	b = append(b, `","type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","call_id":`...)
	b = appendLit(b, p.ID)
	b = append(b, `,"name":`...)
	b = appendLit(b, p.Name)
	b = append(b, `,"arguments":`...)
	b = AppendString(b, args)
	return append(b, '}')
}

func appendItemID(b []byte, prefix, respID string, n int) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	b = AppendEscaped(b, respID)
	b = append(b, '_')
	b = appendInt(b, int64(n))
	return append(b, '"')
}

func appendResponsesUsage(b []byte, u Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.Input)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CacheRead)
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, u.Output)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.Reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, u.Input+u.Output)
	return append(b, '}')
}

func responseID(id string) string {
	if len(id) > 5 && id[:5] == "resp_" {
		return id
	}
	if id == "" {
		return "resp_keygate"
	}
	return "resp_" + id
}
