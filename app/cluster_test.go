package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/keygate/keygate/app"
)

// TestRefusesRedisWithSQLite: replicas cannot share an embedded file, so
// redis_url with SQLite stops the start with a message that says what to do.
func TestRefusesRedisWithSQLite(t *testing.T) {
	cfg := baseConfig(t, t.TempDir())
	cfg.RedisURL = "redis://127.0.0.1:6379/0"
	_, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "redis_url") || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("want a refusal naming redis_url and PostgreSQL, got %v", err)
	}
}
