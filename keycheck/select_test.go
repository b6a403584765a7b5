package keycheck

import (
	"context"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// The dashboard checks the keys an operator selected, and only those.
func TestCheckOnlyTheSelectedKeys(t *testing.T) {
	openai := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-select-good-00001": mockprovider.OK, "sk-select-good-00002": mockprovider.OK, "sk-select-good-00003": mockprovider.OK}})
	c, _ := newChecker(t, keygate.Model{ModelID: "gpt", Provider: "openai", BaseURL: serve(t, openai) + "/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-select-good-00001"}, {Key: "sk-select-good-00002"}, {Key: "sk-select-good-00003"}}})
	keys := c.Pool.Keys()
	pick := []string{keys[0].ID, keys[2].ID}
	if n := c.Plan(Filter{IDs: pick}); n != 2 {
		t.Fatalf("plan for 2 selected keys: %d", n)
	}
	got := map[string]bool{}
	for _, r := range c.CheckAll(context.Background(), Filter{IDs: pick}, nil) {
		got[r.ID] = r.OK
	}
	if len(got) != 2 || !got[pick[0]] || !got[pick[1]] {
		t.Fatalf("checked %v, want exactly %v passing", got, pick)
	}
}
