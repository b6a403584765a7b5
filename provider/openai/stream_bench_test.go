package openai

import (
	"testing"

	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/sse"
)

// chunk is a content chunk as OpenAI sends them, one per token.
var chunk = []byte(`{"id":"chatcmpl-9xYzAbCdEfGhIjKlMnOpQrStUv","object":"chat.completion.chunk","created":1733059200,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}],"usage":null}`)

// BenchmarkStreamEvent is the chat stream translator's cost per event.
func BenchmarkStreamEvent(b *testing.B) {
	req := &provider.Request{Dialect: provider.DialectChat, Stream: true, Body: []byte(`{"model":"m","stream":true}`)}
	st := (Adapter{}).Stream(req).(*stream)
	ev := sse.Event{Data: chunk}
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		st.text = st.text[:0]
		var f *provider.Failure
		if out, f = st.Event(ev, out[:0]); f != nil {
			b.Fatal(f.Verdict)
		}
	}
}
