package relay

import (
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/tokenizer"
	"github.com/tidwall/gjson"
)

// countUsage fills in tokens with the offline tokenizer when the provider
// reported none: the prompt from the request, the reply from its text.
func countUsage(req *provider.Request, reply string, rec *keygate.UsageRecord) {
	var texts []string
	if req.Dialect == provider.DialectEmbeddings {
		in := gjson.GetBytes(req.Body, "input")
		if in.IsArray() {
			in.ForEach(func(_, v gjson.Result) bool {
				texts = append(texts, v.String())
				return true
			})
		} else {
			texts = append(texts, in.String())
		}
		rec.PromptTokens = 0
		for _, t := range texts {
			rec.PromptTokens += tokenizer.Count(t)
		}
		return
	}
	gjson.GetBytes(req.Body, "messages").ForEach(func(_, m gjson.Result) bool {
		content := m.Get("content")
		if content.IsArray() {
			content.ForEach(func(_, part gjson.Result) bool {
				texts = append(texts, part.Get("text").String())
				return true
			})
		} else {
			texts = append(texts, content.String())
		}
		return true
	})
	rec.PromptTokens = tokenizer.CountMessages(texts)
	rec.CompletionTokens = tokenizer.Count(reply)
}
