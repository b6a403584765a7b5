// Package dialect translates LLM requests, answers and streams between the
// wire formats keygate speaks: the callers' dialects (OpenAI chat, OpenAI
// Responses, Anthropic Messages) and the providers' wires (OpenAI chat,
// which Azure speaks too, Anthropic Messages, Gemini generateContent).
//
// Every translation goes through one small in-memory form (Request,
// Response, Event) read with gjson and written by appending bytes: no
// map[string]any, no encoding/json round trip. Strings are kept as the JSON
// text they arrived in (escapes and all) and appended as they are, since a
// JSON string means the same in every dialect; a string is decoded only
// where a dialect nests JSON inside a string (OpenAI's tool arguments).
//
// A caller and a provider that speak the same dialect need none of this:
// the relay sends such a body as it is.
package dialect

import (
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Caller dialects.
const (
	Chat      = "chat"      // POST /v1/chat/completions
	Responses = "responses" // POST /v1/responses
	Messages  = "messages"  // POST /v1/messages
)

// Provider wires.
const (
	WireOpenAI    = "openai"    // OpenAI chat completions (also Azure's body)
	WireAnthropic = "anthropic" // Anthropic Messages
	WireGemini    = "gemini"    // Gemini generateContent
)

// Role of a message in the conversation. Tool results travel in user
// messages (Anthropic's way); writers for OpenAI split them out.
type Role uint8

// The roles.
const (
	RoleUser Role = iota
	RoleAssistant
)

// PartType is the kind of a content part.
type PartType uint8

// The part types.
const (
	PartText PartType = iota
	PartImage
	PartToolCall
	PartToolResult
)

// Part is one piece of a message. Text, ID, Name and Content are JSON
// string literals, quotes included, exactly as they arrived; Input is a
// JSON object (tool arguments). MediaType, Data and URL are plain strings.
type Part struct {
	Type PartType
	Text string // PartText

	MediaType string // PartImage: "image/png"…; with Data (base64) or URL
	Data      string
	URL       string

	ID    string // PartToolCall: the call's id; PartToolResult: the id it answers
	Name  string // PartToolCall
	Input string // PartToolCall: arguments, a JSON object

	Content string // PartToolResult: the result as a JSON string literal
	IsError bool   // PartToolResult
}

// Message is one turn.
type Message struct {
	Role  Role
	Parts []Part
}

// Tool is a function the model may call. Name and Description are JSON
// string literals (Description may be empty); Schema is a JSON object.
type Tool struct {
	Name, Description, Schema string
}

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	Mode string // "" (unset), "auto", "none", "required", "tool"
	Name string // JSON string literal, with Mode "tool"
}

// Request is a generation request in dialect-neutral form. Number fields
// are kept as their JSON text; "" means unset.
type Request struct {
	System      []string // JSON string literals
	Messages    []Message
	Tools       []Tool
	ToolChoice  ToolChoice
	MaxTokens   int64 // 0 = unset
	Temperature string
	TopP        string
	TopK        string
	Stop        []string // JSON string literals
	Stream      bool
	// IncludeUsage is OpenAI's stream_options.include_usage: the caller
	// wants the usage chunk.
	IncludeUsage bool
	// JSON asks for a JSON answer (OpenAI's response_format json_object or
	// json_schema, the Responses API's text.format); Schema, if set, is the
	// JSON Schema it must follow, with SchemaName its name.
	JSON       bool
	Schema     string
	SchemaName string
}

// StopReason is why generation stopped.
type StopReason uint8

// The stop reasons.
const (
	StopEnd StopReason = iota
	StopMaxTokens
	StopToolUse
	StopSequence
	StopFilter
)

// Usage is the tokens of one request. Input counts every prompt token, the
// cached ones included (OpenAI's sense); CacheRead and CacheWrite are parts
// of it.
type Usage struct {
	Input, Output, CacheRead, CacheWrite, Reasoning int64
}

// Response is a complete answer. Parts are PartText and PartToolCall.
type Response struct {
	ID    string // plain string, may be empty
	Parts []Part
	Stop  StopReason
	Usage Usage
	// HasUsage is false when the provider reported no usage.
	HasUsage bool
}

// str views b as a string without copying; b must not change while the
// string is in use. gjson then hands out substrings of the body, not copies.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func parse(body []byte) gjson.Result { return gjson.Parse(str(body)) }

// inner is the content of a JSON string literal, between its quotes.
func inner(lit string) string {
	if len(lit) >= 2 && lit[0] == '"' {
		return lit[1 : len(lit)-1]
	}
	return ""
}

// literal is a string value's JSON literal: its raw text when it is a JSON
// string, else "".
func literal(r gjson.Result) string {
	if r.Type == gjson.String {
		return r.Raw
	}
	return ""
}

// Quote returns s as a JSON string literal.
func Quote(s string) string { return string(AppendString(nil, s)) }

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = AppendEscaped(b, s)
	return append(b, '"')
}

// AppendEscaped appends the inside of a JSON string, without the quotes.
func AppendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(append(b, s[start:i]...), `\ufffd`...)
				start = i + 1
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	return append(b, s[start:]...)
}

// appendLit appends a JSON string literal, or "" when lit is empty.
func appendLit(b []byte, lit string) []byte {
	if lit == "" {
		return append(b, `""`...)
	}
	return append(b, lit...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// field appends ,"name": (or "name": after an opening brace).
func field(b []byte, name string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// comma appends a comma unless b ends an opening bracket.
func comma(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	return b
}

// objectOr is raw when it is a JSON object, else "{}".
func objectOr(raw string) string {
	if r := gjson.Parse(raw); r.IsObject() {
		return r.Raw
	}
	return "{}"
}

// textOf joins the text of a content value that is a string or an array of
// text blocks, as a JSON string literal.
func textOf(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.Raw
	}
	if !content.IsArray() {
		return `""`
	}
	var parts []string
	content.ForEach(func(_, p gjson.Result) bool {
		if t := p.Get("text"); t.Type == gjson.String {
			parts = append(parts, t.Raw)
		}
		return true
	})
	if len(parts) == 1 {
		return parts[0]
	}
	b := []byte{'"'}
	for i, p := range parts {
		if i > 0 {
			b = append(b, `\n`...)
		}
		b = append(b, inner(p)...)
	}
	return string(append(b, '"'))
}

// splitDataURL splits "data:image/png;base64,AAAA" into its media type and
// data; ok is false for any other URL.
func splitDataURL(u string) (mediaType, data string, ok bool) {
	const p = "data:"
	if len(u) < len(p) || u[:len(p)] != p {
		return "", "", false
	}
	rest := u[len(p):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == ',' {
			meta := rest[:i]
			const b64 = ";base64"
			if len(meta) >= len(b64) && meta[len(meta)-len(b64):] == b64 {
				meta = meta[:len(meta)-len(b64)]
			}
			return meta, rest[i+1:], true
		}
	}
	return "", "", false
}

// imageURL is the URL an image part is sent as to OpenAI: its own, or a
// data URL built from its base64 data.
func appendImageURL(b []byte, p *Part) []byte {
	if p.URL != "" {
		return AppendString(b, p.URL)
	}
	b = append(b, `"data:`...)
	b = AppendEscaped(b, p.MediaType)
	b = append(b, ";base64,"...)
	b = AppendEscaped(b, p.Data)
	return append(b, '"')
}

// guessMediaType guesses an image's media type from its URL, for wires
// that need one (Gemini's fileData).
func guessMediaType(u string) string {
	for i := len(u) - 1; i >= 0 && i > len(u)-6; i-- {
		if u[i] == '.' {
			switch u[i+1:] {
			case "png":
				return "image/png"
			case "gif":
				return "image/gif"
			case "webp":
				return "image/webp"
			}
			break
		}
	}
	return "image/jpeg"
}
