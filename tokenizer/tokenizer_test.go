package tokenizer

import "testing"

func TestCount(t *testing.T) {
	cases := map[string]int{
		"":                     0,
		"hello":                1,
		"hello world":          2,
		"The quick brown fox.": 5,
		"你好世界":                 2,
	}
	for text, want := range cases {
		if got := Count(text); got != want {
			t.Errorf("Count(%q) = %d, want %d", text, got, want)
		}
	}
	if got := CountMessages([]string{"hello", "hello world"}); got != 3+3+1+3+2 {
		t.Errorf("CountMessages = %d", got)
	}
}
