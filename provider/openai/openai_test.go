package openai

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/sse"
)

func TestStreamTextAndUsageByMeaning(t *testing.T) {
	req := &provider.Request{Dialect: provider.DialectChat, Stream: true, Body: []byte(`{"model":"m","stream":true}`)}
	in := "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\r\n\r\n" +
		": keep-alive\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}],\n" +
		"data: \"usage\":null}\n\n" +
		"data: {\"choices\": [ ], \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 2}}\n\n" +
		"data: [DONE]\n\n"
	st := (Adapter{}).Stream(req)
	rd := sse.NewReader(strings.NewReader(in))
	defer rd.Release()
	var out []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		var f *provider.Failure
		if out, f = st.Event(ev, out); f != nil {
			t.Fatal(f.Verdict)
		}
	}
	if st.Text() != "hello there" {
		t.Fatalf("text %q", st.Text())
	}
	if u := st.Usage(); !u.Known || u.PromptTokens != 5 || u.CompletionTokens != 2 {
		t.Fatalf("usage %+v", u)
	}
	if strings.Contains(string(out), "prompt_tokens") {
		t.Fatalf("the usage chunk keygate asked for must not reach a caller who did not: %s", out)
	}
	if strings.Count(string(out), "data: ") != 4 || !strings.HasSuffix(string(out), "data: [DONE]\n\n") {
		t.Fatalf("events relayed in canonical form: %q", out)
	}
}

func TestStreamDetectsBrokenAndErrorEvents(t *testing.T) {
	req := &provider.Request{Dialect: provider.DialectChat, Stream: true, Body: []byte(`{"model":"m","stream":true}`)}
	for _, c := range []struct{ data, reason string }{
		{`{"choices":[{"delta":{"content":"hi"}}]`, "not valid JSON"},
		{`{"choices":[{"delta":{"content":"hi"}}]}}`, "not valid JSON"},
		{`{"error":{"message":"Rate limit reached","type":"rate_limit_exceeded"}}`, ""},
		{`{"\u0065rror":{"message":"Rate limit reached","type":"rate_limit_exceeded"}}`, ""},
	} {
		out, f := (Adapter{}).Stream(req).Event(sse.Event{Data: []byte(c.data)}, nil)
		if f == nil || len(out) != 0 {
			t.Fatalf("%s: relayed %q, want a failure", c.data, out)
		}
		if !strings.Contains(f.Verdict.Reason, c.reason) {
			t.Errorf("%s: reason %q", c.data, f.Verdict.Reason)
		}
	}
}
