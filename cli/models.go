package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/spf13/cobra"
)

func newModelsCmd(env Env) *cobra.Command {
	return newOperatorCmd(env, "models", "List, add and remove models", newModelsListCmd, newModelsAddCmd, newModelsRmCmd)
}

func newModelsListCmd(o *operator) *cobra.Command {
	var provider, typ, status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show every model",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for name, v := range map[string]string{"provider": provider, "type": typ, "status": status} {
				if v != "" {
					q.Set(name, v)
				}
			}
			var answer struct{ Data []admin.ModelView }
			if err := o.client().get(cmd.Context(), "/api/v1/llm-models?"+q.Encode(), &answer); err != nil {
				return err
			}
			return o.print(answer.Data, func(w io.Writer) {
				table(w, "ID\tMODEL\tNAME\tPROVIDER\tSTATUS\tMODE\tKEYS\tBASE URL\tFROM", func(tw io.Writer) {
					for _, m := range answer.Data {
						keys := strconv.Itoa(len(m.APIKeys))
						if m.KeySource != nil {
							keys += "+" + m.KeySource.Kind()
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.ModelID, orDash(m.Name), m.Provider,
							m.Status, m.KeyUsageMode, keys, m.BaseURL, m.Origin)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "only models of this provider")
	cmd.Flags().StringVar(&typ, "type", "", "only models of this type")
	cmd.Flags().StringVar(&status, "status", "", "only models in this status: enabled, disabled, inactive")
	return cmd
}

func newModelsAddCmd(o *operator) *cobra.Command {
	var (
		m        keygate.Model
		file     string
		keysFile string
	)
	cmd := &cobra.Command{
		Use:   "add (--model-id ID --base-url URL [flags] | --file MODEL.json)",
		Short: "Create a model; its keys from --keys-file, or added later with keys add/import",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body any = m
			if file != "" {
				if cmd.Flags().Changed("model-id") || cmd.Flags().Changed("base-url") {
					return fmt.Errorf("--file holds the whole model: give no other model flags")
				}
				raw, err := readFile(cmd.InOrStdin(), file)
				if err != nil {
					return err
				}
				var v map[string]any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("%s is not a JSON object: %w", file, err)
				}
				body = v
			} else if keysFile != "" {
				keys, err := readKeys(cmd.InOrStdin(), keysFile)
				if err != nil {
					return err
				}
				for _, k := range keys {
					m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: k})
				}
				body = m
			}
			var created admin.ModelView
			if err := o.client().post(cmd.Context(), "/api/v1/llm-models", body, &created); err != nil {
				return err
			}
			return o.print(created, func(w io.Writer) {
				fmt.Fprintf(w, "created model %s (id %d) with %s\n", created.ModelID, created.ID, plural(len(created.APIKeys), "key"))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.ModelID, "model-id", "", "the name clients send as \"model\"")
	f.StringVar(&m.BaseURL, "base-url", "", "the provider's OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
	f.StringVar(&m.Name, "name", "", "a display name")
	f.StringVar(&m.Provider, "provider", "", "openai, anthropic, gemini, … (default openai)")
	f.StringVar(&m.Type, "type", "", "a free-form type, e.g. chat")
	f.StringVar(&m.Description, "description", "", "a description")
	f.StringVar(&m.Status, "status", "", "enabled, disabled or inactive (default enabled)")
	f.StringVar(&m.KeyUsageMode, "mode", "", "key_usage_mode: single, round_robin, least_used, weighted (default round_robin)")
	f.StringVar(&m.UpstreamModel, "upstream-model", "", "the model name sent upstream, if not model-id")
	f.StringSliceVar(&m.Fallbacks, "fallback", nil, "a model_id to try when every key fails (repeatable)")
	f.Float64Var(&m.InputPrice, "input-price", 0, "USD per million prompt tokens")
	f.Float64Var(&m.OutputPrice, "output-price", 0, "USD per million completion tokens")
	f.IntVar(&m.RPM, "rpm", 0, "requests per minute the gateway sends this model (0 = no cap)")
	f.IntVar(&m.TPM, "tpm", 0, "tokens per minute the gateway sends this model (0 = no cap)")
	f.StringVar(&keysFile, "keys-file", "", "a file of keys, one per line, to add at once")
	f.StringVarP(&file, "file", "f", "", "a JSON file with the whole model, as POST /api/v1/llm-models takes it (- reads stdin)")
	return cmd
}

func newModelsRmCmd(o *operator) *cobra.Command {
	return &cobra.Command{
		Use:   "rm MODEL",
		Short: "Remove a model (by model_id, or by id when several share one); its keys go unless another model uses them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := o.client()
			m, err := resolveModel(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			var res map[string]any
			if err := c.del(cmd.Context(), fmt.Sprintf("/api/v1/llm-models/%d", m.ID), &res); err != nil {
				return err
			}
			return o.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "removed model %s (id %d)\n", m.ModelID, m.ID)
				if m.Origin == keygate.OriginConfig {
					fmt.Fprintln(w, "note: it is declared in the config file and comes back at the next start unless removed there")
				}
			})
		},
	}
}

// resolveModel finds a model by its id or by its model_id, which must then
// name exactly one.
func resolveModel(ctx context.Context, c *apiClient, ref string) (admin.ModelView, error) {
	var m admin.ModelView
	if _, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return m, c.get(ctx, "/api/v1/llm-models/"+ref, &m)
	}
	var answer struct{ Data []admin.ModelView }
	if err := c.get(ctx, "/api/v1/llm-models", &answer); err != nil {
		return m, err
	}
	var ids []string
	for _, x := range answer.Data {
		if x.ModelID == ref {
			m = x
			ids = append(ids, strconv.FormatInt(x.ID, 10))
		}
	}
	switch len(ids) {
	case 0:
		return m, fmt.Errorf("no model %q (keygate models list shows them)", ref)
	case 1:
		return m, nil
	}
	return m, fmt.Errorf("%d models answer to %q (ids %s): name one by its id", len(ids), ref, strings.Join(ids, ", "))
}

func readFile(stdin io.Reader, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}
