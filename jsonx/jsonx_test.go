package jsonx

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `{"a":1}`, `[1,2,3]`, `"x"`, `0`, `-1.5e+10`, `true`, `null`, ` {"a" : [ {"b":null} , "c\u00e9\n" ] } `,
		`{"a":1,}`, `[1,]`, `{"a"}`, `{a:1}`, `01`, `1.`, `-`, `"\x"`, `"abc`, `[`, `]`, `{"a":1}x`, `tru`, ``, `{"a":"` + "\x01" + `"}`,
		`{"a":{"b":[1,{"c":"d"}]},"e":[]}`, `[[],[[]],{}]`, `{"a":1 "b":2}`, `[1 2]`, `{"a":[}`,
	}
	for _, d := range docs {
		if got, want := Valid([]byte(d)), json.Valid([]byte(d)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", d, got, want)
		}
	}
}

func TestDepthIsBounded(t *testing.T) {
	deep := strings.Repeat("[", 8<<20)
	if Valid([]byte(deep)) {
		t.Fatal("8 MB of [ is not valid")
	}
	err := CheckObject([]byte(`{"a":` + deep))
	if err == nil || !strings.Contains(err.Error(), "nested deeper than 128") {
		t.Fatalf("want the depth named, got %v", err)
	}
	ok := strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)
	if err := CheckObject([]byte(`{"a":` + ok + `}`)); err != nil {
		t.Fatalf("128 levels are allowed: %v", err)
	}
}

func TestDuplicateTopLevelKeys(t *testing.T) {
	for doc, bad := range map[string]bool{
		`{"max_tokens":-1e15,"max_tokens":10}`:      true,
		`{"max_tokens":1,"max\u005ftokens":10}`:     true,
		`{"a":{"x":1},"b":{"x":2}}`:                 false,
		`{"model":"m","messages":[{"a":1,"a":2}]}`:  false, // only the top level is ours
		`{"model":"m","messages":[],"stream":true}`: false,
		`["not","an","object"]`:                     true,
	} {
		if err := CheckObject([]byte(doc)); (err != nil) != bad {
			t.Errorf("CheckObject(%s) = %v, want error %v", doc, err, bad)
		}
	}
}

func BenchmarkValid(b *testing.B) {
	doc := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"hello there, how are you today? \u00e9"}],"temperature":0.7,"stream":false,"max_tokens":256}`)
	b.SetBytes(int64(len(doc)))
	for i := 0; i < b.N; i++ {
		CheckObject(doc)
	}
}

func TestValidTopReportsMembersInTheSamePass(t *testing.T) {
	b := []byte(` {"id" : "x", "choices":[{"delta":{"content":"hi"}}] ,"e\u0072ror":{},"usage": null,"n":-1.5e3} `)
	var got []string
	if !ValidTop(b, func(key []byte, start, end int) { got = append(got, string(key)+"="+string(b[start:end])) }) {
		t.Fatal("valid document refused")
	}
	want := []string{`"id"="x"`, `"choices"=[{"delta":{"content":"hi"}}]`, `"e\u0072ror"={}`, `"usage"=null`, `"n"=-1.5e3`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("members %q, want %q", got, want)
	}
	for _, doc := range []string{`{"choices":[}`, `{"a":1}x`, `{"a":1,}`, `[1,2]`, `"s"`, strings.Repeat("[", MaxDepth+1)} {
		n := 0
		ok := ValidTop([]byte(doc), func([]byte, int, int) { n++ })
		if ok != Valid([]byte(doc)) {
			t.Errorf("%q: ValidTop %v, Valid %v", doc, ok, !ok)
		}
		if doc == `[1,2]` && n != 0 {
			t.Errorf("an array has no members, got %d", n)
		}
	}
}
