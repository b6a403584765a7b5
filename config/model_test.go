package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate"
)

func TestModelProblems(t *testing.T) {
	m := keygate.Model{ModelID: "gpt-4o", BaseURL: "https://api.openai.com/v1/"}
	if p := ModelProblems(&m); len(p) != 0 {
		t.Fatalf("a model without keys is fine for the API: %v", p)
	}
	if m.Status != "enabled" || m.KeyUsageMode != "round_robin" || m.Provider != "openai" || m.BaseURL != "https://api.openai.com/v1" {
		t.Fatalf("defaults not applied: %+v", m)
	}

	bad := keygate.Model{BaseURL: "sk-pasted-into-the-wrong-field-01", KeyUsageMode: "random", RPM: -1,
		APIKeys: []keygate.KeySpec{{Key: "sk-pasted-into-the-wrong-field-01"}, {Key: ""}}}
	got := ModelProblems(&bad)
	want := []string{
		"model_id: required",
		`base_url: "sk-p…d-01" is not an absolute http(s) URL`,
		`key_usage_mode: "random" must be one of single, round_robin, least_used, weighted`,
		"rpm: -1 must not be negative",
		"api_keys[1].key: required",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n got %q\nwant %q", got, want)
	}
	if strings.Contains(strings.Join(got, " "), "sk-pasted") {
		t.Fatal("a key shows in clear")
	}
}
