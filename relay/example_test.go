package relay_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/relay"
)

type noRecords struct{}

func (noRecords) Record(keygate.UsageRecord) error { return nil }

// An application calls a provider through a pool of keys without running
// keygate's server: the pooled client is an http.RoundTripper. Here the
// first key is revoked; the call fails over to the second, and the pool
// remembers (the revoked key, confirmed by keygate's own check, is disabled).
func ExampleTransport() {
	upstream := httptest.NewServer(mockprovider.New(mockprovider.Options{Keys: map[string]mockprovider.Behavior{
		"sk-revoked-0000000001": mockprovider.InvalidKey,
		"sk-healthy-0000000002": mockprovider.OK,
	}}))
	defer upstream.Close()

	p := pool.New(keygate.NewKeyHasher([]byte("app secret")), keygate.DefaultKeyPolicy())
	p.Load([]keygate.Model{{
		ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: upstream.URL + "/v1", KeyUsageMode: keygate.ModeSingle,
		APIKeys: []keygate.KeySpec{{Key: "sk-revoked-0000000001"}, {Key: "sk-healthy-0000000002"}},
	}})
	client := &http.Client{Transport: &relay.Transport{Relay: &relay.Relay{
		Pool: p, Client: &http.Client{Transport: relay.NewTransport(0)}, Recorder: noRecords{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clockwork.NewRealClock(),
	}}}

	resp, err := client.Post("http://pool/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, "after", resp.Header.Get("X-Keygate-Attempts"), "attempts:", strings.Contains(string(body), `"chat.completion"`))
	for _, k := range p.Keys() {
		fmt.Println(k.Masked(), k.View(clockwork.NewRealClock().Now()).Status)
	}
	// Unordered output:
	// 200 after 2 attempts: true
	// sk-r…0001 disabled
	// sk-h…0002 healthy
}
