package keysource_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keysource"
)

// Every type keeps the key service's promises (SPEC section 5). The key
// service's own tests are in keysource_test.go.

// A credential is refreshed refresh_before_seconds before it expires, once,
// however many requests are in flight, and none of them waits for it.
func TestEveryKindRefreshesOnceUnderLoad(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := k.new(t, nil)
			e.run()
			first := e.src.Current()
			if !first.Valid(e.clock.Now()) || first.ExpiresAt.Sub(first.FetchedAt) != 600*time.Second {
				t.Fatalf("first lease %+v: want one valid for 600 s", first)
			}
			for e.now() < 470 {
				e.advance(10 * time.Second)
				if keys := e.burst(8); len(keys) != 1 || keys[first.Secret] != 8 {
					t.Fatalf("at %ds requests used %v", e.now(), keys)
				}
			}
			if n := e.issued(); n != 1 {
				t.Fatalf("%d credentials issued before the refresh window", n)
			}

			// At 480 s the refresh starts and hangs: 64 requests at once get the
			// old credential, at once.
			release := e.hold()
			t.Cleanup(release)
			e.clock.Advance(10 * time.Second)
			if keys := e.burst(64); len(keys) != 1 || keys[first.Secret] != 64 {
				t.Fatalf("during the refresh requests used %v, want the old credential", keys)
			}
			release()
			waitFor(t, func() bool { return e.src.Current().Secret != first.Secret })
			e.settle()
			second := e.src.Current()
			if keys := e.burst(64); len(keys) != 1 || keys[second.Secret] != 64 {
				t.Fatalf("after the refresh requests used %v, want the new credential", keys)
			}
			for e.now() < 590 {
				e.advance(10 * time.Second)
				e.burst(8)
			}
			if n := e.issued(); n != 2 {
				t.Errorf("%d credentials issued by 590 s, want 2 (one refresh)", n)
			}
			if got := second.FetchedAt.Sub(e.start); got != 480*time.Second {
				t.Errorf("refreshed at %v, want 480 s", got)
			}
			if v := e.src.View(); v.State != keysource.StateReady || v.Fetches != 2 || v.Type != e.spec.Kind() {
				t.Errorf("view %+v", v)
			}
		})
	}
}

// With its source down, requests keep the old credential while it is
// valid, then the backup key, and the source recovers by itself.
func TestEveryKindUsesBackupWhileDown(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := k.new(t, nil)
			e.run()
			first := e.src.Current()
			for e.now() < 470 {
				e.advance(10 * time.Second)
			}
			e.setDown(true)
			for e.now() < 700 {
				e.advance(time.Second)
				if e.now()%10 != 0 {
					continue
				}
				want := first.Secret
				if e.now() >= 600 {
					want = backupKey
				}
				if keys := e.burst(4); len(keys) != 1 || keys[want] != 4 {
					t.Fatalf("at %ds requests used %v, want %s", e.now(), keys, keygate.Mask(want))
				}
				v := e.src.View()
				if state := map[bool]string{true: keysource.StateDown, false: keysource.StateFailing}[e.now() >= 600]; v.State != state || v.LastError == "" {
					t.Fatalf("at %ds view %+v, want state %s with the error", e.now(), v, state)
				}
			}
			e.setDown(false)
			for range 40 {
				if e.src.Current().Valid(e.clock.Now()) {
					break
				}
				e.advance(time.Second)
			}
			l := e.src.Current()
			if !l.Valid(e.clock.Now()) {
				t.Fatalf("no credential 40 s after the source came back: %+v", e.src.View())
			}
			if keys := e.burst(4); keys[l.Secret] != 4 {
				t.Errorf("after recovery requests used %v", keys)
			}
			if v := e.src.View(); v.State != keysource.StateReady || v.LastError != "" {
				t.Errorf("view after recovery %+v", v)
			}
		})
	}
}

// A credential the provider rejects before its expiry is replaced once,
// however many requests find out at the same time, and each is retried.
func TestEveryKindReplacesRejectedOnce(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := k.new(t, nil)
			e.run()
			e.advance(100 * time.Second)
			old := e.src.Current()
			e.revoke(old.Secret)
			keys := e.burst(64)
			next := e.src.Current()
			if next.Secret == old.Secret || !next.Valid(e.clock.Now()) {
				t.Fatalf("rejected credential not replaced: %+v", e.src.View())
			}
			// Requests that met the rejection were retried with the new
			// credential; those that started while it was being fetched took
			// the backup rather than wait.
			if keys[old.Secret] == 0 || keys[next.Secret] < keys[old.Secret] || keys[old.Secret]+keys[next.Secret]+keys[backupKey] != 64+keys[old.Secret] {
				t.Errorf("requests used %v: want each rejected one retried with the new credential", keys)
			}
			if keys := e.burst(64); keys[next.Secret] != 64 {
				t.Errorf("after the replacement requests used %v", keys)
			}
			if n := e.issued(); n != 2 {
				t.Errorf("%d credentials issued, want 2 (one replacement)", n)
			}
		})
	}
}
