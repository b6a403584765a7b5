package cli

import (
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/keygate/keygate"
	"github.com/spf13/cobra"
)

func newAuditCmd(env Env) *cobra.Command {
	o := &operator{env: env}
	var since time.Duration
	var actor, action string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log: admin changes, logins and failed logins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			q := url.Values{"from": {now.Add(-since).Format(time.RFC3339)}}
			if actor != "" {
				q.Set("actor", actor)
			}
			if action != "" {
				q.Set("action", action)
			}
			var answer struct{ Data []keygate.AuditEntry }
			if err := o.client().get(cmd.Context(), "/api/v1/audit?"+q.Encode(), &answer); err != nil {
				return err
			}
			return o.print(answer.Data, func(w io.Writer) {
				table(w, "TIME\tACTOR\tACTION\tTARGET\tSOURCE\tSTATUS", func(tw io.Writer) {
					for _, e := range answer.Data {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", e.Time.Format(time.RFC3339), e.Actor, e.Action, orDash(e.Target), e.Source, e.Status)
					}
				})
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "how far back")
	cmd.Flags().StringVar(&actor, "actor", "", "only this actor (admin, user:NAME, or the username a login tried)")
	cmd.Flags().StringVar(&action, "action", "", "only this action (e.g. llm-models.create, keys.update, login.failed)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
	return cmd
}
