package server

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
)

const requestIDHeader = "X-Request-Id"

// Request ids are a random per-process prefix and a counter: unique across
// replicas, and cheap enough for every request.
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "req_" + hex.EncodeToString(b) + "_"
}

// withRequestID gives every response an X-Request-Id: the caller's own if
// it sent a sane one, else a new one.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !saneID(id) {
			id = idPrefix + strconv.FormatUint(idCounter.Add(1), 36)
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

// saneID reports whether a caller's request id is well formed (SPEC
// section 2): 1 to 128 printable ASCII characters, so it is safe in a
// header, a log line and a usage record.
func saneID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return id[0] != ' ' && id[len(id)-1] != ' '
}
