package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keygate/keygate/pool"
)

// sourceLine is one key source as `keygate status` shows it.
type sourceLine struct {
	KeyID       string     `json:"key_id"`
	Models      []string   `json:"models"`
	Type        string     `json:"type"`
	Target      string     `json:"target"`
	State       string     `json:"state"`
	LastRefresh *time.Time `json:"last_refresh"`
	ExpiresAt   *time.Time `json:"expires_at"`
	LastError   string     `json:"last_error,omitempty"`
}

var sourceStateText = map[string]string{
	"starting": "first fetch in progress",
	"ready":    "credential valid, last refresh succeeded",
	"failing":  "refreshes fail; the current credential is still valid",
	"down":     "no valid credential: requests use the backup keys",
}

// sourcesOf lists the key sources behind keys.
func sourcesOf(keys []pool.KeyView) []sourceLine {
	var out []sourceLine
	for _, k := range keys {
		s := k.Source
		if s == nil {
			continue
		}
		out = append(out, sourceLine{KeyID: k.ID, Models: k.Models, Type: s.Type, Target: s.Target, State: s.State,
			LastRefresh: timeOrNil(s.FetchedAt), ExpiresAt: timeOrNil(s.ExpiresAt), LastError: s.LastError})
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// printSources writes the key sources' table, with the last errors below it.
func printSources(w io.Writer, sources []sourceLine, now time.Time) {
	if len(sources) == 0 {
		return
	}
	fmt.Fprintln(w)
	table(w, "KEY SOURCE\tTYPE\tMODELS\tSTATE\tLAST REFRESH\tEXPIRES", func(tw io.Writer) {
		for _, s := range sources {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Target, s.Type, strings.Join(s.Models, ","),
				s.State+" ("+sourceStateText[s.State]+")", ago(s.LastRefresh), expires(s.ExpiresAt, now))
		}
	})
	for _, s := range sources {
		if s.LastError != "" {
			fmt.Fprintf(w, "  %s: last error: %s\n", s.Target, s.LastError)
		}
	}
}

// sourceCell is a key's source in one cell of `keys list`.
func sourceCell(k pool.KeyView, now time.Time) string {
	if k.Source == nil {
		return "-"
	}
	return k.Source.Type + " " + k.Source.State + ", " + expires(timeOrNil(k.Source.ExpiresAt), now)
}

func expires(t *time.Time, now time.Time) string {
	switch {
	case t == nil:
		return "-"
	case !t.After(now):
		return "expired " + now.Sub(*t).Round(time.Second).String() + " ago"
	}
	return "in " + t.Sub(now).Round(time.Second).String()
}
