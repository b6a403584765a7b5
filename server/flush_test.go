package server_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Providers' streams arrive in pieces that need not end where an event
// does. An event keygate has relayed must reach the caller even while the
// next one is only half here and the provider pauses: keygate flushes
// before it waits on the upstream, not once its parser has nothing left.
func TestStreamEventIsNotHeldBehindAHalfArrivedOne(t *testing.T) {
	rest := make(chan struct{})
	f := newFixture(t, setup{upstream: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}`+"\n\n"+
				`data: {"id":"c1","object":"chat.completion.chunk","choi`)
			w.(http.Flusher).Flush()
			select {
			case <-rest:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, `ces":[{"index":0,"delta":{"content":" world"}}]}`+"\n\n"+"data: [DONE]\n\n")
		})
	}})
	resp := f.post(t, "/v1/chat/completions", appToken,
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		first, _ := br.ReadString('\n')
		got <- first
	}()
	select {
	case first := <-got:
		if !strings.Contains(first, `"Hello"`) {
			t.Fatalf("first event: %q", first)
		}
	case <-time.After(10 * time.Second): // a safety net, not a timing: without the flush it never comes
		close(rest)
		t.Fatal("the first event did not arrive while the second was half sent")
	}
	close(rest)
	tail, _ := io.ReadAll(br)
	if !strings.Contains(string(tail), `" world"`) || !strings.HasSuffix(strings.TrimSpace(string(tail)), "data: [DONE]") {
		t.Fatalf("the rest of the stream: %s", tail)
	}
}
