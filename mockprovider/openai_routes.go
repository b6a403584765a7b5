package mockprovider

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// serveOpenAIRoute answers OpenAI's routes beyond chat and embeddings:
// the Responses API (plain and its typed events), legacy completions,
// moderations, image generation, audio (transcriptions take a multipart
// form, whose model field names the model) and rerank.
func (p *Provider) serveOpenAIRoute(w http.ResponseWriter, r *http.Request) {
	key := bearer(r.Header.Get("Authorization"))
	var body []byte
	var doc gjson.Result
	model, ok := "", false
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(8 << 20); err == nil {
			model, ok = r.FormValue("model"), r.MultipartForm != nil && len(r.MultipartForm.File["file"]) > 0
			body = []byte("multipart model=" + model)
		}
	} else {
		body, doc = readJSON(r)
		model, ok = doc.Get("model").Str, doc.IsObject()
	}
	stream := doc.Get("stream").Bool()
	if ok && model == "" {
		p.count(key)
		errMissingModel.write(w)
		return
	}
	if !p.admit(w, r, "openai", key, model, stream, body, ok) {
		return
	}
	w.Header()["Content-Type"] = jsonHeader["Content-Type"]
	quoted := p.models[model]
	switch r.URL.Path {
	case "/v1/responses":
		p.responses(w, r, doc, quoted, stream)
	case "/v1/completions":
		prompt := doc.Get("prompt").String()
		var arr [16]string
		words := p.replyWords(arr[:0], prompt)
		b := []byte(`{"id":"cmpl-mock` + strconv.FormatUint(p.seq.Add(1), 10) + `","object":"text_completion","created":`)
		b = appendInt(b, time.Now().Unix())
		b = append(append(b, `,"model":`...), quoted...)
		b = append(b, `,"choices":[{"text":`...)
		b = append(b, quote(" "+strings.Join(words, " "))...)
		b = append(b, `,"index":0,"logprobs":null,"finish_reason":"stop"}],"usage":`...)
		w.Write(append(appendUsage(b, countWords(prompt), len(words)), '}'))
	case "/v1/moderations":
		b := append([]byte(`{"id":"modr-mock","model":`), quoted...)
		w.Write(append(b, `,"results":[{"flagged":false,"categories":{"hate":false,"violence":false},"category_scores":{"hate":0.0001,"violence":0.0002}}]}`...))
	case "/v1/images/generations":
		w.Write([]byte(`{"created":1700000000,"data":[{"b64_json":"iVBORw0KGgo=","revised_prompt":` + string(quote(doc.Get("prompt").Str)) + `}],"usage":{"input_tokens":` +
			strconv.Itoa(countWords(doc.Get("prompt").Str)) + `,"output_tokens":1056,"total_tokens":` + strconv.Itoa(countWords(doc.Get("prompt").Str)+1056) + `}}`))
	case "/v1/audio/transcriptions":
		w.Write([]byte(`{"text":"mock transcription of the uploaded file"}`))
	case "/v1/audio/speech":
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Write([]byte("ID3mock-audio"))
	case "/v1/rerank":
		b := []byte(`{"id":"rerank-mock","results":[`)
		i := int64(0)
		doc.Get("documents").ForEach(func(_, _ gjson.Result) bool {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = appendInt(b, i)
			b = append(b, `,"relevance_score":`...)
			b = strconv.AppendFloat(b, 1/float64(i+1), 'f', 4, 64)
			b = append(b, '}')
			i++
			return true
		})
		b = append(b, `],"meta":{"billed_units":{"search_units":1}},"usage":{"total_tokens":`...)
		w.Write(append(appendInt(b, int64(countWords(doc.Get("query").Str))), "}}"...))
	}
}

func responsesTurn(doc gjson.Result) turn {
	var t turn
	t.text(doc.Get("instructions").Str)
	in := doc.Get("input")
	if in.Type == gjson.String {
		t.prompt += 3
		t.text(in.Str)
		t.last = in.Str
	}
	in.ForEach(func(_, it gjson.Result) bool {
		t.prompt += 3
		t.answered = false
		switch it.Get("type").Str {
		case "function_call_output":
			t.text(it.Get("output").Str)
			t.last, t.answered = "tool said "+it.Get("output").Str, true
		case "function_call":
		default:
			c := it.Get("content")
			text := c.Str
			if c.IsArray() {
				text = c.Get("0.text").Str
			}
			t.text(text)
			if it.Get("role").Str == "user" {
				t.last = text
			}
		}
		return true
	})
	t.tool = doc.Get("tools.0.name").Str
	return t
}

// responses answers POST /v1/responses as OpenAI does.
func (p *Provider) responses(w http.ResponseWriter, r *http.Request, doc gjson.Result, model []byte, stream bool) {
	t := responsesTurn(doc)
	var arr [16]string
	words := p.replyWords(arr[:0], t.last)
	id := "resp_mock" + strconv.FormatUint(p.seq.Add(1), 10)
	text := strings.Join(words, " ")
	args := `{"query":` + string(quote(t.last)) + `}`
	item := func(b []byte, status string, done bool) []byte {
		if t.callsTool() {
			b = append(b, `{"id":"fc_mock1","type":"function_call","status":"`+status+`","call_id":"call_mock1","name":`...)
			b = append(b, quote(t.tool)...)
			b = append(b, `,"arguments":`...)
			if done {
				return append(append(b, quote(args)...), '}')
			}
			return append(b, `""}`...)
		}
		b = append(b, `{"id":"msg_mock1","type":"message","status":"`+status+`","role":"assistant","content":[`...)
		if done {
			b = append(b, `{"type":"output_text","text":`...)
			b = append(append(b, quote(text)...), `,"annotations":[]}`...)
		}
		return append(b, "]}"...)
	}
	object := func(b []byte, status string) []byte {
		b = append(b, `{"id":"`+id+`","object":"response","created_at":`...)
		b = appendInt(b, time.Now().Unix())
		b = append(b, `,"status":"`+status+`","error":null,"incomplete_details":null,"model":`...)
		b = append(b, model...)
		b = append(b, `,"output":[`...)
		if status == "completed" {
			b = item(b, "completed", true)
		}
		b = append(b, `],"parallel_tool_calls":true,"tool_choice":"auto","tools":[],"usage":`...)
		if status != "completed" {
			return append(b, "null}"...)
		}
		b = append(b, `{"input_tokens":`...)
		b = appendInt(b, int64(t.prompt))
		b = append(b, `,"input_tokens_details":{"cached_tokens":0},"output_tokens":`...)
		b = appendInt(b, int64(outTokens(t, words)))
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
		b = appendInt(b, int64(t.prompt+outTokens(t, words)))
		return append(b, "}}"...)
	}
	if !stream {
		w.Write(object(nil, "completed"))
		return
	}
	w.Header().Del("Content-Type")
	maps.Copy(w.Header(), sseHeader)
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, rc: http.NewResponseController(w), ctx: r.Context(), delay: p.opts.ChunkDelay}
	seq := 0
	ev := func(typ string, rest func(b []byte) []byte) bool {
		b := append([]byte("event: "+typ+"\ndata: {\"type\":\""+typ+"\",\"sequence_number\":"), strconv.Itoa(seq)...)
		seq++
		b = rest(b)
		return s.send(append(b, "}\n\n"...))
	}
	ok := ev("response.created", func(b []byte) []byte { return object(append(b, `,"response":`...), "in_progress") })
	ok = ok && p.hold(r.Context())
	ok = ok && ev("response.in_progress", func(b []byte) []byte { return object(append(b, `,"response":`...), "in_progress") })
	ok = ok && ev("response.output_item.added", func(b []byte) []byte {
		return item(append(b, `,"output_index":0,"item":`...), "in_progress", false)
	})
	if t.callsTool() {
		ok = ok && ev("response.function_call_arguments.delta", func(b []byte) []byte {
			return append(append(b, `,"item_id":"fc_mock1","output_index":0,"delta":`...), quote(args)...)
		})
		ok = ok && ev("response.function_call_arguments.done", func(b []byte) []byte {
			return append(append(b, `,"item_id":"fc_mock1","output_index":0,"arguments":`...), quote(args)...)
		})
	} else {
		ok = ok && ev("response.content_part.added", func(b []byte) []byte {
			return append(b, `,"item_id":"msg_mock1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}`...)
		})
		for i := 0; ok && i < len(words); i++ {
			piece := words[i]
			if i > 0 {
				piece = " " + piece
			}
			ok = ev("response.output_text.delta", func(b []byte) []byte {
				b = append(b, `,"item_id":"msg_mock1","output_index":0,"content_index":0,"delta":`...)
				return append(append(b, quote(piece)...), `,"logprobs":[]`...)
			})
		}
		ok = ok && ev("response.output_text.done", func(b []byte) []byte {
			b = append(b, `,"item_id":"msg_mock1","output_index":0,"content_index":0,"text":`...)
			return append(append(b, quote(text)...), `,"logprobs":[]`...)
		})
		ok = ok && ev("response.content_part.done", func(b []byte) []byte {
			b = append(b, `,"item_id":"msg_mock1","output_index":0,"content_index":0,"part":{"type":"output_text","text":`...)
			return append(append(b, quote(text)...), `,"annotations":[]}`...)
		})
	}
	ok = ok && ev("response.output_item.done", func(b []byte) []byte {
		return item(append(b, `,"output_index":0,"item":`...), "completed", true)
	})
	ok = ok && ev("response.completed", func(b []byte) []byte { return object(append(b, `,"response":`...), "completed") })
	if !ok {
		p.canceled.Add(1)
	}
}
