package cli_test

import (
	"strings"
	"testing"
	"time"
)

func TestAuditCommand(t *testing.T) {
	s := startServer(t)
	s.mustRun(t, "tokens", "create", "team-a", "--rpm", "60")
	var out string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = s.mustRun(t, "audit", "--since", "1h", "--actor", "admin", "--action", "tokens.create")
		if strings.Contains(out, "tokens.create") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "ACTOR") || !strings.Contains(out, "admin") || !strings.Contains(out, "tokens.create") || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("keygate audit:\n%s", out)
	}
	if out := s.mustRun(t, "audit", "--action", "login.failed"); strings.Contains(out, "tokens.create") {
		t.Fatalf("--action must filter:\n%s", out)
	}
}
