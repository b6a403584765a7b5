package mockprovider

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/tidwall/gjson"
)

// KeyService is a fake key service handing out expiring keys per scene code:
// GET ?sceneCode=X, or POST {"sceneCode":"X"}, answers {"result":"dyn-…"}.
// Every call issues a new key, valid for the service's ttl on its clock.
// Pair it with a Provider through Validator so the provider accepts the keys
// while they are valid and rejects them as invalid afterwards.
type KeyService struct {
	clock clockwork.Clock
	ttl   time.Duration
	calls atomic.Int64
	down  atomic.Bool

	mu     sync.RWMutex
	issued map[string]time.Time // key → expiry; the zero time once revoked
}

// NewKeyService returns a key service whose keys live ttl on clock.
func NewKeyService(clock clockwork.Clock, ttl time.Duration) *KeyService {
	return &KeyService{clock: clock, ttl: ttl, issued: map[string]time.Time{}}
}

// ServeHTTP issues a key. Any path is accepted, so the service can be
// mounted wherever a test's key_source url points.
func (s *KeyService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if s.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"unavailable"}`)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, `{"error":"method not allowed"}`)
		return
	}
	scene := r.URL.Query().Get("sceneCode")
	if scene == "" && r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		scene = gjson.GetBytes(body, "sceneCode").String()
	}
	if scene == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"sceneCode required"}`)
		return
	}
	io.WriteString(w, `{"result":"`+s.issue()+`"}`)
}

func (s *KeyService) issue() string {
	var random [6]byte
	rand.Read(random[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "dyn-" + strconv.Itoa(len(s.issued)+1) + "-" + hex.EncodeToString(random[:])
	s.issued[key] = s.clock.Now().Add(s.ttl)
	return key
}

// Valid reports whether key was issued by this service and has neither
// expired nor been revoked.
func (s *KeyService) Valid(key string) bool {
	_, valid := s.lookup(key)
	return valid
}

func (s *KeyService) lookup(key string) (issued, valid bool) {
	s.mu.RLock()
	expiry, issued := s.issued[key]
	s.mu.RUnlock()
	return issued, issued && s.clock.Now().Before(expiry)
}

// Revoke makes an issued key invalid before its expiry.
func (s *KeyService) Revoke(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issued[key]; ok {
		s.issued[key] = time.Time{}
	}
}

// SetDown makes the service answer 503 {"error":"unavailable"} while down.
func (s *KeyService) SetDown(down bool) { s.down.Store(down) }

// Calls returns how many requests the service received, failed ones included.
func (s *KeyService) Calls() int { return int(s.calls.Load()) }

// Validator is for Options.Validate: a key this service issued is OK while
// valid and InvalidKey once expired or revoked (as a provider rejects a
// stale key); any other key is not the service's to judge.
func (s *KeyService) Validator() func(key string) (Behavior, bool) {
	return func(key string) (Behavior, bool) {
		switch issued, valid := s.lookup(key); {
		case !issued:
			return "", false
		case valid:
			return OK, true
		default:
			return InvalidKey, true
		}
	}
}
