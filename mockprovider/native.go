package mockprovider

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// The provider also speaks the native wires keygate translates to, on the
// same server and with the same keys and behaviours, each failing with that
// vendor's own error body:
//
//	Anthropic  POST /v1/messages (x-api-key, anthropic-version), GET /v1/models
//	Gemini     POST /v1beta/models/{m}:generateContent, :streamGenerateContent?alt=sse,
//	           :embedContent, GET /v1beta/models (x-goog-api-key or ?key=)
//	Azure      POST /openai/deployments/{m}/chat/completions|embeddings?api-version=…,
//	           GET /openai/models?api-version=… (api-key)
//	OpenAI     POST /v1/responses, /v1/completions, /v1/moderations,
//	           /v1/images/generations, /v1/audio/transcriptions (multipart), /v1/rerank
//
// A request that offers tools and is not answering a tool call gets a call
// of the first tool with arguments {"q": <the last user text>}; a request
// answering one gets text that quotes the tool's result.

// turn is what the mock reads from a request of any wire.
type turn struct {
	prompt   int    // prompt tokens: words of every text, plus 3 per message
	last     string // the last user text, or the tool result answered
	tool     string // the first tool's name, "" without tools
	answered bool   // the last message carries a tool result
	cached   bool   // some block asks for prompt caching (Anthropic)
	images   int
}

// wants a tool call as the reply.
func (t *turn) callsTool() bool { return t.tool != "" && !t.answered }

func (t *turn) text(s string) {
	t.prompt += countWords(s)
}

// serveNative answers the routes of the native wires and OpenAI's other
// routes, reporting false for any other request.
func (p *Provider) serveNative(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/v1/messages"):
		p.serveAnthropic(w, r)
	case path == "/v1/models" && r.Header.Get("x-api-key") != "":
		p.serveAnthropic(w, r)
	case strings.HasPrefix(path, "/v1beta/models"):
		p.serveGemini(w, r)
	case strings.HasPrefix(path, "/openai/"):
		p.serveAzure(w, r)
	case r.Method == http.MethodPost && (path == "/v1/responses" || path == "/v1/completions" || path == "/v1/moderations" ||
		path == "/v1/images/generations" || path == "/v1/audio/transcriptions" || path == "/v1/audio/speech" || path == "/v1/rerank"):
		p.serveOpenAIRoute(w, r)
	default:
		return false
	}
	return true
}

// admit runs the checks every wire makes in the same order as OpenAI's
// route: the key (missing, invalid), the model, then the key's other
// behaviours. It reports whether the request may be answered.
func (p *Provider) admit(w http.ResponseWriter, r *http.Request, vendor, key, model string, stream bool, body []byte, bodyOK bool) bool {
	p.count(key)
	if !p.opts.NoRecord {
		p.record(r, key, model, stream, body)
	}
	if !sleep(r.Context(), p.opts.Latency) {
		p.canceled.Add(1)
		return false
	}
	if key == "" {
		writeVendor(w, missingKey(vendor))
		return false
	}
	b := p.behavior(key)
	if b == InvalidKey {
		writeVendor(w, vendorFailure(vendor, b))
		return false
	}
	if !bodyOK {
		writeVendor(w, badBody(vendor))
		return false
	}
	if model != "" {
		if _, ok := p.models[model]; !ok {
			writeVendor(w, unknownModel(vendor, model))
			return false
		}
	}
	if b != OK && !(r.Method == http.MethodGet && (vendor == VendorAnthropic || vendor == VendorGemini || vendor == VendorAzure)) {
		writeVendor(w, vendorFailure(vendor, b))
		return false
	}
	// Anthropic and Gemini list their models for any key that
	// authenticates, one out of credit or at its rate limit included: the
	// list proves nothing more, which keygate's recovery checks must know.
	return true
}

func vendorFailure(vendor string, b Behavior) response {
	if vendor == "openai" || b == Garbage {
		return behaviorError(b)
	}
	if b != InvalidKey && b != RateLimited && b != QuotaExhausted && b != Overloaded && b != ServerError {
		return behaviorError(b)
	}
	status, h, body := vendorError(vendor, b)
	h.Set("Content-Type", "application/json")
	return response{status, h, []byte(body)}
}

func writeVendor(w http.ResponseWriter, e response) { e.write(w) }

func missingKey(vendor string) response {
	switch vendor {
	case VendorAnthropic:
		return anthropicErr(401, "authentication_error", "x-api-key header is required")
	case VendorGemini:
		return geminiErr(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
	case VendorAzure:
		return response{401, jsonHeader, []byte(`{"error":{"code":"401","message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}`)}
	}
	return errMissingKey
}

func badBody(vendor string) response {
	switch vendor {
	case VendorAnthropic:
		return anthropicErr(400, "invalid_request_error", "messages: Field required")
	case VendorGemini:
		return geminiErr(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
	}
	return errBadJSON
}

func unknownModel(vendor, model string) response {
	switch vendor {
	case VendorAnthropic:
		return anthropicErr(404, "not_found_error", "model: "+model)
	case VendorGemini:
		return geminiErr(404, "NOT_FOUND", "models/"+model+" is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.")
	case VendorAzure:
		return response{404, jsonHeader, []byte(`{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`)}
	}
	return errUnknownModel(model)
}

func anthropicErr(status int, typ, msg string) response {
	b := append([]byte(`{"type":"error","error":{"type":`), quote(typ)...)
	b = append(append(b, `,"message":`...), quote(msg)...)
	return response{status, jsonHeader, append(b, "}}"...)}
}

func geminiErr(status int, s, msg string) response {
	b := append([]byte(`{"error":{"code":`), strconv.Itoa(status)...)
	b = append(append(b, `,"message":`...), quote(msg)...)
	b = append(append(b, `,"status":`...), quote(s)...)
	return response{status, jsonHeader, append(b, "}}"...)}
}

// --- Anthropic ---

func (p *Provider) serveAnthropic(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("x-api-key")
	if r.Method == http.MethodGet {
		if p.admit(w, r, VendorAnthropic, key, "", false, nil, true) {
			b := []byte(`{"data":[`)
			for i, m := range p.opts.Models {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"type":"model","id":`...)
				b = append(b, p.models[m]...)
				b = append(b, `,"display_name":`...)
				b = append(b, p.models[m]...)
				b = append(b, `,"created_at":"2025-01-01T00:00:00Z"}`...)
			}
			b = append(b, `],"has_more":false}`...)
			w.Header()["Content-Type"] = jsonHeader["Content-Type"]
			w.Write(b)
		}
		return
	}
	if r.URL.Path != "/v1/messages" && r.URL.Path != "/v1/messages/count_tokens" {
		anthropicErr(404, "not_found_error", "Not Found").write(w)
		return
	}
	body, doc := readJSON(r)
	model := doc.Get("model").Str
	stream := doc.Get("stream").Bool()
	if !p.admit(w, r, VendorAnthropic, key, model, stream, body, doc.IsObject() && doc.Get("messages").IsArray()) {
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		anthropicErr(400, "invalid_request_error", "anthropic-version: header is required").write(w)
		return
	}
	t := anthropicTurn(doc)
	if r.URL.Path == "/v1/messages/count_tokens" {
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(append(appendInt([]byte(`{"input_tokens":`), int64(t.prompt)), '}'))
		return
	}
	if !doc.Get("max_tokens").Exists() {
		anthropicErr(400, "invalid_request_error", "max_tokens: Field required").write(w)
		return
	}
	var arr [16]string
	words := p.replyWords(arr[:0], t.last)
	id := "msg_mock" + strconv.FormatUint(p.seq.Add(1), 10)
	quoted := p.models[model]
	cacheRead := 0
	if t.cached {
		cacheRead = 10
	}
	if !stream {
		b := append([]byte(`{"id":"`), id...)
		b = append(b, `","type":"message","role":"assistant","model":`...)
		b = append(b, quoted...)
		b = append(b, `,"content":[`...)
		stop := "end_turn"
		if t.callsTool() {
			b = append(b, `{"type":"tool_use","id":"toolu_mock1","name":`...)
			b = append(append(b, quote(t.tool)...), `,"input":{"query":`...)
			b = append(append(b, quote(t.last)...), "}}"...)
			stop = "tool_use"
		} else {
			b = append(b, `{"type":"text","text":`...)
			b = append(append(b, quote(strings.Join(words, " "))...), '}')
		}
		b = append(b, `],"stop_reason":"`...)
		b = append(b, stop...)
		b = append(b, `","stop_sequence":null,"usage":`...)
		b = appendAnthropicUsage(b, t.prompt, cacheRead, outTokens(t, words))
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(append(b, '}'))
		return
	}
	maps.Copy(w.Header(), sseHeader)
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, rc: http.NewResponseController(w), ctx: r.Context(), delay: p.opts.ChunkDelay}
	start := append([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\""), id...)
	start = append(start, `","type":"message","role":"assistant","model":`...)
	start = append(start, quoted...)
	start = append(start, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	start = appendAnthropicUsage(start, t.prompt, cacheRead, 1)
	ok := s.send(append(start, "}}\n\n"...))
	ok = ok && p.hold(r.Context())
	stop := "end_turn"
	if t.callsTool() {
		stop = "tool_use"
		blk := append([]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_mock1\",\"name\":"), quote(t.tool)...)
		ok = ok && s.send(append(blk, ",\"input\":{}}}\n\n"...))
		args := `{"query": ` + string(quote(t.last)) + `}`
		for _, piece := range []string{"", args[:len(args)/2], args[len(args)/2:]} {
			d := append([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"), quote(piece)...)
			ok = ok && s.send(append(d, "}}\n\n"...))
		}
	} else {
		ok = ok && s.send([]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"))
		ok = ok && s.send([]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"))
		for i := 0; ok && i < len(words); i++ {
			d := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"")
			if i > 0 {
				d = append(d, ' ')
			}
			d = appendEscaped(d, words[i])
			ok = s.send(append(d, "\"}}\n\n"...))
		}
	}
	ok = ok && s.send([]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"))
	md := append([]byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""), stop...)
	md = append(md, `","stop_sequence":null},"usage":{"output_tokens":`...)
	md = appendInt(md, int64(outTokens(t, words)))
	ok = ok && s.send(append(md, "}}\n\n"...))
	ok = ok && s.send([]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	if !ok {
		p.canceled.Add(1)
	}
}

// hold keeps a stream after its first event while Options.StreamHold is
// open.
func (p *Provider) hold(ctx context.Context) bool {
	if p.opts.StreamHold == nil {
		return true
	}
	select {
	case <-p.opts.StreamHold:
		return true
	case <-ctx.Done():
		return false
	}
}

// outTokens is the completion's token count: its words, or 5 for a tool
// call (as toolCall reports).
func outTokens(t turn, words []string) int {
	if t.callsTool() {
		return 5
	}
	return len(words)
}

func appendAnthropicUsage(b []byte, prompt, cacheRead, output int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, int64(prompt))
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	b = appendInt(b, int64(cacheRead))
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, int64(output))
	return append(b, '}')
}

func anthropicTurn(doc gjson.Result) turn {
	var t turn
	sys := doc.Get("system")
	if sys.Type == gjson.String {
		t.text(sys.Str)
	}
	sys.ForEach(func(_, blk gjson.Result) bool {
		t.text(blk.Get("text").Str)
		t.cached = t.cached || blk.Get("cache_control").Exists()
		return true
	})
	doc.Get("messages").ForEach(func(_, m gjson.Result) bool {
		t.prompt += 3
		t.answered = false
		c := m.Get("content")
		if c.Type == gjson.String {
			t.text(c.Str)
			if m.Get("role").Str == "user" {
				t.last = c.Str
			}
			return true
		}
		c.ForEach(func(_, blk gjson.Result) bool {
			t.cached = t.cached || blk.Get("cache_control").Exists()
			switch blk.Get("type").Str {
			case "text":
				t.text(blk.Get("text").Str)
				if m.Get("role").Str == "user" {
					t.last = blk.Get("text").Str
				}
			case "image":
				t.images++
			case "tool_result":
				res := blk.Get("content")
				if res.IsArray() {
					res = res.Get("0.text")
				}
				t.text(res.Str)
				t.last, t.answered = "tool said "+res.Str, true
			}
			return true
		})
		return true
	})
	t.tool = doc.Get("tools.0.name").Str
	return t
}

// --- Gemini ---

func (p *Provider) serveGemini(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if r.Method == http.MethodGet {
		if p.admit(w, r, VendorGemini, key, "", false, nil, true) {
			b := []byte(`{"models":[`)
			for i, m := range p.opts.Models {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":"models/`...)
				b = appendEscaped(b, m)
				b = append(b, `","supportedGenerationMethods":["generateContent","countTokens"]}`...)
			}
			w.Header()["Content-Type"] = jsonHeader["Content-Type"]
			w.Write(append(b, "]}"...))
		}
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
	model, method, found := strings.Cut(rest, ":")
	if !found || (method != "generateContent" && method != "streamGenerateContent" && method != "embedContent" && method != "batchEmbedContents") {
		geminiErr(404, "NOT_FOUND", "Method not found.").write(w)
		return
	}
	body, doc := readJSON(r)
	stream := method == "streamGenerateContent"
	valid := doc.IsObject() && (doc.Get("contents").IsArray() || (method == "embedContent" && doc.Get("content").IsObject()) ||
		(method == "batchEmbedContents" && doc.Get("requests").IsArray()))
	if !p.admit(w, r, VendorGemini, key, model, stream, body, valid) {
		return
	}
	switch method {
	case "embedContent":
		text := doc.Get("content.parts.0.text").Str
		b := append([]byte(`{"embedding":{"values":`), appendEmbedding(nil, embedding(text), false)...)
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(append(b, "}}"...))
		return
	case "batchEmbedContents":
		b := []byte(`{"embeddings":[`)
		doc.Get("requests").ForEach(func(_, rq gjson.Result) bool {
			if b[len(b)-1] != '[' {
				b = append(b, ',')
			}
			b = append(b, `{"values":`...)
			b = append(appendEmbedding(b, embedding(rq.Get("content.parts.0.text").Str), false), '}')
			return true
		})
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(append(b, "]}"...))
		return
	}
	t := geminiTurn(doc)
	var arr [16]string
	words := p.replyWords(arr[:0], t.last)
	id := "mock" + strconv.FormatUint(p.seq.Add(1), 10)
	usage := func(b []byte, out int) []byte {
		b = append(b, `"usageMetadata":{"promptTokenCount":`...)
		b = appendInt(b, int64(t.prompt))
		if out >= 0 {
			b = append(b, `,"candidatesTokenCount":`...)
			b = appendInt(b, int64(out))
		}
		b = append(b, `,"totalTokenCount":`...)
		b = appendInt(b, int64(t.prompt+max(out, 0)))
		b = append(b, `},"modelVersion":`...)
		b = append(b, p.models[model]...)
		b = append(b, `,"responseId":"`...)
		b = append(b, id...)
		return append(b, `"}`...)
	}
	call := func(b []byte) []byte {
		b = append(b, `{"functionCall":{"name":`...)
		b = append(append(b, quote(t.tool)...), `,"args":{"query":`...)
		return append(append(b, quote(t.last)...), "}}}"...)
	}
	if !stream {
		b := []byte(`{"candidates":[{"content":{"parts":[`)
		if t.callsTool() {
			b = call(b)
		} else {
			b = append(b, `{"text":`...)
			b = append(append(b, quote(strings.Join(words, " "))...), '}')
		}
		b = append(b, `],"role":"model"},"finishReason":"STOP","index":0}],`...)
		b = usage(b, outTokens(t, words))
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(b)
		return
	}
	if r.URL.Query().Get("alt") != "sse" {
		// Without alt=sse Gemini streams one JSON array; keygate never asks for it.
		geminiErr(400, "INVALID_ARGUMENT", "mockprovider: streamGenerateContent is served with alt=sse only").write(w)
		return
	}
	maps.Copy(w.Header(), sseHeader)
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, rc: http.NewResponseController(w), ctx: r.Context(), delay: p.opts.ChunkDelay}
	ok := true
	if t.callsTool() {
		b := []byte(`data: {"candidates":[{"content":{"parts":[`)
		b = call(b)
		b = append(b, `],"role":"model"},"finishReason":"STOP","index":0}],`...)
		ok = s.send(append(usage(b, 5), "\r\n\r\n"...))
	}
	for i := 0; ok && !t.callsTool() && i < len(words); i++ {
		b := []byte(`data: {"candidates":[{"content":{"parts":[{"text":"`)
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendEscaped(b, words[i])
		b = append(b, `"}],"role":"model"}`...)
		last := i == len(words)-1
		if last {
			b = append(b, `,"finishReason":"STOP"`...)
		}
		b = append(b, `,"index":0}],`...)
		if last {
			b = usage(b, len(words))
		} else {
			b = usage(b, -1)
		}
		ok = s.send(append(b, "\r\n\r\n"...))
		if i == 0 {
			ok = ok && p.hold(r.Context())
		}
	}
	if !ok {
		p.canceled.Add(1)
	}
}

func geminiTurn(doc gjson.Result) turn {
	var t turn
	doc.Get("systemInstruction.parts").ForEach(func(_, part gjson.Result) bool {
		t.text(part.Get("text").Str)
		return true
	})
	doc.Get("contents").ForEach(func(_, c gjson.Result) bool {
		t.prompt += 3
		t.answered = false
		c.Get("parts").ForEach(func(_, part gjson.Result) bool {
			switch {
			case part.Get("text").Exists():
				t.text(part.Get("text").Str)
				if c.Get("role").Str != "model" {
					t.last = part.Get("text").Str
				}
			case part.Get("inlineData").Exists(), part.Get("fileData").Exists():
				t.images++
			case part.Get("functionResponse").Exists():
				res := part.Get("functionResponse.response")
				txt := res.Get("content").Str
				if txt == "" {
					txt = res.Raw
				}
				t.text(txt)
				t.last, t.answered = "tool said "+txt, true
			}
			return true
		})
		return true
	})
	t.tool = doc.Get("tools.0.functionDeclarations.0.name").Str
	return t
}

// --- Azure ---

func (p *Provider) serveAzure(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("api-key")
	if r.URL.Query().Get("api-version") == "" {
		response{404, jsonHeader, []byte(`{"error":{"code":"404","message":"Resource not found"}}`)}.write(w)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/openai/models" {
		if p.admit(w, r, VendorAzure, key, "", false, nil, true) {
			w.Header()["Content-Type"] = jsonHeader["Content-Type"]
			w.Write(p.modelsBody)
		}
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	dep, op, _ := strings.Cut(rest, "/")
	if !ok || r.Method != http.MethodPost || (op != "chat/completions" && op != "embeddings") {
		response{404, jsonHeader, []byte(`{"error":{"code":"404","message":"Resource not found"}}`)}.write(w)
		return
	}
	body, doc := readJSON(r)
	stream := op == "chat/completions" && doc.Get("stream").Bool()
	if !p.admit(w, r, VendorAzure, key, dep, stream, body, doc.IsObject()) {
		return
	}
	// The deployment names the model; the body's model, if any, is ignored.
	quoted := p.models[dep]
	switch {
	case op == "embeddings":
		p.embeddings(w, doc, quoted)
	case doc.Get("tools").Exists():
		p.chatTools(w, r, doc, quoted, stream)
	case stream:
		p.streamChat(r.Context(), w, doc, quoted)
	default:
		p.chat(w, doc, quoted)
	}
}

// --- OpenAI: chat with tools ---

func chatTurn(doc gjson.Result) turn {
	var t turn
	t.prompt, t.last = chatPrompt(doc.Get("messages"))
	msgs := doc.Get("messages").Array()
	if n := len(msgs); n > 0 && msgs[n-1].Get("role").Str == "tool" {
		t.last, t.answered = "tool said "+msgs[n-1].Get("content").Str, true
	}
	t.tool = doc.Get("tools.0.function.name").Str
	return t
}

// chatTools answers a chat request that offers tools: a tool call
// (toolCall), or text once the request answers one.
func (p *Provider) chatTools(w http.ResponseWriter, r *http.Request, req gjson.Result, model []byte, stream bool) {
	switch t := chatTurn(req); {
	case t.callsTool():
		p.toolCall(w, req, model, stream)
	case stream:
		p.streamChat(r.Context(), w, req, model)
	default:
		p.chat(w, req, model)
	}
}

// readJSON reads a request body and parses it; doc is zero when the body
// is unreadable or not JSON.
func readJSON(r *http.Request) ([]byte, gjson.Result) {
	body, err := readBody(r)
	if err != nil || !gjson.ValidBytes(body) {
		return body, gjson.Result{}
	}
	return body, gjson.ParseBytes(body)
}
