package mockprovider

import (
	"maps"
	"net/http"

	"github.com/tidwall/gjson"
)

// toolCall answers a chat request that offers tools as OpenAI does when
// the model decides to call one: the first tool, with arguments naming the
// last user message; streamed, the call's id and name come first and the
// arguments in two pieces.
func (p *Provider) toolCall(w http.ResponseWriter, req gjson.Result, model []byte, stream bool) {
	name := req.Get("tools.0.function.name").Str
	_, lastUser := chatPrompt(req.Get("messages"))
	args := `{"query":` + string(quote(lastUser)) + `}`
	if !stream {
		b := appendHead(nil, "chat.completion", p.seq.Add(1), 1700000000, model)
		b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_mock1","type":"function","function":{"name":`...)
		b = append(b, quote(name)...)
		b = append(b, `,"arguments":`...)
		b = append(b, quote(args)...)
		b = append(b, `}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`...)
		w.Header()["Content-Type"] = jsonHeader["Content-Type"]
		w.Write(b)
		return
	}
	maps.Copy(w.Header(), sseHeader)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	head := appendHead([]byte("data: "), "chat.completion.chunk", p.seq.Add(1), 1700000000, model)
	half := len(args) / 2
	for _, choice := range []string{
		`{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_mock1","type":"function","function":{"name":` + string(quote(name)) + `,"arguments":""}}]},"finish_reason":null}`,
		`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + string(quote(args[:half])) + `}}]},"finish_reason":null}`,
		`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + string(quote(args[half:])) + `}}]},"finish_reason":null}`,
		`{"index":0,"delta":{},"finish_reason":"tool_calls"}`,
	} {
		b := append(append([]byte(nil), head...), `,"choices":[`...)
		b = append(b, choice...)
		w.Write(append(b, "]}\n\n"...))
		rc.Flush()
	}
	if req.Get("stream_options.include_usage").Bool() {
		b := append(append([]byte(nil), head...), `,"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`+"\n\n"...)
		w.Write(b)
	}
	w.Write([]byte("data: [DONE]\n\n"))
	rc.Flush()
}
