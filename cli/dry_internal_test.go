package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pool"
)

func TestStatusWarnsOfKeysRunningDry(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	n := func(v int64) *int64 { return &v }
	keys := []pool.KeyView{
		{ID: "k-soon", Masked: "sk-a…aaaa", Status: pool.StatusHealthy, ExhaustsAt: at(90 * time.Second), RemainingRequests: n(12), ResetsAt: at(time.Minute)},
		{ID: "k-later", Masked: "sk-b…bbbb", Status: pool.StatusHealthy, ExhaustsAt: at(time.Hour)},
		{ID: "k-sooner", Masked: "sk-c…cccc", Status: pool.StatusHealthy, ExhaustsAt: at(30 * time.Second), RemainingTokens: n(900)},
		{ID: "k-calm", Masked: "sk-d…dddd", Status: pool.StatusHealthy},
	}
	d := summarize(keys, now)
	if len(d.RunningDry) != 2 || d.RunningDry[0].ID != "k-sooner" || d.RunningDry[1].ID != "k-soon" {
		t.Fatalf("running dry: %+v, want k-sooner then k-soon", d.RunningDry)
	}
	var b strings.Builder
	writeRunningDry(&b, d.RunningDry, now)
	out := b.String()
	for _, want := range []string{"Running dry", "k-sooner", "30s", "900", "k-soon", "1m30s", "12"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "k-later") || strings.Contains(out, "k-calm") {
		t.Errorf("keys far from dry are listed:\n%s", out)
	}
	if !strings.Contains(strings.Join(d.NextSteps, "\n"), "2 keys run dry soon") {
		t.Errorf("next steps: %v", d.NextSteps)
	}
}
