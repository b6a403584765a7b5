package keysource

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
)

// Bad answers give errors that say what is wrong, and never hold a key in
// clear, even when the service echoes one.
func TestBadAnswers(t *testing.T) {
	const (
		echoed  = "sk-live-0123456789abcdef" // a key-looking word in an answer
		current = "key-without-any-digits"   // the source's current key
		header  = "header-secret-value"
	)
	tests := []struct {
		name   string
		status int
		body   string
		want   []string
	}{
		{"non-JSON", 200, "<html>gateway</html>", []string{"answer is not a JSON object: <html>gateway</html>"}},
		{"key as plain text", 200, echoed, []string{"answer is not a JSON object: " + keygate.Mask(echoed)}},
		{"missing field", 200, `{"data":"x"}`, []string{`answer has no "result" field`}},
		{"empty field", 200, `{"result":""}`, []string{`answer field "result" is empty`}},
		{"null field", 200, `{"result":null}`, []string{`answer field "result" is empty`}},
		{"number", 200, `{"result":12345}`, []string{`answer field "result" is a number, want a string`}},
		{"bad expires_in", 200, `{"result":"k","expires_in":"soon"}`, []string{`"expires_in" is a string, want seconds`}},
		{"expired", 200, `{"result":"k","expire_time":"2000-01-01T00:00:00Z"}`, []string{`"expire_time" is 2000-01-01T00:00:00Z: the key has already expired`}},
		{"500 echoing keys", 500, `{"error":"cannot renew ` + current + ` nor issue ` + echoed + ` with ` + header + `"}`,
			[]string{"status 500", keygate.Mask(current), keygate.Mask(echoed), keygate.Mask(header)}},
		{"503 empty", 503, "", []string{"status 503: (empty body)"}},
		{"long body", 502, "a" + strings.Repeat("é", 300), []string{"status 502: a" + strings.Repeat("é", 99) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s, err := New(keygate.KeySource{URL: srv.URL + "/getApikey?token=q-secret", SceneCode: "P1",
				Headers: map[string]string{"X-Token": header}}, Options{Clock: clockwork.NewFakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			s.lease.Store(&Lease{Secret: current})

			_, err = s.fetchOnce(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			want := append([]string{"fetch key from " + srv.URL + "/getApikey: "}, tt.want...)
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{echoed, current, header, "q-secret"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q holds %s in clear", msg, secret)
				}
			}
		})
	}
}

func TestUnreachableServiceHidesTheQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	s, err := New(keygate.KeySource{URL: url + "/getApikey?token=q-secret", SceneCode: "P1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.fetchOnce(context.Background())
	if err == nil || strings.Contains(err.Error(), "q-secret") || strings.Contains(err.Error(), "P1") {
		t.Errorf("error %v", err)
	}
	if s.View().LastError != "" {
		t.Error("fetchOnce alone must not touch the counters")
	}
}
