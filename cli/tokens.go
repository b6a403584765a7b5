package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/spf13/cobra"
)

func newTokensCmd(env Env) *cobra.Command {
	return newOperatorCmd(env, "tokens", "Create, list and revoke gateway tokens",
		newTokensCreateCmd, newTokensListCmd, newTokensRevokeCmd)
}

type tokenAnswer struct {
	keygate.TokenSpec
	Spent *float64 `json:"spent,omitempty"`
}

func newTokensCreateCmd(o *operator) *cobra.Command {
	var (
		in      keygate.TokenSpec
		models  string
		amount  float64
		period  string
		expires string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a gateway token; its secret is shown this once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if models != "" {
				in.Models = strings.Split(models, ",")
			}
			if amount != 0 || period != "" {
				in.Budget = &keygate.Budget{Amount: amount, Period: period}
			}
			if expires != "" {
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return err
				}
				in.ExpiresAt = &t
			}
			var out keygate.TokenSpec
			if err := o.client().post(cmd.Context(), "/api/v1/tokens", in, &out); err != nil {
				return err
			}
			return o.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "token %s (id %d) created. Its secret, shown only now:\n\n  %s\n\n", out.Name, out.ID, out.Token)
			})
		},
	}
	cmd.Flags().StringVar(&in.User, "user", "", "the user the token belongs to")
	cmd.Flags().StringVar(&models, "models", "", "comma-separated model ids the token may use (default all)")
	cmd.Flags().IntVar(&in.RPM, "rpm", 0, "requests per minute (0: no cap)")
	cmd.Flags().IntVar(&in.TPM, "tpm", 0, "tokens per minute (0: no cap)")
	cmd.Flags().Float64Var(&amount, "budget", 0, "budget in USD per --period")
	cmd.Flags().StringVar(&period, "period", "", "budget period: daily, monthly or total")
	cmd.Flags().StringVar(&expires, "expires", "", "expiry: a duration from now (720h) or an RFC 3339 time")
	return cmd
}

// parseExpiry reads a duration from now or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires: %q is neither a duration like 720h nor an RFC 3339 time", s)
	}
	return t, nil
}

func newTokensListCmd(o *operator) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List gateway tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var answer struct{ Data []tokenAnswer }
			if err := o.client().get(cmd.Context(), "/api/v1/tokens", &answer); err != nil {
				return err
			}
			return o.print(answer.Data, func(w io.Writer) {
				table(w, "ID\tNAME\tUSER\tMODELS\tRPM\tTPM\tBUDGET\tSPENT\tEXPIRES", func(tw io.Writer) {
					for _, t := range answer.Data {
						budget, spent, exp := "-", "-", "-"
						if t.Budget != nil {
							budget = fmt.Sprintf("$%.2f %s", t.Budget.Amount, t.Budget.Period)
						}
						if t.Spent != nil {
							spent = fmt.Sprintf("$%.4f", *t.Spent)
						}
						if t.ExpiresAt != nil {
							exp = t.ExpiresAt.UTC().Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, orDash(t.User),
							strings.Join(t.Models, ","), capOrDash(t.RPM), capOrDash(t.TPM), budget, spent, exp)
					}
				})
			})
		},
	}
}

func capOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func newTokensRevokeCmd(o *operator) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a gateway token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.client().del(cmd.Context(), "/api/v1/tokens/"+args[0], nil); err != nil {
				return err
			}
			return o.print(map[string]any{"revoked": args[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "token %s revoked\n", args[0])
			})
		},
	}
}
