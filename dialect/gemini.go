package dialect

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// AppendGeminiRequest writes req as a Gemini generateContent request (the
// model goes in the URL, not the body).
func AppendGeminiRequest(b []byte, req *Request) []byte {
	b = append(b, `{"contents":[`...)
	for i := 0; i < len(req.Messages); {
		role := req.Messages[i].Role
		b = comma(b)
		if role == RoleAssistant {
			b = append(b, `{"role":"model","parts":[`...)
		} else {
			b = append(b, `{"role":"user","parts":[`...)
		}
		for ; i < len(req.Messages) && req.Messages[i].Role == role; i++ {
			for j := range req.Messages[i].Parts {
				b = appendGeminiPart(b, &req.Messages[i].Parts[j], req)
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	if len(req.System) > 0 {
		b = append(b, `,"systemInstruction":{"parts":[`...)
		for i, s := range req.System {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"text":`...)
			b = append(b, s...)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	if len(req.Tools) > 0 {
		b = append(b, `,"tools":[{"functionDeclarations":[`...)
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
			// parametersJsonSchema takes JSON Schema as callers write it;
			// "parameters" accepts only Gemini's OpenAPI subset.
			b = append(b, `,"parametersJsonSchema":`...)
			b = append(b, t.Schema...)
			b = append(b, '}')
		}
		b = append(b, "]}]"...)
		switch req.ToolChoice.Mode {
		case "auto":
			b = append(b, `,"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}`...)
		case "none":
			b = append(b, `,"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}`...)
		case "required":
			b = append(b, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}`...)
		case "tool":
			b = append(b, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":[`...)
			b = appendLit(b, req.ToolChoice.Name)
			b = append(b, "]}}"...)
		}
	}
	b = append(b, `,"generationConfig":{`...)
	if req.MaxTokens > 0 {
		b = field(b, "maxOutputTokens")
		b = appendInt(b, req.MaxTokens)
	}
	b = appendNumber(b, "temperature", req.Temperature)
	b = appendNumber(b, "topP", req.TopP)
	b = appendNumber(b, "topK", req.TopK)
	if len(req.Stop) > 0 {
		b = field(b, "stopSequences")
		b = appendLits(b, req.Stop)
	}
	if req.JSON {
		b = field(b, "responseMimeType")
		b = append(b, `"application/json"`...)
		if req.Schema != "" {
			b = field(b, "responseJsonSchema")
			b = append(b, req.Schema...)
		}
	}
	return append(b, "}}"...)
}

func appendGeminiPart(b []byte, p *Part, req *Request) []byte {
	b = comma(b)
	switch p.Type {
	case PartText:
		b = append(b, `{"text":`...)
		b = appendLit(b, p.Text)
	case PartImage:
		if p.URL != "" {
			b = append(b, `{"fileData":{"mimeType":`...)
			b = AppendString(b, p.MediaType)
			b = append(b, `,"fileUri":`...)
			b = AppendString(b, p.URL)
		} else {
			b = append(b, `{"inlineData":{"mimeType":`...)
			b = AppendString(b, p.MediaType)
			b = append(b, `,"data":`...)
			b = AppendString(b, p.Data)
		}
		b = append(b, '}')
	case PartToolCall:
		b = append(b, `{"functionCall":{"name":`...)
		b = appendLit(b, p.Name)
		b = append(b, `,"args":`...)
		b = append(b, p.Input...)
		b = append(b, '}')
	case PartToolResult:
		// Gemini answers a call by the function's name, not an id.
		b = append(b, `{"functionResponse":{"name":`...)
		b = appendLit(b, req.toolName(p.ID))
		b = append(b, `,"response":`...)
		if r := gjson.Parse(gjson.Parse(p.Content).Str); r.IsObject() {
			b = append(b, r.Raw...)
		} else {
			b = append(b, `{"content":`...)
			b = appendLit(b, p.Content)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// toolName is the name of the tool call with id, from the conversation.
func (req *Request) toolName(id string) string {
	for i := range req.Messages {
		for _, p := range req.Messages[i].Parts {
			if p.Type == PartToolCall && p.ID == id {
				return p.Name
			}
		}
	}
	return `"unknown"`
}

// ParseGeminiResponse reads a Gemini GenerateContentResponse.
func ParseGeminiResponse(body []byte) (*Response, error) {
	doc := parse(body)
	if !doc.IsObject() || !doc.Get("candidates").Exists() {
		return nil, fmt.Errorf("answer is not a Gemini GenerateContentResponse")
	}
	resp := &Response{ID: doc.Get("responseId").Str}
	cand := doc.Get("candidates.0")
	calls := 0
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		if p.Get("thought").Bool() {
			return true
		}
		if t := p.Get("text"); t.Type == gjson.String {
			resp.Parts = append(resp.Parts, Part{Type: PartText, Text: t.Raw})
		} else if fc := p.Get("functionCall"); fc.IsObject() {
			id := literal(fc.Get("id"))
			if id == "" {
				id = toolCallID(calls)
			}
			calls++
			resp.Parts = append(resp.Parts, Part{Type: PartToolCall, ID: id, Name: literal(fc.Get("name")),
				Input: objectOr(fc.Get("args").Raw)})
		}
		return true
	})
	resp.Stop = geminiStop(cand.Get("finishReason").Str, calls > 0)
	resp.Usage, resp.HasUsage = GeminiUsage(doc.Get("usageMetadata"))
	return resp, nil
}

// GeminiUsage reads Gemini's usageMetadata. Thinking tokens are billed as
// output.
func GeminiUsage(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	thoughts := u.Get("thoughtsTokenCount").Int()
	return Usage{
		Input:     u.Get("promptTokenCount").Int(),
		Output:    u.Get("candidatesTokenCount").Int() + thoughts,
		CacheRead: u.Get("cachedContentTokenCount").Int(),
		Reasoning: thoughts,
	}, true
}

func geminiStop(s string, toolCalls bool) StopReason {
	switch s {
	case "MAX_TOKENS":
		return StopMaxTokens
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return StopFilter
	}
	if toolCalls {
		return StopToolUse
	}
	return StopEnd
}
