package keysource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
	"github.com/keygate/keygate/mockprovider"
)

// An application calls a provider with keys that expire, without the
// gateway: the Transport fetches the key, keeps it fresh and replaces it
// when the provider rejects it.
func Example() {
	// A key service issuing 10-minute keys, and a provider accepting them.
	keys := mockprovider.NewKeyService(clockwork.NewRealClock(), 10*time.Minute)
	keyService := httptest.NewServer(keys)
	defer keyService.Close()
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Validate: keys.Validator()}))
	defer provider.Close()

	src, err := keysource.New(keygate.KeySource{
		URL:       keyService.URL + "/getApikey",
		SceneCode: "P2025122",
	}, keysource.Options{Name: "gpt-4o-mini", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		src.Run(ctx)
		close(done)
	}()
	defer func() {
		stop()
		<-done
	}()

	client := &http.Client{Transport: &keysource.Transport{Source: src}}
	resp, err := client.Post(provider.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var answer struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || len(answer.Choices) == 0 {
		fmt.Println(resp.Status, err)
		return
	}
	fmt.Println(resp.Status, answer.Choices[0].Message.Content)
	// Output: 200 OK mock reply hello word4 word5 word6 word7 word8 word9 word10 word11 word12
}

// The same Transport serves every key_source type: here an OAuth 2.0
// client-credentials grant (as Azure OpenAI with Entra ID issues tokens);
// the access token goes to the provider as a Bearer token and is renewed
// before it expires.
func Example_oAuth2() {
	tokens := mockprovider.NewTokenIssuer(clockwork.NewRealClock(), time.Hour, mockprovider.TokenIssuerOptions{
		ClientID: "my-app", ClientSecret: "my-app-secret-0123456789", Scope: "https://cognitiveservices.azure.com/.default",
	})
	tokenEndpoint := httptest.NewServer(tokens)
	defer tokenEndpoint.Close()
	provider := httptest.NewServer(mockprovider.New(mockprovider.Options{Validate: tokens.Validator()}))
	defer provider.Close()

	src, err := keysource.New(keygate.KeySource{
		Type:         keygate.SourceOAuth2,
		TokenURL:     tokenEndpoint.URL + "/tenant/oauth2/v2.0/token",
		ClientID:     "my-app",
		ClientSecret: "my-app-secret-0123456789",
		Scope:        "https://cognitiveservices.azure.com/.default",
	}, keysource.Options{Name: "gpt-4o-mini", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		src.Run(ctx)
		close(done)
	}()
	defer func() {
		stop()
		<-done
	}()

	client := &http.Client{Transport: &keysource.Transport{Source: src}}
	resp, err := client.Post(provider.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	v := src.View()
	fmt.Println(resp.Status, v.Type, v.State, v.ExpiresAt.Sub(v.FetchedAt))
	// Output: 200 OK oauth2 ready 1h0m0s
}
