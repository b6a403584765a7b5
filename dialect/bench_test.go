package dialect

import "testing"

// BenchmarkChatToAnthropic is one non-streaming chat request served by an
// Anthropic deployment: the request out, the answer back.
func BenchmarkChatToAnthropic(b *testing.B) {
	body := []byte(chatFull)
	answer := []byte(anthropicAnswer)
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseChatRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		out = AppendMessagesRequest(out[:0], req, "claude-x", 0)
		resp, err := ParseMessagesResponse(answer)
		if err != nil {
			b.Fatal(err)
		}
		out = AppendChatResponse(out[:0], resp, "alias", 1)
	}
}

// BenchmarkChatToAnthropicStream is the same request streamed: the request
// out and every event of an Anthropic stream (text then a tool call) into
// OpenAI chunks.
func BenchmarkChatToAnthropicStream(b *testing.B) {
	body := []byte(chatFull)
	var evs []sseEvent
	for _, ev := range splitSSE(anthropicStream) {
		evs = append(evs, sseEvent{ev.name, ev.data})
	}
	datas, names := make([][]byte, len(evs)), make([][]byte, len(evs))
	for i := range evs {
		datas[i], names[i] = []byte(evs[i].data), []byte(evs[i].name)
	}
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseChatRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		out = AppendMessagesRequest(out[:0], req, "claude-x", 0)
		s := NewStream(WireAnthropic, Chat, "alias", 1, true)
		out = out[:0]
		for i := range evs {
			out = s.Translate(out[:0], names[i], datas[i])
		}
		out = s.Finish(out[:0])
	}
}
