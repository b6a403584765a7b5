package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderFollowsTheStandard(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // name|data
	}{
		{"space after colon", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []string{`|{"a":1}`, "|[DONE]"}},
		{"no space", "data:{\"a\":1}\n\n", []string{`|{"a":1}`}},
		{"two spaces keep one", "data:  x\n\n", []string{"| x"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"|a", "|b"}},
		{"bare cr", "data: a\r\rdata: b\r\r", []string{"|a", "|b"}},
		{"comments and keep-alives", ": ping\n\n:\ndata: a\n\n", []string{"|a"}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []string{"|{\"a\":\n1}"}},
		{"named events", "event: response.created\ndata: {}\n\n", []string{"response.created|{}"}},
		{"no final blank line", "data: a\n\ndata: b", []string{"|a", "|b"}},
		{"event without data is not dispatched", "event: x\n\ndata: a\n\n", []string{"|a"}},
		{"field without colon", "data\n\n", []string{"|"}},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				var src io.Reader = strings.NewReader(tt.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				r := NewReader(src)
				defer r.Release()
				var got []string
				for {
					ev, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, string(ev.Name)+"|"+string(ev.Data))
				}
				if strings.Join(got, ";") != strings.Join(tt.want, ";") {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestLongLinesAndLimits(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	r := NewReader(strings.NewReader("data: " + long + "\n\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != long {
		t.Fatalf("a 100 KiB line must come through whole: %v %d", err, len(ev.Data))
	}
	r.Release()
	r = NewReader(strings.NewReader(strings.Repeat("y", MaxEvent+10)))
	if _, err := r.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an endless line must stop at MaxEvent, got %v", err)
	}
	r.Release()
}

func TestAppendEventRoundTrips(t *testing.T) {
	b := AppendEvent(nil, []byte("x"), []byte("a\nb"))
	if string(b) != "event: x\ndata: a\ndata: b\n\n" {
		t.Fatalf("%q", b)
	}
	r := NewReader(strings.NewReader(string(b)))
	ev, _ := r.Next()
	if string(ev.Data) != "a\nb" || string(ev.Name) != "x" {
		t.Fatalf("%q %q", ev.Name, ev.Data)
	}
}
