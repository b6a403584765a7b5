package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
	"github.com/keygate/keygate/provider/azure"
	"github.com/spf13/cobra"
)

// The demo pool: two healthy keys and one of each kind of bad key, so a
// newcomer sees keygate route around them.
var demoKeys = []struct {
	key      string
	behavior mockprovider.Behavior
}{
	{"sk-demo-healthy-1-aaaaaaaa", mockprovider.OK},
	{"sk-demo-healthy-2-bbbbbbbb", mockprovider.OK},
	{"sk-demo-invalid-cccccccc", mockprovider.InvalidKey},
	{"sk-demo-ratelimited-dddddddd", mockprovider.RateLimited},
	{"sk-demo-quota-eeeeeeee", mockprovider.QuotaExhausted},
}

const demoToken = "kg-demo-token"

var demoBanner = template.Must(template.New("demo").Parse(`
keygate demo is running on http://{{.Addr}} (mock provider on http://{{.Provider}}, no network needed)

  dashboard:    http://{{.Addr}}/  (sign in with the admin token)
  token:        {{.Token}}
  admin token:  {{.Admin}}
  models:       gpt-4o-mini (5 keys: 2 healthy, 1 invalid, 1 rate-limited, 1 out of quota), text-embedding-3-small,
                demo-dynamic (a key fetched from a key service; it expires every minute and is refreshed),
                claude-3-5-haiku-latest (behind the Anthropic Messages API), gemini-2.0-flash (Gemini's native API),
                gpt-4o-azure (an Azure OpenAI deployment): every model answers every dialect

SDKs:
  OpenAI SDK:     baseURL http://{{.Addr}}/v1   apiKey {{.Token}}
  Anthropic SDK:  baseURL http://{{.Addr}}      apiKey {{.Token}}
  Claude Code:    ANTHROPIC_BASE_URL=http://{{.Addr}} ANTHROPIC_AUTH_TOKEN={{.Token}}

Try:
  curl -s http://{{.Addr}}/v1/models -H 'Authorization: Bearer {{.Token}}'
  curl -si http://{{.Addr}}/v1/chat/completions -H 'Authorization: Bearer {{.Token}}' \
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
  curl -sN http://{{.Addr}}/v1/chat/completions -H 'Authorization: Bearer {{.Token}}' \
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream please"}]}'
  curl -s http://{{.Addr}}/v1/embeddings -H 'Authorization: Bearer {{.Token}}' \
    -H 'Content-Type: application/json' -d '{"model":"text-embedding-3-small","input":"hello"}'
  curl -s http://{{.Addr}}/v1/messages -H 'x-api-key: {{.Token}}' -H 'anthropic-version: 2023-06-01' \
    -H 'Content-Type: application/json' -d '{"model":"claude-3-5-haiku-latest","max_tokens":100,"messages":[{"role":"user","content":"hello"}]}'
  curl -s http://{{.Addr}}/v1/responses -H 'Authorization: Bearer {{.Token}}' \
    -H 'Content-Type: application/json' -d '{"model":"gemini-2.0-flash","input":"hello"}'

  curl -s http://{{.Addr}}/api/v1/keys -H 'Authorization: Bearer {{.Admin}}'

Watch X-Keygate-Key and X-Keygate-Attempts: bad keys are skipped and the call still succeeds.
Press Ctrl-C to stop.
`))

func newDemoCmd(env Env) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the gateway with a built-in mock provider and a mixed key pool (no network, no keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(env.Stderr, "warn")

			keys := map[string]mockprovider.Behavior{}
			for _, k := range demoKeys {
				keys[k.key] = k.behavior
			}
			// A key service whose keys live one minute, so the demo shows a
			// dynamic key being fetched and refreshed.
			keySvc := mockprovider.NewKeyService(clockwork.NewRealClock(), time.Minute)
			provider := mockprovider.New(mockprovider.Options{Keys: keys, Validate: keySvc.Validator(), ChunkDelay: 50 * time.Millisecond,
				Models: demoUpstreamModels})
			pln, err := serveLoopback(provider)
			if err != nil {
				return fmt.Errorf("start mock provider: %w", err)
			}
			defer pln.Close()
			kln, err := serveLoopback(keySvc)
			if err != nil {
				return fmt.Errorf("start mock key service: %w", err)
			}
			defer kln.Close()

			dir, err := os.MkdirTemp("", "keygate-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)

			cfg, err := demoConfig(listen, "http://"+pln.Addr().String(), "http://"+kln.Addr().String()+"/getApikey", dir)
			if err != nil {
				return err
			}
			return runGateway(cmd.Context(), cfg, logger, func(addr string) {
				demoBanner.Execute(env.Stdout, map[string]string{
					"Addr": addr, "Provider": pln.Addr().String(), "Token": demoToken, "Admin": cfg.AdminToken,
				})
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (loopback only)")
	return cmd
}

// demoUpstreamModels are the models the demo's mock provider serves, in
// every provider format it speaks.
var demoUpstreamModels = []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-latest", "gemini-2.0-flash"}

// demoConfig is the demo's configuration, built from the defaults so it
// behaves like `serve` with a config file. mockURL is the mock provider's
// root: it speaks OpenAI under /v1, Anthropic's Messages, Gemini under
// /v1beta and Azure under /openai.
func demoConfig(listen, mockURL, keyServiceURL, dir string) (*config.Config, error) {
	providerURL := mockURL + "/v1"
	if !config.IsLoopback(listen) {
		return nil, fmt.Errorf("demo listens on loopback only, not %q", listen)
	}
	cfg, err := config.Load(config.Options{
		WorkDir:   dir, // empty: no keygate.yaml or .env of the caller leaks in
		Listen:    listen,
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		return nil, err
	}
	admin := make([]byte, 12)
	rand.Read(admin)
	cfg.AdminToken = "kg-admin-" + hex.EncodeToString(admin)
	// A throwaway master key: the demo's store is deleted at exit, so there
	// is nothing to keep and nothing to warn about.
	master := make([]byte, 32)
	rand.Read(master)
	cfg.MasterKey = hex.EncodeToString(master)
	cfg.DatabaseURL = "sqlite://" + filepath.Join(dir, "demo.db")
	cfg.Tokens = []keygate.TokenSpec{{Name: "demo", Token: demoToken, User: "demo", Models: []string{"*"}}}
	cfg.ZeroConfig = nil
	chat := keygate.Model{
		Name: "Demo chat", ModelID: "gpt-4o-mini", Provider: "openai", Status: keygate.StatusEnabled,
		BaseURL: providerURL, KeyUsageMode: keygate.ModeRoundRobin, InputPrice: 0.15, OutputPrice: 0.6,
	}
	for _, k := range demoKeys {
		chat.APIKeys = append(chat.APIKeys, keygate.KeySpec{Key: k.key, Status: keygate.StatusEnabled})
	}
	embed := keygate.Model{
		Name: "Demo embeddings", ModelID: "text-embedding-3-small", Provider: "openai", Status: keygate.StatusEnabled,
		BaseURL: providerURL, KeyUsageMode: keygate.ModeSingle,
		APIKeys: []keygate.KeySpec{{Key: demoKeys[0].key, Status: keygate.StatusEnabled}},
	}
	dynamic := keygate.Model{
		Name: "Demo dynamic key", ModelID: "demo-dynamic", UpstreamModel: "gpt-4o-mini", Provider: "openai",
		Status: keygate.StatusEnabled, BaseURL: providerURL, KeyUsageMode: keygate.ModeSingle,
		KeySource: &keygate.KeySource{URL: keyServiceURL, SceneCode: "DEMO2026", Method: "GET", ResultField: "result",
			ExpireSeconds: 60, RefreshBeforeSeconds: 15, TimeoutSeconds: 5, Retries: 3, RetryIntervalMS: 1000},
	}
	// One model behind each native provider format, each with a healthy
	// key, an invalid one and a rate-limited one answering in that vendor's
	// own error shape.
	native := func(name, id, provider, base, upstream string) keygate.Model {
		m := keygate.Model{Name: name, ModelID: id, Provider: provider, Status: keygate.StatusEnabled, BaseURL: base,
			UpstreamModel: upstream, KeyUsageMode: keygate.ModeRoundRobin, InputPrice: 0.8, OutputPrice: 4}
		for _, k := range []int{0, 2, 3} {
			m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: demoKeys[k].key, Status: keygate.StatusEnabled})
		}
		if provider == "azure" {
			m.APIVersion = azure.DefaultAPIVersion
		}
		return m
	}
	cfg.Models = []keygate.Model{chat, embed, dynamic,
		native("Demo Claude (Anthropic Messages)", "claude-3-5-haiku-latest", "anthropic", mockURL, ""),
		native("Demo Gemini (native API)", "gemini-2.0-flash", "gemini", mockURL+"/v1beta", ""),
		native("Demo Azure OpenAI deployment", "gpt-4o-azure", "azure", mockURL, "gpt-4o-mini"),
	}
	return cfg, nil
}

// serveLoopback serves h on a free loopback port until the listener closes.
func serveLoopback(h http.Handler) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln, nil
}
