package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pace"
	"github.com/keygate/keygate/pool"
)

func TestKeyRoomGauges(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	p := pool.New(keygate.NewKeyHasher([]byte("test")), keygate.DefaultKeyPolicy())
	p.SetClock(clock.Now)
	if err := p.Load([]keygate.Model{{ModelID: "m", BaseURL: "http://x/v1",
		APIKeys: []keygate.KeySpec{{Key: "sk-paced-key-0000001", RPM: 60, TPM: 1000}, {Key: "sk-unknown-key-00002"}}}}); err != nil {
		t.Fatal(err)
	}
	a, ok := p.Group("m").Pick(nil, clock.Now().UnixNano())
	if !ok {
		t.Fatal("no pick")
	}
	for a.Slot.Room() == nil { // round robin may start at the unpaced key
		if a, ok = p.Group("m").Pick(nil, clock.Now().UnixNano()); !ok {
			t.Fatal("no pick")
		}
	}
	for range 10 {
		a.Slot.Room().Reserve(clock.Now(), pace.Cost{Input: 50})
	}
	clock.Advance(2 * time.Second) // a burn rate wants a second of history
	rec := httptest.NewRecorder()
	New(p, clock).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	id := p.KeyID("sk-paced-key-0000001")
	for _, want := range []string{
		`keygate_key_remaining_requests{key_id="` + id + `"} 52`, // 60 − 10 + 2 s of refill
		`keygate_key_remaining_tokens{key_id="` + id + `"} 533`,  // 1000 − 500 + 2 s of refill
		`keygate_key_exhausts_in_seconds{key_id="` + id + `"}`,
		"keygate_keys_running_dry 1",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), p.KeyID("sk-unknown-key-00002")+`"} `) && strings.Contains(string(body), "remaining_requests{key_id=\""+p.KeyID("sk-unknown-key-00002")) {
		t.Error("a key nothing is known about has a remaining-requests series")
	}
	if strings.Contains(string(body), "sk-paced") {
		t.Error("a key in clear in the metrics")
	}
}
