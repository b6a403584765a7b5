// Command harness runs a real keygate (the app `keygate serve` runs) with
// the mock provider behind it, both on free loopback ports, for the
// official SDKs' tests (scripts/sdk-test.sh). It prints one JSON line with
// the addresses and tokens, then serves until its standard input closes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/app"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/mockprovider"
)

// Info is what the SDK tests read.
type Info struct {
	BaseURL      string `json:"base_url"`      // keygate's OpenAI base URL (…/v1)
	Root         string `json:"root"`          // keygate's root URL, for the admin API
	Token        string `json:"token"`         // may use every model
	LimitedToken string `json:"limited_token"` // may use the embedding model only: 403 elsewhere
	AdminToken   string `json:"admin_token"`
	Chat         string `json:"chat_model"`      // two keys; one fails if a caller's OpenAI-Organization reaches it
	Embeddings   string `json:"embedding_model"` //
	Limited      string `json:"limited_model"`   // its only key answers 429 with Retry-After: 1
}

func main() {
	if err := run(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	const orgTrap, healthy, limited = "sk-sdk-org-trap-00000001", "sk-sdk-healthy-000000002", "sk-sdk-ratelimited-00003"
	mock := mockprovider.New(mockprovider.Options{ChunkDelay: 20 * time.Millisecond, Keys: map[string]mockprovider.Behavior{
		orgTrap: mockprovider.OK, healthy: mockprovider.OK, limited: mockprovider.OK}})
	mock.SetFault(orgTrap, mockprovider.FaultOrgHeader401)
	mock.SetFault(limited, mockprovider.FaultRetryAfter1s)
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(pln, mock)
	upstream := "http://" + pln.Addr().String() + "/v1"

	dir, err := os.MkdirTemp("", "keygate-sdktest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Load(config.Options{WorkDir: dir, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return err
	}
	info := Info{Token: "kg-sdk-app-token", LimitedToken: "kg-sdk-limited-token", AdminToken: "kg-sdk-admin-token",
		Chat: "gpt-4o-mini", Embeddings: "text-embedding-3-small", Limited: "gpt-4o-limited"}
	cfg.DatabaseURL = "sqlite://" + filepath.Join(dir, "keygate.db")
	cfg.MasterKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	cfg.ZeroConfig = nil
	cfg.AdminToken = info.AdminToken
	cfg.Tokens = []keygate.TokenSpec{
		{Name: "app", Token: info.Token, Models: []string{"*"}},
		{Name: "limited", Token: info.LimitedToken, Models: []string{info.Embeddings}},
	}
	cfg.Models = []keygate.Model{
		{ModelID: info.Chat, Provider: "openai", Status: keygate.StatusEnabled, BaseURL: upstream, KeyUsageMode: keygate.ModeRoundRobin,
			APIKeys: []keygate.KeySpec{{Key: orgTrap}, {Key: healthy}}},
		{ModelID: info.Embeddings, Provider: "openai", Status: keygate.StatusEnabled, BaseURL: upstream, APIKeys: []keygate.KeySpec{{Key: healthy}}},
		{ModelID: info.Limited, UpstreamModel: "gpt-4o", Provider: "openai", Status: keygate.StatusEnabled, BaseURL: upstream, APIKeys: []keygate.KeySpec{{Key: limited}}},
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.UpstreamClient = os.Getenv("KEYGATE_UPSTREAM_CLIENT") // the SDK suites run on either upstream client
	gw, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	info.Root = "http://" + ln.Addr().String()
	info.BaseURL = info.Root + "/v1"
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw.Serve(sctx, ln) }()
	if err := json.NewEncoder(stdout).Encode(info); err != nil {
		stop()
		return err
	}
	io.Copy(io.Discard, stdin) // until the script closes our input
	stop()
	return <-done
}
