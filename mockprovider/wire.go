package mockprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/keygate/keygate/dialect"
	"github.com/tidwall/gjson"
)

// Responses are appended into pooled buffers rather than marshalled through
// encoding/json: the load harness pushes this handler hard, and the shapes
// are fixed.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 { // let one huge embeddings answer go
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendString and appendEscaped write JSON strings as the gateway's
// translations do (Invalid UTF-8 becomes U+FFFD, as with encoding/json).
var (
	appendString  = dialect.AppendString
	appendEscaped = dialect.AppendEscaped
)

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, int64(prompt))
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, int64(completion))
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, int64(prompt+completion))
	return append(b, '}')
}

func countWords(s string) int {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	return n
}

// chatPrompt reads what the mock needs from a chat request's messages: a
// deterministic prompt token count (words in every text content, plus 3 per
// message as OpenAI's per-message overhead) and the last user message's text.
func chatPrompt(messages gjson.Result) (tokens int, lastUser string) {
	messages.ForEach(func(_, m gjson.Result) bool {
		tokens += 3
		text := ""
		content := m.Get("content")
		if content.IsArray() { // [{"type":"text","text":"…"}, {"type":"image_url",…}]
			content.ForEach(func(_, part gjson.Result) bool {
				t := part.Get("text").Str
				tokens += countWords(t)
				if text == "" {
					text = t
				}
				return true
			})
		} else {
			text = content.Str
			tokens += countWords(text)
		}
		if m.Get("role").Str == "user" {
			lastUser = text
		}
		return true
	})
	return tokens, lastUser
}

// replyWords is the completion, p.words words long: "mock reply", then up to
// four words of the last user message so that tests can tell answers apart,
// then "word7", "word8"… numbered by position.
func (p *Provider) replyWords(dst []string, lastUser string) []string {
	dst = append(dst, "mock", "reply")
	for w := range strings.FieldsSeq(lastUser) {
		if len(dst) == 6 {
			break
		}
		dst = append(dst, w)
	}
	for i := len(dst); i < p.words; i++ {
		dst = append(dst, p.filler[i])
	}
	return dst[:min(len(dst), p.words)]
}

// embeddingInputs calls fn once per input of an embeddings request: a
// string, an array of strings, a token array, or an array of token arrays.
// text is what the vector is derived from; tokens is the input's usage.
func embeddingInputs(input gjson.Result, fn func(text string, tokens int)) {
	one := func(v gjson.Result) {
		if v.IsArray() {
			fn(v.Raw, len(v.Array()))
		} else {
			fn(v.Str, countWords(v.Str))
		}
	}
	if !input.IsArray() {
		one(input)
		return
	}
	if first := input.Get("0"); first.Type == gjson.Number { // one tokenised input
		one(input)
		return
	}
	input.ForEach(func(_, v gjson.Result) bool { one(v); return true })
}

const embeddingDims = 8

// embedding is a deterministic unit vector derived from the input text, so
// equal inputs get equal vectors and different inputs (almost surely) not.
func embedding(text string) [embeddingDims]float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	x := h.Sum64()
	var v [embeddingDims]float32
	var norm float64
	for i := range v {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		f := float64(z>>11)/(1<<53)*2 - 1
		v[i] = float32(f)
		norm += f * f
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// appendEmbedding writes the vector as a JSON array of floats, or, for
// encoding_format "base64" (what the official Python SDK asks for by
// default), as base64 of little-endian float32s.
func appendEmbedding(b []byte, v [embeddingDims]float32, b64 bool) []byte {
	if b64 {
		var raw [embeddingDims * 4]byte
		for i, f := range v {
			binary.LittleEndian.PutUint32(raw[i*4:], math.Float32bits(f))
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, raw[:])
		return append(b, '"')
	}
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return append(b, ']')
}
