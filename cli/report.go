package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/spf13/cobra"
)

func newReportCmd(env Env) *cobra.Command {
	o := &operator{env: env}
	var since time.Duration
	var by, format string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Usage and cost per key, model, user or token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" && format != "csv" {
				return fmt.Errorf("--format: %q must be table, json or csv", format)
			}
			switch by {
			case "key", "model", "user", "token":
			default:
				return fmt.Errorf("--by: %q must be key, model, user or token", by)
			}
			now := time.Now().UTC()
			q := url.Values{"group_by": {by}, "from": {now.Add(-since).Format(time.RFC3339)}, "to": {now.Add(time.Minute).Format(time.RFC3339)}}
			var answer struct{ Data []keygate.UsageTotal }
			if err := o.client().get(cmd.Context(), "/api/v1/usage?"+q.Encode(), &answer); err != nil {
				return err
			}
			o.json = format == "json"
			if format == "csv" {
				return writeReportCSV(env.Stdout, by, answer.Data)
			}
			return o.print(answer.Data, func(w io.Writer) {
				var total keygate.UsageTotal
				table(w, fmt.Sprintf("%s\tREQUESTS\tPROMPT\tCOMPLETION\tTOTAL\tCOST", strings.ToUpper(by)), func(tw io.Writer) {
					for _, u := range answer.Data {
						fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t$%.4f\n", orDash(u.Group), u.Requests, u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.Cost)
						total.Requests += u.Requests
						total.PromptTokens += u.PromptTokens
						total.CompletionTokens += u.CompletionTokens
						total.TotalTokens += u.TotalTokens
						total.Cost += u.Cost
					}
					fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t$%.4f\n", total.Requests, total.PromptTokens, total.CompletionTokens, total.TotalTokens, total.Cost)
				})
				fmt.Fprintf(w, "since %s\n", now.Add(-since).Format(time.RFC3339))
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "how far back")
	cmd.Flags().StringVar(&by, "by", "model", "group by key, model, user or token")
	cmd.Flags().StringVar(&format, "format", "table", "table, json or csv")
	return cmd
}

func writeReportCSV(w io.Writer, by string, rows []keygate.UsageTotal) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{by, "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost"})
	for _, u := range rows {
		cw.Write([]string{u.Group, strconv.FormatInt(u.Requests, 10), strconv.FormatInt(u.PromptTokens, 10),
			strconv.FormatInt(u.CompletionTokens, 10), strconv.FormatInt(u.TotalTokens, 10), strconv.FormatFloat(u.Cost, 'f', 6, 64)})
	}
	cw.Flush()
	return cw.Error()
}
