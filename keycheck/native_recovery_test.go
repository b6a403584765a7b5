package keycheck

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/mockprovider"
	_ "github.com/keygate/keygate/provider/anthropic"
	_ "github.com/keygate/keygate/provider/azure"
	_ "github.com/keygate/keygate/provider/gemini"
	"github.com/tidwall/gjson"
)

// An Anthropic, Gemini or Azure key out of credit still lists its models,
// as the real vendors do. The recovery schedule must not take that as a cure: it
// sends the vendor's real minimal call (Anthropic POST /v1/messages with
// max_tokens 1; Gemini :generateContent with maxOutputTokens 1; Azure the
// deployment's chat completions with max_tokens 1), and the
// key heals only once that call passes.
func TestRecoveryHealsNativeQuotaKeyOnlyOnARealCall(t *testing.T) {
	for _, tc := range []struct {
		provider, key, model, base string
		listPath                   string
		listAuth                   string
		callPath                   string
		oneToken                   string // the gjson path of the one-token cap in the call's body
	}{
		{"anthropic", "sk-ant-broke-000000001", "claude-3-5-haiku-latest", "", "/v1/models", "X-Api-Key", "/v1/messages", "max_tokens"},
		{"gemini", "AIza-broke-00000000001", "gemini-2.0-flash", "/v1beta", "/v1beta/models", "X-Goog-Api-Key",
			"/v1beta/models/gemini-2.0-flash:generateContent", "generationConfig.maxOutputTokens"},
		{"azure", "azure-broke-key-000001", "gpt-4o-mini", "", "/openai/models?api-version=2024-10-21", "Api-Key",
			"/openai/deployments/gpt-4o-mini/chat/completions", "max_tokens"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			mock := mockprovider.New(mockprovider.Options{Models: []string{tc.model},
				Keys: map[string]mockprovider.Behavior{tc.key: mockprovider.QuotaExhausted}})
			base := serve(t, mock)
			c, clock := newChecker(t, keygate.Model{ModelID: "chat", Provider: tc.provider, BaseURL: base + tc.base,
				UpstreamModel: tc.model, APIKeys: []keygate.KeySpec{{Key: tc.key}}})
			r := &Recovery{Checker: c, Schedule: DefaultSchedule()}
			ctx := context.Background()
			fail(t, c, "chat", health.ClassInsufficientQuota, t0)
			k := c.Pool.Keys()[0]

			// The fake is faithful: the spent key's model list passes.
			req, _ := http.NewRequest("GET", base+tc.listPath, nil)
			req.Header.Set(tc.listAuth, tc.key)
			req.Header.Set("Anthropic-Version", "2023-06-01")
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
				t.Fatalf("the spent key's model list: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			mock.Reset()

			lastCall := func() mockprovider.Request {
				t.Helper()
				reqs := mock.Requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests to the provider, want the one minimal call", len(reqs))
				}
				q := reqs[0]
				if q.Method != "POST" || q.Path != tc.callPath || gjson.GetBytes(q.Body, tc.oneToken).Int() != 1 {
					t.Fatalf("the recovery check sent %s %s %s, want POST %s with %s 1", q.Method, q.Path, q.Body, tc.callPath, tc.oneToken)
				}
				mock.Reset()
				return q
			}
			clock.Advance(70 * time.Minute) // the first check of insufficient_quota: 1 h (+ jitter)
			if n := r.RunOnce(ctx); n != 1 {
				t.Fatalf("%d checks due", n)
			}
			lastCall()
			// (Gemini's per-day quota cools the key for this model until the
			// quota's reset; Anthropic's credit balance takes the next step
			// of the key's backoff.)
			if _, ok := c.Pool.Group("chat").Pick(nil, clock.Now().UnixNano()); ok || k.View(clock.Now()).ErrorClass != "insufficient_quota" {
				t.Fatalf("a failing one-token call must keep the key out: %+v", k.View(clock.Now()))
			}

			mock.SetBehavior(tc.key, mockprovider.OK) // credit bought
			clock.Advance(2*time.Hour + time.Minute)
			if n := r.RunOnce(ctx); n != 1 {
				t.Fatalf("%d checks due on the second step", n)
			}
			if q := lastCall(); !strings.Contains(string(q.Body), "hi") {
				t.Fatalf("the minimal call's prompt: %s", q.Body)
			}
			if _, ok := c.Pool.Group("chat").Pick(nil, clock.Now().UnixNano()); !ok || k.View(clock.Now()).ErrorClass != "" {
				t.Fatalf("a one-token call that passes heals the key: %+v", k.View(clock.Now()))
			}
		})
	}
}

// A relay in front of Anthropic that answers 200 with an error object (as
// some do) has not proved the key: the one-token call is judged as live
// traffic is, and the key stays out.
func TestRealCallErrorObjectIn200DoesNotHeal(t *testing.T) {
	relay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Write([]byte(`{"data":[{"type":"model","id":"claude-3-5-haiku-latest"}],"has_more":false}`))
			return
		}
		w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`))
	})
	c, clock := newChecker(t, keygate.Model{ModelID: "chat", Provider: "anthropic", BaseURL: serve(t, relay),
		APIKeys: []keygate.KeySpec{{Key: "sk-ant-relayed-0000001"}}})
	fail(t, c, "chat", health.ClassInsufficientQuota, t0)
	clock.Advance(2 * time.Hour)
	res := c.CheckAll(context.Background(), Filter{}, nil)
	if len(res) != 1 || res[0].OK || res[0].Class != "insufficient_quota" {
		t.Fatalf("a 200 error object passed the one-token call: %+v", res)
	}
	if _, ok := c.Pool.Group("chat").Pick(nil, clock.Now().UnixNano()); ok {
		t.Fatalf("the key must stay out: %+v", c.Pool.Keys()[0].View(clock.Now()))
	}
}
