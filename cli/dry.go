package cli

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
)

const runningDryWithin = pace.RunningDryWithin

// dryKey is a key about to run out of its rate limit (SPEC section 4a).
type dryKey struct {
	ID                string     `json:"id"`
	Masked            string     `json:"masked"`
	Models            []string   `json:"models"`
	RemainingRequests *int64     `json:"remaining_requests"`
	RemainingTokens   *int64     `json:"remaining_tokens"`
	ExhaustsAt        time.Time  `json:"exhausts_at"`
	ResetsAt          *time.Time `json:"resets_at"`
}

// runningDry lists the keys forecast to run out within runningDryWithin,
// soonest first.
func runningDry(keys []pool.KeyView, now time.Time) []dryKey {
	var out []dryKey
	for _, k := range keys {
		if k.ExhaustsAt == nil || k.ExhaustsAt.Sub(now) > runningDryWithin || k.Status == pool.StatusDisabled {
			continue
		}
		out = append(out, dryKey{ID: k.ID, Masked: k.Masked, Models: k.Models, RemainingRequests: k.RemainingRequests,
			RemainingTokens: k.RemainingTokens, ExhaustsAt: *k.ExhaustsAt, ResetsAt: k.ResetsAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExhaustsAt.Before(out[j].ExhaustsAt) })
	return out
}

// writeRunningDry prints the "running dry" section of `keygate status`.
func writeRunningDry(w io.Writer, dry []dryKey, now time.Time) {
	if len(dry) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRunning dry (at the current rate, within %s):\n", runningDryWithin)
	table(w, "KEY\tMASKED\tRUNS OUT IN\tREQUESTS LEFT\tTOKENS LEFT\tRESETS IN", func(tw io.Writer) {
		for _, k := range dry {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Masked, roundDur(k.ExhaustsAt.Sub(now)),
				count(k.RemainingRequests), count(k.RemainingTokens), resetsIn(k.ResetsAt, now))
		}
	})
}

func roundDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

func count(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func resetsIn(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return roundDur(t.Sub(now))
}
