package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/secret"
	"github.com/keygate/keygate/store"
)

// TestLoginTarpit: once an address is locked out, its refusals are held
// on the clock before the 429 goes (Retry-After then counts what is left);
// past MaxHeld held at once a refusal goes at once and closes the
// connection; a login from an address that is not throttled is answered
// at once while others are held; Release (shutdown) sends the held ones.
func TestLoginTarpit(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cost := secret.PasswordCost
	secret.PasswordCost = 4
	defer func() { secret.PasswordCost = cost }()
	hash, _ := secret.HashPassword("root-password")
	if err := db.CreateUser(ctx, &keygate.User{Username: "root", PasswordHash: hash, Role: keygate.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	th := admin.NewThrottle(clock)
	th.MaxHeld = 3
	srv := httptest.NewServer(admin.HandleLogin(admin.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Logins: &admin.Logins{Users: db, Signer: secret.NewSigner([]byte("0123456789abcdef0123456789abcdef"), time.Hour, clock.Now), Throttle: th}}))
	defer srv.Close()

	type answer struct {
		code   int
		retry  string
		closed bool
	}
	loginFrom := func(client *http.Client, user, password string) answer {
		resp, err := client.Post(srv.URL, "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
		if err != nil {
			t.Error(err)
			return answer{}
		}
		resp.Body.Close()
		return answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close}
	}
	attacker := &http.Client{}
	for i := range 10 { // ten usernames lock the address
		if a := loginFrom(attacker, fmt.Sprintf("guess%d", i), "wrong-password"); a.code != 401 {
			t.Fatalf("failure %d: %+v", i, a)
		}
	}

	held := make(chan answer, 3)
	for range 3 {
		go func() { held <- loginFrom(attacker, "root", "wrong-password") }()
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(bctx, 3); err != nil {
		t.Fatalf("three throttled logins are not held: %v (held %d)", err, th.Held())
	}
	select {
	case a := <-held:
		t.Fatalf("a held refusal answered before the clock moved: %+v", a)
	default:
	}
	if a := loginFrom(attacker, "root", "wrong-password"); a.code != 429 || !a.closed || a.retry != "30" {
		t.Fatalf("past MaxHeld a refusal must go at once and close the connection: %+v", a)
	}
	// Someone else, from an address that is not throttled, is not held.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	if a := loginFrom(other, "root", "root-password"); a.code != 200 {
		t.Fatalf("a login from an address that is not throttled, while three are held: %+v", a)
	}
	clock.Advance(admin.TarpitHold)
	for range 3 {
		if a := <-held; a.code != 429 || a.retry != "25" || a.closed {
			t.Fatalf("a held refusal: %+v, want 429 with Retry-After 25 (30 s lockout, 5 s held), the connection kept", a)
		}
	}
	if th.Held() != 0 {
		t.Fatalf("%d still held", th.Held())
	}

	// Shutdown sends what is held at once.
	go func() { held <- loginFrom(attacker, "root", "wrong-password") }()
	if err := clock.BlockUntilContext(bctx, 1); err != nil {
		t.Fatal(err)
	}
	th.Release()
	if a := <-held; a.code != 429 {
		t.Fatalf("after Release: %+v", a)
	}
}
