package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// operator is what the commands that talk to a running keygate share:
// the client, and whether to print JSON (for scripts) or tables (for people).
type operator struct {
	env  Env
	json bool
}

// newOperatorCmd is a command group (keys, models, …) with the --json flag.
func newOperatorCmd(env Env, use, short string, children ...func(*operator) *cobra.Command) *cobra.Command {
	o := &operator{env: env}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	cmd.PersistentFlags().BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
	for _, child := range children {
		cmd.AddCommand(child(o))
	}
	return cmd
}

func (o *operator) client() *apiClient { return newAPIClient(o.env) }

// print writes v as indented JSON with --json, else what human writes.
func (o *operator) print(v any, human func(w io.Writer)) error {
	if o.json {
		enc := json.NewEncoder(o.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(o.env.Stdout)
	return nil
}

// table writes rows under a header, in aligned columns.
func table(w io.Writer, header string, rows func(tw io.Writer)) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
}

// ago shows a time as how long ago it was, "-" for never.
func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}

// plural writes a count with its noun: "1 key", "2 keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
