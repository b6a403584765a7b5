package dialect

import (
	"strings"

	"github.com/tidwall/gjson"
)

// EventKind is the kind of a stream event.
type EventKind uint8

// The stream events every wire's stream is read into.
const (
	EvStart     EventKind = iota // the answer begins; ID
	EvText                       // Text
	EvToolStart                  // a tool call begins: Index (0, 1… per call), ID, Name
	EvToolArgs                   // Index, Text: a piece of the arguments' JSON
	EvStop                       // Stop
	EvUsage                      // Usage
	EvError                      // ErrType, Text: the provider's error inside the stream
)

// Event is one step of a stream. Text is the inside of a JSON string
// literal (escapes kept); ID and Name are JSON string literals.
type Event struct {
	Kind    EventKind
	Index   int
	ID      string
	Name    string
	Text    string
	ErrType string
	Stop    StopReason
	Usage   Usage
}

// Decoder reads one wire's stream events.
type Decoder interface {
	// Decode reads one server-sent event (its event name, possibly empty,
	// and its data) and appends what it means to out.
	Decode(event, data []byte, out []Event) []Event
	// End appends what the stream meant once it has ended.
	End(out []Event) []Event
}

// Encoder writes stream events in a caller's dialect, as server-sent
// events.
type Encoder interface {
	Encode(b []byte, ev *Event) []byte
	// Finish appends what ends the stream.
	Finish(b []byte) []byte
}

// NewDecoder returns the stream reader for a provider wire.
func NewDecoder(wire string) Decoder {
	switch wire {
	case WireAnthropic:
		return &anthropicDecoder{}
	case WireGemini:
		return &geminiDecoder{}
	}
	return &chatDecoder{}
}

// NewEncoder returns the stream writer for a caller dialect, answering
// for model. includeUsage is whether an OpenAI chat caller asked for the
// usage chunk.
func NewEncoder(caller, model string, created int64, includeUsage bool) Encoder {
	switch caller {
	case Messages:
		return &messagesEncoder{model: model, open: -1}
	case Responses:
		return &responsesEncoder{model: model, created: created, open: -1}
	}
	return &chatEncoder{model: model, created: created, includeUsage: includeUsage}
}

// Stream translates one provider stream into a caller's dialect and keeps
// the usage it reported.
type Stream struct {
	dec      Decoder
	enc      Encoder
	evs      []Event
	Usage    Usage
	HasUsage bool
	// Events counts the events written to the caller so far.
	Events int
	ended  bool
}

// NewStream returns a translator from wire to caller.
func NewStream(wire, caller, model string, created int64, includeUsage bool) *Stream {
	return &Stream{dec: NewDecoder(wire), enc: NewEncoder(caller, model, created, includeUsage), evs: make([]Event, 0, 4)}
}

// Translate appends to b the caller's bytes for one provider event (its
// event name, possibly empty, and its data).
func (s *Stream) Translate(b []byte, event, data []byte) []byte {
	s.evs = s.dec.Decode(event, data, s.evs[:0])
	return s.encode(b)
}

// Failed reports whether the last event translated was the provider's
// error, with its type and message (escaped JSON string content).
func (s *Stream) Failed() (typ, message string, failed bool) {
	for i := range s.evs {
		if s.evs[i].Kind == EvError {
			return s.evs[i].ErrType, s.evs[i].Text, true
		}
	}
	return "", "", false
}

func (s *Stream) encode(b []byte) []byte {
	for i := range s.evs {
		ev := &s.evs[i]
		if ev.Kind == EvUsage {
			s.Usage, s.HasUsage = ev.Usage, true
		}
		s.Events++
		b = s.enc.Encode(b, ev)
	}
	return b
}

// Finish appends what ends the stream for the caller. Once only.
func (s *Stream) Finish(b []byte) []byte {
	if s.ended {
		return b
	}
	s.ended = true
	s.evs = s.dec.End(s.evs[:0])
	b = s.encode(b)
	return s.enc.Finish(b)
}

// --- decoders ---

type chatDecoder struct{ started bool }

var doneData = []byte("[DONE]")

func (d *chatDecoder) Decode(_, data []byte, out []Event) []Event {
	if string(data) == string(doneData) {
		return out
	}
	doc := parse(data)
	if e := doc.Get("error"); e.Exists() {
		return append(out, Event{Kind: EvError, ErrType: e.Get("type").Str, Text: inner(literal(e.Get("message")))})
	}
	if !d.started {
		d.started = true
		out = append(out, Event{Kind: EvStart, ID: doc.Get("id").Str})
	}
	choice := doc.Get("choices.0")
	if choice.Exists() {
		delta := choice.Get("delta")
		if c := delta.Get("content"); c.Type == gjson.String && c.Str != "" {
			out = append(out, Event{Kind: EvText, Text: inner(c.Raw)})
		}
		delta.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
			i := int(tc.Get("index").Int())
			if id := tc.Get("id"); id.Type == gjson.String {
				out = append(out, Event{Kind: EvToolStart, Index: i, ID: id.Raw, Name: literal(tc.Get("function.name"))})
			}
			if a := tc.Get("function.arguments"); a.Type == gjson.String && a.Str != "" {
				out = append(out, Event{Kind: EvToolArgs, Index: i, Text: inner(a.Raw)})
			}
			return true
		})
		if f := choice.Get("finish_reason"); f.Type == gjson.String {
			out = append(out, Event{Kind: EvStop, Stop: chatStop(f.Str)})
		}
	}
	if u, ok := ChatUsage(doc.Get("usage")); ok {
		out = append(out, Event{Kind: EvUsage, Usage: u})
	}
	return out
}

func (d *chatDecoder) End(out []Event) []Event { return out }

type anthropicDecoder struct {
	usage  Usage
	tools  [8]int // content block index → tool call number, for the first blocks
	more   map[int]int
	ntools int
}

func (d *anthropicDecoder) toolOf(block int) (int, bool) {
	if block < len(d.tools) {
		return d.tools[block] - 1, d.tools[block] > 0
	}
	n, ok := d.more[block]
	return n, ok
}

func (d *anthropicDecoder) setTool(block, n int) {
	if block < len(d.tools) {
		d.tools[block] = n + 1
		return
	}
	if d.more == nil {
		d.more = map[int]int{}
	}
	d.more[block] = n
}

func (d *anthropicDecoder) Decode(event, data []byte, out []Event) []Event {
	doc := parse(data)
	typ := doc.Get("type").Str
	if typ == "" {
		typ = string(event)
	}
	switch typ {
	case "message_start":
		msg := doc.Get("message")
		d.usage, _ = AnthropicUsage(msg.Get("usage"))
		out = append(out, Event{Kind: EvStart, ID: msg.Get("id").Str})
	case "content_block_start":
		blk := doc.Get("content_block")
		switch blk.Get("type").Str {
		case "text":
			if t := blk.Get("text"); t.Str != "" {
				out = append(out, Event{Kind: EvText, Text: inner(t.Raw)})
			}
		case "tool_use":
			n := d.ntools
			d.ntools++
			d.setTool(int(doc.Get("index").Int()), n)
			out = append(out, Event{Kind: EvToolStart, Index: n, ID: literal(blk.Get("id")), Name: literal(blk.Get("name"))})
		}
	case "content_block_delta":
		delta := doc.Get("delta")
		switch delta.Get("type").Str {
		case "text_delta":
			out = append(out, Event{Kind: EvText, Text: inner(literal(delta.Get("text")))})
		case "input_json_delta":
			if n, ok := d.toolOf(int(doc.Get("index").Int())); ok {
				if pj := delta.Get("partial_json"); pj.Str != "" {
					out = append(out, Event{Kind: EvToolArgs, Index: n, Text: inner(pj.Raw)})
				}
			}
		}
	case "message_delta":
		u := doc.Get("usage")
		if o := u.Get("output_tokens"); o.Exists() {
			d.usage.Output = o.Int()
		}
		if u.Get("input_tokens").Exists() {
			in, _ := AnthropicUsage(u)
			d.usage.Input, d.usage.CacheRead, d.usage.CacheWrite = in.Input, in.CacheRead, in.CacheWrite
		}
		out = append(out, Event{Kind: EvStop, Stop: anthropicStop(doc.Get("delta.stop_reason").Str)})
	case "message_stop":
		out = append(out, Event{Kind: EvUsage, Usage: d.usage})
	case "error":
		e := doc.Get("error")
		out = append(out, Event{Kind: EvError, ErrType: e.Get("type").Str, Text: inner(literal(e.Get("message")))})
	}
	return out
}

func (d *anthropicDecoder) End(out []Event) []Event { return out }

type geminiDecoder struct {
	started  bool
	ntools   int
	usage    Usage
	hasUsage bool
}

func (d *geminiDecoder) Decode(_, data []byte, out []Event) []Event {
	doc := parse(data)
	if e := doc.Get("error"); e.Exists() {
		return append(out, Event{Kind: EvError, ErrType: e.Get("status").Str, Text: inner(literal(e.Get("message")))})
	}
	if !d.started {
		d.started = true
		out = append(out, Event{Kind: EvStart, ID: doc.Get("responseId").Str})
	}
	cand := doc.Get("candidates.0")
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		if p.Get("thought").Bool() {
			return true
		}
		if t := p.Get("text"); t.Type == gjson.String {
			if t.Str != "" {
				out = append(out, Event{Kind: EvText, Text: inner(t.Raw)})
			}
		} else if fc := p.Get("functionCall"); fc.IsObject() {
			// Gemini sends a call whole: one start, one piece of arguments.
			id := literal(fc.Get("id"))
			if id == "" {
				id = toolCallID(d.ntools)
			}
			args := AppendString(nil, objectOr(fc.Get("args").Raw))
			out = append(out, Event{Kind: EvToolStart, Index: d.ntools, ID: id, Name: literal(fc.Get("name"))},
				Event{Kind: EvToolArgs, Index: d.ntools, Text: string(args[1 : len(args)-1])})
			d.ntools++
		}
		return true
	})
	if f := cand.Get("finishReason"); f.Type == gjson.String {
		out = append(out, Event{Kind: EvStop, Stop: geminiStop(f.Str, d.ntools > 0)})
	}
	if u, ok := GeminiUsage(doc.Get("usageMetadata")); ok {
		d.usage, d.hasUsage = u, true // every chunk carries the totals so far
	}
	return out
}

func (d *geminiDecoder) End(out []Event) []Event {
	if d.hasUsage {
		out = append(out, Event{Kind: EvUsage, Usage: d.usage})
	}
	return out
}

// --- encoders ---

type chatEncoder struct {
	model        string
	created      int64
	includeUsage bool
	head         []byte // every chunk's bytes up to the inside of "choices"
}

func (e *chatEncoder) start(id string) {
	b := append(e.head[:0], `data: {"id":`...)
	b = AppendString(b, chatID(id))
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = appendInt(b, e.created)
	b = append(b, `,"model":`...)
	b = AppendString(b, e.model)
	e.head = append(b, `,"choices":[`...)
}

func (e *chatEncoder) Encode(b []byte, ev *Event) []byte {
	if e.head == nil {
		e.start(ev.ID)
		b = append(b, e.head...)
		b = append(b, `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	}
	switch ev.Kind {
	case EvText:
		b = append(b, e.head...)
		b = append(b, `{"index":0,"delta":{"content":"`...)
		b = append(b, ev.Text...)
		b = append(b, `"},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	case EvToolStart:
		b = append(b, e.head...)
		b = append(b, `{"index":0,"delta":{"tool_calls":[{"index":`...)
		b = appendInt(b, int64(ev.Index))
		b = append(b, `,"id":`...)
		b = appendLit(b, ev.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendLit(b, ev.Name)
		b = append(b, `,"arguments":""}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	case EvToolArgs:
		b = append(b, e.head...)
		b = append(b, `{"index":0,"delta":{"tool_calls":[{"index":`...)
		b = appendInt(b, int64(ev.Index))
		b = append(b, `,"function":{"arguments":"`...)
		b = append(b, ev.Text...)
		b = append(b, `"}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	case EvStop:
		b = append(b, e.head...)
		b = append(b, `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
		b = append(b, chatFinish(ev.Stop)...)
		b = append(b, `"}]}`+"\n\n"...)
	case EvUsage:
		if e.includeUsage {
			b = append(b, e.head...)
			b = append(b, `],"usage":`...)
			b = appendChatUsage(b, ev.Usage)
			b = append(b, "}\n\n"...)
		}
	case EvError:
		b = appendChatStreamError(b, ev)
	}
	return b
}

func appendChatStreamError(b []byte, ev *Event) []byte {
	b = append(b, `data: {"error":{"message":"`...)
	b = append(b, ev.Text...)
	b = append(b, `","type":`...)
	b = AppendString(b, ev.ErrType)
	return append(b, `,"code":null}}`+"\n\n"...)
}

func (e *chatEncoder) Finish(b []byte) []byte { return append(b, "data: [DONE]\n\n"...) }

type messagesEncoder struct {
	model    string
	started  bool
	open     int  // index of the open content block, -1 if none
	openTool int  // its tool call number, -1 for a text block
	next     int  // index of the next content block
	stopped  bool // a stop reason arrived
	stop     StopReason
	done     bool
}

func (e *messagesEncoder) Encode(b []byte, ev *Event) []byte {
	if e.done {
		return b
	}
	if !e.started {
		e.started = true
		b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
		b = AppendString(b, messageID(ev.ID))
		b = append(b, `,"type":"message","role":"assistant","model":`...)
		b = AppendString(b, e.model)
		b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`+"\n\n"...)
	}
	switch ev.Kind {
	case EvText:
		if e.open < 0 || e.openTool >= 0 {
			b = e.closeBlock(b)
			b = e.openBlock(b, `{"type":"text","text":""}`, -1)
		}
		b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
		b = appendInt(b, int64(e.open))
		b = append(b, `,"delta":{"type":"text_delta","text":"`...)
		b = append(b, ev.Text...)
		b = append(b, "\"}}\n\n"...)
	case EvToolStart:
		b = e.closeBlock(b)
		blk := make([]byte, 0, 64)
		blk = append(blk, `{"type":"tool_use","id":`...)
		blk = appendLit(blk, ev.ID)
		blk = append(blk, `,"name":`...)
		blk = appendLit(blk, ev.Name)
		blk = append(blk, `,"input":{}}`...)
		b = e.openBlock(b, string(blk), ev.Index)
	case EvToolArgs:
		if e.open >= 0 && e.openTool == ev.Index {
			b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
			b = appendInt(b, int64(e.open))
			b = append(b, `,"delta":{"type":"input_json_delta","partial_json":"`...)
			b = append(b, ev.Text...)
			b = append(b, "\"}}\n\n"...)
		}
	case EvStop:
		b = e.closeBlock(b)
		e.stopped, e.stop = true, ev.Stop
	case EvUsage:
		b = e.end(b, ev.Usage)
	case EvError:
		b = append(b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"...)
		b = AppendString(b, AnthropicErrorType(0, ev.ErrType))
		b = append(b, `,"message":"`...)
		b = append(b, ev.Text...)
		b = append(b, "\"}}\n\n"...)
	}
	return b
}

func (e *messagesEncoder) openBlock(b []byte, block string, tool int) []byte {
	e.open, e.openTool = e.next, tool
	e.next++
	b = append(b, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	b = appendInt(b, int64(e.open))
	b = append(b, `,"content_block":`...)
	b = append(b, block...)
	return append(b, "}\n\n"...)
}

func (e *messagesEncoder) closeBlock(b []byte) []byte {
	if e.open < 0 {
		return b
	}
	b = append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	b = appendInt(b, int64(e.open))
	e.open = -1
	return append(b, "}\n\n"...)
}

func (e *messagesEncoder) end(b []byte, u Usage) []byte {
	b = e.closeBlock(b)
	b = append(b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, anthropicStopName(e.stop)...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = appendAnthropicUsage(b, u)
	b = append(b, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	e.done = true
	return b
}

func (e *messagesEncoder) Finish(b []byte) []byte {
	if !e.started || e.done {
		return b
	}
	return e.end(b, Usage{})
}

// respItem is an output item of a streamed response, kept for the
// done events and the final response object.
type respItem struct {
	part Part   // PartText, or PartToolCall with ID and Name
	tool int    // the tool call's number
	buf  []byte // the text or the arguments so far, escaped
}

type responsesEncoder struct {
	model   string
	created int64
	id      string
	seq     int64
	started bool
	open    int // index of the open item in items, -1 if none
	items   []respItem
	stop    StopReason
	usage   Usage
	done    bool
}

func (e *responsesEncoder) event(b []byte, typ string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = appendInt(b, e.seq)
	e.seq++
	return b
}

func (e *responsesEncoder) Encode(b []byte, ev *Event) []byte {
	if e.done {
		return b
	}
	if !e.started {
		e.started = true
		e.id = strings.Clone(responseID(ev.ID)) // ev's strings point into the provider's event
		for _, typ := range [...]string{"response.created", "response.in_progress"} {
			b = e.event(b, typ)
			b = append(b, `,"response":`...)
			b = appendResponseObject(b, e.id, e.model, e.created, "in_progress", nil, nil)
			b = append(b, "}\n\n"...)
		}
	}
	switch ev.Kind {
	case EvText:
		if e.open < 0 || e.items[e.open].part.Type != PartText {
			b = e.closeItem(b)
			e.open = len(e.items)
			e.items = append(e.items, respItem{part: Part{Type: PartText}})
			b = e.event(b, "response.output_item.added")
			b = e.indexes(b, false)
			b = append(b, `,"item":`...)
			b = appendMessageItem(b, e.id, e.open, "in_progress", "")
			b = append(b, "}\n\n"...)
			b = e.event(b, "response.content_part.added")
			b = e.indexes(b, true)
			b = append(b, `,"part":{"type":"output_text","text":"","annotations":[]}}`+"\n\n"...)
		}
		it := &e.items[e.open]
		it.buf = append(it.buf, ev.Text...)
		b = e.event(b, "response.output_text.delta")
		b = e.indexes(b, true)
		b = append(b, `,"delta":"`...)
		b = append(b, ev.Text...)
		b = append(b, "\",\"logprobs\":[]}\n\n"...)
	case EvToolStart:
		b = e.closeItem(b)
		e.open = len(e.items)
		e.items = append(e.items, respItem{part: Part{Type: PartToolCall, ID: strings.Clone(ev.ID), Name: strings.Clone(ev.Name)}, tool: ev.Index})
		b = e.event(b, "response.output_item.added")
		b = e.indexes(b, false)
		b = append(b, `,"item":`...)
		b = appendFunctionCallItem(b, &e.items[e.open].part, "in_progress", "")
		b = append(b, "}\n\n"...)
	case EvToolArgs:
		if e.open >= 0 && e.items[e.open].part.Type == PartToolCall && e.items[e.open].tool == ev.Index {
			it := &e.items[e.open]
			it.buf = append(it.buf, ev.Text...)
			b = e.event(b, "response.function_call_arguments.delta")
			b = e.indexes(b, false)
			b = append(b, `,"delta":"`...)
			b = append(b, ev.Text...)
			b = append(b, "\"}\n\n"...)
		}
	case EvStop:
		b = e.closeItem(b)
		e.stop = ev.Stop
	case EvUsage:
		e.usage = ev.Usage
	case EvError:
		b = e.event(b, "error")
		b = append(b, `,"code":`...)
		b = AppendString(b, ev.ErrType)
		b = append(b, `,"message":"`...)
		b = append(b, ev.Text...)
		b = append(b, "\",\"param\":null}\n\n"...)
	}
	return b
}

// indexes appends item_id and output_index (and content_index).
func (e *responsesEncoder) indexes(b []byte, content bool) []byte {
	it := &e.items[e.open]
	b = append(b, `,"item_id":`...)
	if it.part.Type == PartText {
		b = appendItemID(b, "msg_", e.id, e.open)
	} else {
		b = append(b, `"fc_`...)
		b = append(b, inner(it.part.ID)...)
		b = append(b, '"')
	}
	b = append(b, `,"output_index":`...)
	b = appendInt(b, int64(e.open))
	if content {
		b = append(b, `,"content_index":0`...)
	}
	return b
}

func (e *responsesEncoder) closeItem(b []byte) []byte {
	if e.open < 0 {
		return b
	}
	it := &e.items[e.open]
	lit := make([]byte, 0, len(it.buf)+2)
	lit = append(append(append(lit, '"'), it.buf...), '"')
	if it.part.Type == PartText {
		it.part.Text = string(lit)
		b = e.event(b, "response.output_text.done")
		b = e.indexes(b, true)
		b = append(b, `,"text":`...)
		b = append(b, lit...)
		b = append(b, ",\"logprobs\":[]}\n\n"...)
		b = e.event(b, "response.content_part.done")
		b = e.indexes(b, true)
		b = append(b, `,"part":`...)
		b = appendOutputText(b, it.part.Text)
		b = append(b, "}\n\n"...)
		b = e.event(b, "response.output_item.done")
		b = e.indexes(b, false)
		b = append(b, `,"item":`...)
		b = appendMessageItem(b, e.id, e.open, "completed", it.part.Text)
	} else {
		it.part.Input = gjson.Parse(string(lit)).Str
		b = e.event(b, "response.function_call_arguments.done")
		b = e.indexes(b, false)
		b = append(b, `,"arguments":`...)
		b = append(b, lit...)
		b = append(b, "}\n\n"...)
		b = e.event(b, "response.output_item.done")
		b = e.indexes(b, false)
		b = append(b, `,"item":`...)
		b = appendFunctionCallItem(b, &it.part, "completed", it.part.Input)
	}
	e.open = -1
	return append(b, "}\n\n"...)
}

func (e *responsesEncoder) Finish(b []byte) []byte {
	if !e.started || e.done {
		return b
	}
	b = e.closeItem(b)
	e.done = true
	parts := make([]Part, len(e.items))
	for i := range e.items {
		parts[i] = e.items[i].part
	}
	status := statusOf(e.stop)
	typ := "response.completed"
	if status == "incomplete" {
		typ = "response.incomplete"
	}
	b = e.event(b, typ)
	b = append(b, `,"response":`...)
	b = appendResponseObject(b, e.id, e.model, e.created, status, parts, &e.usage)
	return append(b, "}\n\n"...)
}
