package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
)

// The routes the dashboard reads: the server searches, sorts, pages and
// aggregates, so a browser never holds 10,000 keys or a million records.
func TestKeyListPagesSortsAndSearches(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	cfg := baseConfig(t, t.TempDir())
	m := keygate.Model{ModelID: "gpt-4o-mini", Provider: "openai", BaseURL: "http://127.0.0.1:9/v1"}
	for i := range 120 {
		m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: fmt.Sprintf("sk-page-test-%04d", i)})
	}
	cfg.Models = []keygate.Model{m, {ModelID: "other", Provider: "openai", BaseURL: "http://127.0.0.1:9/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-other-model-key-1"}}}}
	a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer func() { srv.Close(); a.Store().Close() }()

	type list struct {
		Data []struct {
			ID, Masked string
			Models     []string
		}
		Total int
	}
	get := func(q string) list {
		t.Helper()
		resp, body := call(t, "GET", srv.URL+"/api/v1/keys?"+q, adminToken, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET /api/v1/keys?%s: %d %s", q, resp.StatusCode, body)
		}
		var l list
		json.Unmarshal(body, &l)
		return l
	}
	all := get("")
	if all.Total != 121 || len(all.Data) != 121 {
		t.Fatalf("no paging asked: %d of %d keys, want all 121", len(all.Data), all.Total)
	}
	p1, p3 := get("limit=50&sort=masked"), get("limit=50&offset=100&sort=masked")
	if p1.Total != 121 || len(p1.Data) != 50 || len(p3.Data) != 21 {
		t.Fatalf("pages of 50: %d and %d keys of %d", len(p1.Data), len(p3.Data), p1.Total)
	}
	for i := 1; i < len(p1.Data); i++ {
		if p1.Data[i-1].Masked > p1.Data[i].Masked {
			t.Fatalf("sort=masked: %q before %q", p1.Data[i-1].Masked, p1.Data[i].Masked)
		}
	}
	desc := get("limit=1&sort=masked&order=desc")
	if desc.Data[0].Masked != p3.Data[len(p3.Data)-1].Masked {
		t.Fatalf("order=desc starts with %q, want the last of ascending %q", desc.Data[0].Masked, p3.Data[len(p3.Data)-1].Masked)
	}
	if s := get("q=OTHER"); s.Total != 1 || s.Data[0].Models[0] != "other" {
		t.Fatalf("q=OTHER found %d keys, want the one of model other", s.Total)
	}
	if resp, body := call(t, "GET", srv.URL+"/api/v1/keys?sort=secret", adminToken, ""); resp.StatusCode != 400 || !strings.Contains(string(body), "sort:") {
		t.Fatalf("sort=secret: %d %s, want 400 naming sort", resp.StatusCode, body)
	}

	resp, body := call(t, "GET", srv.URL+"/api/v1/keys/summary", adminToken, "")
	var sum struct {
		Total    int
		ByStatus map[string]int `json:"by_status"`
	}
	json.Unmarshal(body, &sum)
	if resp.StatusCode != 200 || sum.Total != 121 || sum.ByStatus["unused"] != 121 || len(sum.ByStatus) != 6 {
		t.Fatalf("summary: %d %s", resp.StatusCode, body)
	}
}

func TestUsageSeriesAndCSV(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC))
	a, err := app.New(context.Background(), baseConfig(t, t.TempDir()), app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer func() { srv.Close(); a.Store().Close() }()
	now := clock.Now()
	recs := []keygate.UsageRecord{
		{Time: now.Add(-90 * time.Minute), Model: "a", KeyID: "k1", Status: 200, PromptTokens: 10, CompletionTokens: 5, LatencyMS: 100, Cost: 0.5},
		{Time: now.Add(-80 * time.Minute), Model: "a", KeyID: "k2", Status: 500, LatencyMS: 300},
		{Time: now.Add(-30 * time.Minute), Model: "=b", KeyID: "k1", Status: 200, PromptTokens: 1, CompletionTokens: 1, LatencyMS: 50, Cost: 0.25},
		{Time: now.Add(-25 * time.Hour), Model: "a", Status: 200}, // outside the default 24 h
	}
	if err := a.Store().InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	resp, body := call(t, "GET", srv.URL+"/api/v1/usage/series?group_by=model&bucket=3600", adminToken, "")
	var s struct {
		BucketSeconds int `json:"bucket_seconds"`
		Data          []struct {
			Start            time.Time
			Group            string
			Requests, Errors int64
			LatencyMS        int64 `json:"latency_ms"`
			TotalTokens      int64 `json:"total_tokens"`
		}
	}
	json.Unmarshal(body, &s)
	if resp.StatusCode != 200 || s.BucketSeconds != 3600 || len(s.Data) != 2 {
		t.Fatalf("series: %d %s", resp.StatusCode, body)
	}
	// Buckets start at from = now-24h: the two "a" records share hour 22, "=b" is in hour 23.
	first, second := s.Data[0], s.Data[1]
	if first.Group != "a" || first.Requests != 2 || first.Errors != 1 || first.LatencyMS != 400 || first.TotalTokens != 15 ||
		!first.Start.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("first bucket %+v", first)
	}
	if second.Group != "=b" || second.Requests != 1 || !second.Start.Equal(now.Add(-time.Hour)) {
		t.Fatalf("second bucket %+v", second)
	}
	if resp, _ := call(t, "GET", srv.URL+"/api/v1/usage/series?bucket=1", adminToken, ""); resp.StatusCode != 400 {
		t.Fatalf("86,400 buckets: %d, want 400", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", srv.URL+"/api/v1/usage/series", appToken, ""); resp.StatusCode != 403 {
		t.Fatalf("series with a gateway token: %d, want 403", resp.StatusCode)
	}

	from := now.Add(-24 * time.Hour).Format(time.RFC3339)
	resp, body = call(t, "GET", srv.URL+"/api/v1/usage?format=csv&group_by=model&from="+from, adminToken, "")
	want := "model,requests,prompt_tokens,completion_tokens,total_tokens,cost\n'=b,1,1,1,2,0.250000\na,2,10,5,15,0.500000\n"
	if resp.StatusCode != 200 || string(body) != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %q\nwant %q", resp.StatusCode, body, want)
	}
}
