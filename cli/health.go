package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/keygate/keygate/keycheck"
	"github.com/keygate/keygate/pool"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// What each status and class means, and what to do about it: the words
// of `keygate status` and `keygate keys analyze`.
var (
	statusText = map[string]string{
		pool.StatusHealthy:  "available and working",
		pool.StatusUnused:   "available, not used yet",
		pool.StatusWarning:  "slow: average latency over 15 s",
		pool.StatusError:    "success rate under 70 %",
		pool.StatusCooldown: "cooling down; comes back by itself",
		pool.StatusDisabled: "out of service until a reset or a passing check",
	}
	classText = map[string]string{
		"authentication_error": "invalid, expired or revoked key",
		"permission_denied":    "the key may not use this model or API",
		"insufficient_quota":   "out of quota or balance",
		"rate_limit_exceeded":  "rate limited by the provider",
		"service_unavailable":  "provider overloaded or unavailable",
		"internal_error":       "provider-side error",
		"unknown_error":        "an error keygate does not recognise",
	}
	classAdvice = map[string]string{
		"authentication_error": "replace the key (keygate keys rm, keys add); reset it only if it was restored",
		"permission_denied":    "check the key's project/organisation access to the model",
		"insufficient_quota":   "top up the account; keygate re-checks on its schedule and brings the key back",
		"rate_limit_exceeded":  "nothing to do: the cooldown follows the provider's Retry-After; add keys for more throughput",
		"service_unavailable":  "nothing to do: the provider is overloaded, keygate retries after a short cooldown",
		"internal_error":       "nothing to do unless it persists; then check the provider's status page",
		"unknown_error":        "read last_error; reset the key once the cause is fixed",
	}
	statusOrder = []string{pool.StatusHealthy, pool.StatusUnused, pool.StatusWarning, pool.StatusError, pool.StatusCooldown, pool.StatusDisabled}
)

func (o *operator) keys(cmd *cobra.Command, q url.Values) ([]pool.KeyView, error) {
	var answer struct{ Data []pool.KeyView }
	err := o.client().get(cmd.Context(), "/api/v1/keys?"+q.Encode(), &answer)
	return answer.Data, err
}

// dashboard is what `keygate status` shows.
type dashboard struct {
	Total          int            `json:"total"`
	ByStatus       map[string]int `json:"by_status"`
	ByClass        map[string]int `json:"by_class"`
	ReadyForRetry  int            `json:"ready_for_retry"`
	NextSteps      []string       `json:"next_steps"`
	Sources        []sourceLine   `json:"key_sources,omitempty"`
	OldestFailures []string       `json:"-"`
}

func newStatusCmd(env Env) *cobra.Command {
	o := &operator{env: env}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Dashboard: keys per status and class, keys ready for a retry, what to do next",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := o.keys(cmd, url.Values{})
			if err != nil {
				return err
			}
			d := summarize(keys, time.Now())
			return o.print(d, func(w io.Writer) {
				fmt.Fprintf(w, "keygate: %d keys\n\n", d.Total)
				table(w, "STATUS\tCOUNT\tMEANING", func(tw io.Writer) {
					for _, s := range statusOrder {
						if d.ByStatus[s] > 0 {
							fmt.Fprintf(tw, "%s\t%d\t%s\n", s, d.ByStatus[s], statusText[s])
						}
					}
				})
				if len(d.ByClass) > 0 {
					fmt.Fprintln(w)
					table(w, "ERROR CLASS\tCOUNT\tMEANING", func(tw io.Writer) {
						for _, c := range sortedKeys(d.ByClass) {
							fmt.Fprintf(tw, "%s\t%d\t%s\n", c, d.ByClass[c], classText[c])
						}
					})
				}
				printSources(w, d.Sources, time.Now())
				fmt.Fprintf(w, "\n%d keys are ready for a retry\n", d.ReadyForRetry)
				if len(d.NextSteps) > 0 {
					fmt.Fprintln(w, "\nNext:")
					for _, s := range d.NextSteps {
						fmt.Fprintf(w, "  - %s\n", s)
					}
				}
			})
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
	return cmd
}

func summarize(keys []pool.KeyView, now time.Time) dashboard {
	d := dashboard{Total: len(keys), ByStatus: map[string]int{}, ByClass: map[string]int{}, Sources: sourcesOf(keys)}
	for _, k := range keys {
		d.ByStatus[k.Status]++
		if k.ErrorClass != "" {
			d.ByClass[k.ErrorClass]++
			if k.Status != pool.StatusDisabled && (k.NextRetryAt == nil || !k.NextRetryAt.After(now)) {
				d.ReadyForRetry++
			}
		}
	}
	for _, c := range sortedKeys(d.ByClass) {
		d.NextSteps = append(d.NextSteps, fmt.Sprintf("%d × %s: %s", d.ByClass[c], c, classAdvice[c]))
	}
	for _, s := range d.Sources {
		if s.State == "down" {
			d.NextSteps = append(d.NextSteps, fmt.Sprintf("key source %s (%s) has no valid credential: fix it from its last error; requests use the backup keys", s.Target, s.Type))
		}
	}
	if d.ReadyForRetry > 0 {
		d.NextSteps = append(d.NextSteps, "run `keygate keys check` to re-check the keys ready for a retry now")
	}
	if d.Total > 0 && d.ByStatus[pool.StatusHealthy]+d.ByStatus[pool.StatusUnused]+d.ByStatus[pool.StatusWarning] == 0 {
		d.NextSteps = append(d.NextSteps, "no key can serve: add keys (keygate keys add) or reset fixed ones (keygate keys reset --failed)")
	}
	return d
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newKeysCheckCmd(o *operator) *cobra.Command {
	var model, vendor string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Test every key against its provider (a free model-list call) and update its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if model != "" {
				q.Set("model", model)
			}
			if vendor != "" {
				q.Set("vendor", vendor)
			}
			c := o.client()
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, c.base+"/api/v1/keys/check?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept", "application/x-ndjson")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := c.http.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach keygate at %s: %v (is it running? KEYGATE_URL says where it is)", c.base, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return c.failure(http.MethodPost, "/api/v1/keys/check", resp.StatusCode, b)
			}
			return o.printChecks(resp.Body)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "only keys of this model_id")
	cmd.Flags().StringVar(&vendor, "vendor", "all", "only keys of this vendor: openai, azure, gemini, siliconflow, anthropic or all")
	return cmd
}

// printChecks prints one line per checked key as results stream in, with
// a progress bar on a terminal, then a summary.
func (o *operator) printChecks(body io.Reader) error {
	sc := bufio.NewScanner(body)
	var head struct{ Total int }
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &head) != nil {
		return fmt.Errorf("keygate answered the check with something unexpected")
	}
	bar := progressBar(o.env.Stderr, head.Total)
	var results []keycheck.Result
	for sc.Scan() {
		var r keycheck.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("keygate answered the check with something unexpected: %w", err)
		}
		results = append(results, r)
		if !o.json {
			bar.clear()
			mark, detail := "✓", "ok"
			if !r.OK {
				mark, detail = "✗", strings.TrimSpace(r.Class+" "+r.Message)
			}
			fmt.Fprintf(o.env.Stdout, "%s %s  %-10s %-20s %s (%d ms) → %s\n", mark, r.Masked, r.Vendor, r.Model, detail, r.LatencyMS, r.Status)
		}
		bar.set(len(results))
	}
	bar.clear()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the check was cut off: %w", err)
	}
	passed := 0
	for _, r := range results {
		if r.OK {
			passed++
		}
	}
	return o.print(map[string]any{"checked": len(results), "passed": passed, "data": results}, func(w io.Writer) {
		fmt.Fprintf(w, "\n%d keys checked: %d passed, %d failed\n", len(results), passed, len(results)-passed)
	})
}

// bar draws "[#####.....] 5/10" on a terminal and nothing elsewhere.
type bar struct {
	w     io.Writer
	total int
	on    bool
}

func progressBar(w io.Writer, total int) *bar {
	f, ok := w.(*os.File)
	return &bar{w: w, total: total, on: ok && term.IsTerminal(int(f.Fd())) && total > 0}
}

func (b *bar) set(done int) {
	if !b.on {
		return
	}
	const width = 30
	n := done * width / b.total
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), done, b.total)
}

func (b *bar) clear() {
	if b.on {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

func newKeysResetCmd(o *operator) *cobra.Command {
	var failed bool
	cmd := &cobra.Command{
		Use:   "reset [ID]",
		Short: "Clear a key's failure state (ID), or of every failed key (--failed)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case failed && len(args) == 0:
				var out struct {
					Reset int      `json:"reset"`
					IDs   []string `json:"ids"`
				}
				if err := o.client().post(cmd.Context(), "/api/v1/keys/reset?failed=true", nil, &out); err != nil {
					return err
				}
				return o.print(out, func(w io.Writer) { fmt.Fprintf(w, "%d failed keys reset\n", out.Reset) })
			case !failed && len(args) == 1:
				var v pool.KeyView
				if err := o.client().post(cmd.Context(), "/api/v1/keys/"+url.PathEscape(args[0])+"/reset", nil, &v); err != nil {
					return err
				}
				return o.print(v, func(w io.Writer) { fmt.Fprintf(w, "key %s (%s) reset: %s\n", v.ID, v.Masked, v.Status) })
			}
			return fmt.Errorf("give either a key ID or --failed")
		},
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "reset every key that is cooling down, disabled by failures or in error")
	return cmd
}

func newKeysAnalyzeCmd(o *operator) *cobra.Command {
	return &cobra.Command{
		Use:   "analyze KEY_OR_ID",
		Short: "One key's history (first error, retries, next retry, class, totals) and advice",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v pool.KeyView
			c := o.client()
			var err error
			if strings.HasPrefix(args[0], "k_") {
				err = c.get(cmd.Context(), "/api/v1/keys/"+url.PathEscape(args[0]), &v)
			} else {
				// A key in clear travels in a body, never in a URL.
				err = c.post(cmd.Context(), "/api/v1/keys/lookup", map[string]string{"key": args[0]}, &v)
			}
			if err != nil {
				return err
			}
			advice := analyzeAdvice(v)
			return o.print(map[string]any{"key": v, "advice": advice}, func(w io.Writer) {
				var b bytes.Buffer
				line := func(k, val string) { fmt.Fprintf(&b, "  %-18s %s\n", k, val) }
				line("id", v.ID)
				line("key", v.Masked)
				line("models", strings.Join(v.Models, ", "))
				line("status", v.Status+" ("+statusText[v.Status]+")")
				line("error class", orDash(v.ErrorClass))
				line("first error", timeOrDash(v.FirstErrorAt))
				line("retries", fmt.Sprint(v.RetryCount))
				line("next retry", timeOrDash(v.NextRetryAt))
				line("last error", orDash(v.LastError))
				line("requests", fmt.Sprintf("%d (%d ok, %d failed, %.0f%% success)", v.TotalRequests, v.SuccessCount, v.FailureCount, v.SuccessRate))
				line("avg latency", fmt.Sprintf("%.0f ms", v.AvgLatencyMS))
				line("tokens", fmt.Sprintf("%d prompt, %d completion", v.PromptTokens, v.CompletionTokens))
				line("cost", fmt.Sprintf("$%.4f", v.Cost))
				line("last used", timeOrDash(v.LastUsedAt))
				if v.Source != nil {
					line("fetched from", v.Source.Type+" "+v.Source.Target+" ("+v.Source.State+", expires "+v.Source.ExpiresAt.Format(time.RFC3339)+")")
				}
				fmt.Fprintf(w, "Key %s\n%s\nAdvice: %s\n", v.Masked, b.String(), advice)
			})
		},
	}
}

func analyzeAdvice(v pool.KeyView) string {
	switch {
	case v.OperatorDisabled:
		return "switched off by an operator: `keygate keys enable " + v.ID + "` puts it back"
	case v.ErrorClass != "":
		return classAdvice[v.ErrorClass]
	case v.Status == pool.StatusWarning:
		return "the key is slow; watch it, or lower its weight"
	case v.Status == pool.StatusError:
		return "many calls fail; check the provider and the network, then `keygate keys reset " + v.ID + "`"
	}
	return "nothing to do"
}

func timeOrDash(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
