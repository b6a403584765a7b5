package keycheck

import (
	"context"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
)

// The native wires' key checks: Anthropic's model list under its own base
// (no /v1), Azure's under /openai with the deployment's api-version, and
// Gemini's, each authenticated as the vendor expects, against the mock
// provider speaking those wires.
func TestCheckNativeWires(t *testing.T) {
	mock := mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-ant-ok-0000000001": mockprovider.OK, "azok-000000000003": mockprovider.OK, "AIza-ok-000000000006": mockprovider.OK,
		"azslow-0000000005": mockprovider.RateLimited}})
	base := serve(t, mock)
	c, _ := newChecker(t,
		keygate.Model{ModelID: "claude", Provider: "anthropic", BaseURL: base,
			APIKeys: []keygate.KeySpec{{Key: "sk-ant-ok-0000000001"}, {Key: "ant-bad-00000000002"}}},
		keygate.Model{ModelID: "gpt-azure", Provider: "azure", BaseURL: base, APIVersion: "2024-10-21",
			APIKeys: []keygate.KeySpec{{Key: "azok-000000000003"}, {Key: "azbad-00000000004"}, {Key: "azslow-0000000005"}}},
		keygate.Model{ModelID: "gem", Provider: "gemini", BaseURL: base + "/v1beta",
			APIKeys: []keygate.KeySpec{{Key: "AIza-ok-000000000006"}}},
	)
	want := map[string]struct {
		vendor string
		ok     bool
		class  string
	}{
		"sk-ant-ok-0000000001": {VendorAnthropic, true, ""},
		"ant-bad-00000000002":  {VendorAnthropic, false, "authentication_error"},
		"azok-000000000003":    {VendorAzure, true, ""},
		"azbad-00000000004":    {VendorAzure, false, "authentication_error"},
		// A throttled Azure key still lists the resource's models, as the
		// real service does: a check proves it authenticates, no more (a
		// recovery check of a throttled key sends the one-token call).
		"azslow-0000000005":    {VendorAzure, true, ""},
		"AIza-ok-000000000006": {VendorGemini, true, ""},
	}
	results := c.CheckAll(context.Background(), Filter{Vendor: "all"}, nil)
	if len(results) != len(want) {
		t.Fatalf("%d results", len(results))
	}
	for key, w := range want {
		found := false
		for _, r := range results {
			if r.Masked == keygate.Mask(key) {
				found = true
				if r.Vendor != w.vendor || r.OK != w.ok || r.Class != w.class {
					t.Errorf("%s: vendor %s ok %v class %q (%s), want %+v", key, r.Vendor, r.OK, r.Class, r.Message, w)
				}
			}
		}
		if !found {
			t.Errorf("%s not checked", key)
		}
	}
	if n := len(c.CheckAll(context.Background(), Filter{Vendor: VendorAzure}, nil)); n != 3 {
		t.Errorf("--vendor azure checked %d keys, want 3", n)
	}
}
