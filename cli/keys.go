package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
	"github.com/spf13/cobra"
)

func newKeysCmd(env Env) *cobra.Command {
	return newOperatorCmd(env, "keys", "List, add, import, enable, disable and remove provider keys",
		newKeysListCmd, newKeysAddCmd, newKeysImportCmd,
		func(o *operator) *cobra.Command { return newKeyStatusCmd(o, "enable", keygate.StatusEnabled) },
		func(o *operator) *cobra.Command { return newKeyStatusCmd(o, "disable", keygate.StatusDisabled) },
		newKeysRmCmd, newKeysCheckCmd, newKeysResetCmd, newKeysAnalyzeCmd)
}

func newKeysListCmd(o *operator) *cobra.Command {
	var model, status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show every key in service and its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if model != "" {
				q.Set("model", model)
			}
			if status != "" {
				q.Set("status", status)
			}
			var answer struct{ Data []pool.KeyView }
			if err := o.client().get(cmd.Context(), "/api/v1/keys?"+q.Encode(), &answer); err != nil {
				return err
			}
			return o.print(answer.Data, func(w io.Writer) {
				now := time.Now()
				table(w, "ID\tKEY\tMODELS\tSTATUS\tCLASS\tREQUESTS\tSUCCESS\tLAST USED\tSOURCE", func(tw io.Writer) {
					for _, k := range answer.Data {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.0f%%\t%s\t%s\n", k.ID, k.Masked, strings.Join(k.Models, ","),
							k.Status, orDash(k.ErrorClass), k.TotalRequests, k.SuccessRate, ago(k.LastUsedAt), sourceCell(k, now))
					}
				})
				fmt.Fprintln(w, plural(len(answer.Data), "key"))
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "only keys of this model_id")
	cmd.Flags().StringVar(&status, "status", "", "only keys in this state: healthy, unused, warning, error, cooldown, disabled")
	return cmd
}

func newKeysAddCmd(o *operator) *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "add --model M KEY...",
		Short: "Add keys to a model (keys import reads them from a file, away from the shell history)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, keys []string) error {
			return o.addKeys(cmd.Context(), model, keys)
		},
	}
	modelFlag(cmd, &model)
	return cmd
}

func newKeysImportCmd(o *operator) *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "import --model M FILE",
		Short: "Add the keys of a file to a model: one per line, blank lines and # comments skipped (- reads stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := readKeys(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			return o.addKeys(cmd.Context(), model, keys)
		},
	}
	modelFlag(cmd, &model)
	return cmd
}

// modelFlag adds the required --model flag of the commands that add keys.
func modelFlag(cmd *cobra.Command, model *string) {
	cmd.Flags().StringVar(model, "model", "", "the model: its model_id, or its id when several share one (required)")
	cmd.MarkFlagRequired("model")
}

// readKeys reads one key per line from the file at path ("-" for stdin),
// skipping blank lines and # comments.
func readKeys(stdin io.Reader, path string) ([]string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var keys []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no keys (one per line; blank lines and # comments are skipped)", path)
	}
	return keys, nil
}

// maxListed bounds the duplicates printed for people; --json lists all.
const maxListed = 20

func (o *operator) addKeys(ctx context.Context, model string, keys []string) error {
	c := o.client()
	m, err := resolveModel(ctx, c, model)
	if err != nil {
		return err
	}
	var res keygate.AddedKeys
	if err := c.post(ctx, fmt.Sprintf("/api/v1/llm-models/%d/keys", m.ID), map[string]any{"keys": keys}, &res); err != nil {
		return err
	}
	return o.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "added %s to %s (id %d); %s", plural(len(res.Added), "key"), m.ModelID, m.ID, plural(len(res.Duplicates), "duplicate"))
		if len(res.Duplicates) == 0 {
			fmt.Fprintln(w)
			return
		}
		fmt.Fprintln(w, " (already there or repeated), not added:")
		for i, d := range res.Duplicates {
			if i == maxListed {
				fmt.Fprintf(w, "  … and %d more (--json lists all)\n", len(res.Duplicates)-maxListed)
				break
			}
			fmt.Fprintf(w, "  %s  %s\n", d.ID, d.Masked)
		}
	})
}

func newKeyStatusCmd(o *operator, verb, status string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a key for every model that uses it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k keygate.KeyRef
			if err := o.client().patch(cmd.Context(), "/api/v1/keys/"+url.PathEscape(args[0]), map[string]string{"status": status}, &k); err != nil {
				return err
			}
			return o.print(k, func(w io.Writer) { fmt.Fprintf(w, "key %s (%s) %sd\n", k.ID, k.Masked, verb) })
		},
	}
}

func newKeysRmCmd(o *operator) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "Remove a key from every model that uses it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res map[string]any
			if err := o.client().del(cmd.Context(), "/api/v1/keys/"+url.PathEscape(args[0]), &res); err != nil {
				return err
			}
			return o.print(res, func(w io.Writer) { fmt.Fprintf(w, "key %s removed\n", args[0]) })
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
