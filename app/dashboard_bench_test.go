package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
)

// BenchmarkDashboard measures what each dashboard page asks of the server
// with 10,000 keys and 1,000,000 usage records in a real SQLite (spread
// over 7 days, so the default 24 h window holds about 143,000). Target:
// under 50 ms per answer. Seeding takes a while; run it alone:
//
//	go test ./app/ -run '^$' -bench Dashboard -benchtime 10x
func BenchmarkDashboard(b *testing.B) {
	const keys, records, span = 10_000, 1_000_000, 7 * 24 * time.Hour
	ctx := context.Background()
	cfg := baseConfig(&testing.T{}, b.TempDir())
	m := keygate.Model{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: "http://127.0.0.1:9/v1", InputPrice: 0.15, OutputPrice: 0.6}
	for i := range keys {
		m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: fmt.Sprintf("sk-bench-%08d-abcdefgh", i)})
	}
	cfg.Models = []keygate.Model{m}
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Store().Close()
	now := time.Now()
	ids := make([]string, 0, keys)
	for _, k := range a.Pool().Keys() {
		ids = append(ids, k.ID)
	}
	models := []string{"gpt-4o-mini", "gpt-4o", "claude-sonnet", "gemini-flash", "deepseek-chat"}
	batch := make([]keygate.UsageRecord, 0, 20_000)
	for i := range records {
		batch = append(batch, keygate.UsageRecord{
			// Oldest first, as the recorder appends them.
			Time: now.Add(-span / records * time.Duration(records-1-i)), RequestID: fmt.Sprint("req_", i),
			User: fmt.Sprint("user", i%50), Token: fmt.Sprint("token", i%20), Model: models[i%len(models)], KeyID: ids[i%len(ids)],
			Status: 200 + 229*(i%50/49), Attempts: 1, PromptTokens: 100 + i%400, CompletionTokens: 50 + i%200, LatencyMS: int64(200 + i%800), Cost: 0.0001,
		})
		if len(batch) == cap(batch) {
			if err := a.Store().InsertUsage(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	h := a.Handler()

	// A signed-in browser: the page itself needs the session cookie.
	form := url.Values{"admin_token": {adminToken}}.Encode()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var cookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		cookie = c
	}
	if cookie == nil {
		b.Fatalf("sign-in: %d", rec.Code)
	}

	day := url.Values{"from": {now.Add(-24 * time.Hour).UTC().Format(time.RFC3339)}, "to": {now.UTC().Format(time.RFC3339)}, "group_by": {"model"}}.Encode()
	hour := url.Values{"from": {now.Add(-time.Hour).UTC().Format(time.RFC3339)}, "to": {now.UTC().Format(time.RFC3339)}, "bucket": {"60"}}.Encode()
	for _, tc := range []struct{ page, path string }{
		{"overview page", "/"},
		{"overview key summary", "/api/v1/keys/summary"},
		{"overview last hour per minute", "/api/v1/usage/series?" + hour},
		{"overview today by model", "/api/v1/usage?" + day},
		{"keys page", "/keys"},
		{"keys first 50 by status", "/api/v1/keys?limit=50&sort=status"},
		{"keys search", "/api/v1/keys?limit=50&q=abcdefgh&sort=cost&order=desc"},
		{"key history 24 h", "/api/v1/usage/series?bucket=3600&key=" + ids[0] + "&" + day},
		{"usage 24 h by model", "/api/v1/usage?" + day},
		{"usage 24 h series by model", "/api/v1/usage/series?" + day},
		{"usage 24 h by key", "/api/v1/usage?" + strings.Replace(day, "group_by=model", "group_by=key", 1)},
		{"models list", "/api/v1/llm-models"},
		{"tokens list", "/api/v1/tokens"},
	} {
		b.Run(tc.page, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", tc.path, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("GET %s: %d %s", tc.path, rec.Code, rec.Body.String()[:min(200, rec.Body.Len())])
				}
			}
		})
	}
}
