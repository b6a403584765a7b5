package openai

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
)

// Anthropic Messages callers (the Anthropic SDK, Claude Code) reach an
// OpenAI-compatible deployment through chat completions: their request,
// answer, stream and errors are translated (package dialect). Every other
// dialect is OpenAI's own and goes as it is.

func translated(d provider.Dialect) bool { return d == provider.DialectMessages }

func translatedRequest(ctx context.Context, req *provider.Request, t provider.Target) (*http.Request, error) {
	body, err := bridge.Body(dialect.WireOpenAI, req, t.Model)
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, join(t.Model.BaseURL, "chat/completions"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.SetHeaders(out, req, t)
	out.Header.Set("Authorization", "Bearer "+t.Secret)
	return out, nil
}

func translatedAnswer(req *provider.Request, body []byte, now time.Time) ([]byte, provider.Usage, *provider.Failure) {
	return bridge.Answer(dialect.WireOpenAI, req, body, now)
}

func translatedFailure(req *provider.Request, status int, h http.Header, body []byte, now time.Time) provider.Failure {
	return bridge.Classify(dialect.WireOpenAI, req, status, h, body, now)
}
