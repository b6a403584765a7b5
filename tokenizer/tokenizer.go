// Package tokenizer counts tokens when a provider reports no usage. It uses
// tiktoken's o200k_base encoding with its data embedded in the binary, so it
// works with no network. Loading the encoding takes a few hundred
// milliseconds, done once, the first time a count is needed.
package tokenizer

import (
	"sync"
	"sync/atomic"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

var (
	once   sync.Once
	enc    *tiktoken.Tiktoken
	loaded atomic.Bool
)

func load() {
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	// The embedded data cannot fail to load; if it ever did, Count falls
	// back to an estimate rather than failing a request.
	enc, _ = tiktoken.GetEncoding("o200k_base")
	loaded.Store(true)
}

// Count returns the number of tokens in text.
func Count(text string) int {
	if text == "" {
		return 0
	}
	once.Do(load)
	if enc == nil {
		return (len(text) + 3) / 4
	}
	return len(enc.EncodeOrdinary(text))
}

// perMessage is the overhead OpenAI's chat format adds to every message.
const perMessage = 3

// CountMessages counts a chat prompt: each message's text plus the
// per-message overhead, and the 3 tokens that prime the reply.
func CountMessages(texts []string) int {
	n := 3
	for _, t := range texts {
		n += perMessage + Count(t)
	}
	return n
}
