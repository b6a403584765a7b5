package keycheck

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/health"
	"github.com/keygate/keygate/pool"
)

// A real provider lists its models for a key whose quota is spent. The
// background check must not take that as a cure: the key stays out and its
// backoff takes the next step; once real calls pass again it comes back.
func TestModelListPassDoesNotHealQuota(t *testing.T) {
	quota := true
	provider := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/models":
			io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`)
		case quota:
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`)
		default:
			io.WriteString(w, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
		}
	})
	c, clock := newChecker(t, keygate.Model{ModelID: "gpt-4o-mini", BaseURL: serve(t, provider) + "/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-spent-key-0000001"}}})
	fail(t, c, "gpt-4o-mini", health.ClassInsufficientQuota, t0)
	k := c.Pool.Keys()[0]
	clock.Advance(2 * time.Hour)
	c.CheckAll(context.Background(), Filter{}, nil)
	v := k.View(clock.Now())
	if v.Status != pool.StatusCooldown || v.ErrorClass != "insufficient_quota" || v.RetryCount != 1 {
		t.Fatalf("a quota key the model list passes must stay out and back off further: %+v", v)
	}
	quota = false
	clock.Advance(3 * time.Hour)
	c.CheckAll(context.Background(), Filter{}, nil)
	if v := k.View(clock.Now()); v.ErrorClass != "" || v.Status == pool.StatusCooldown || v.Status == pool.StatusDisabled {
		t.Fatalf("a real call that passes brings the key back: %+v", v)
	}
}
