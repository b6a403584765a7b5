package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/secret"
)

// Auditor takes audit entries off the request path (see package audit).
type Auditor interface {
	Record(keygate.AuditEntry)
}

// actor names who an admin request comes from, for the audit log: the
// admin token, an admin user's login (sent as a bearer token or signed in
// to the dashboard with), or anyone in open mode.
func (a *Auth) actor(r *http.Request) string {
	if a.Open() {
		return "anonymous"
	}
	token, _, _ := a.operatorCredential(r)
	sum := sha256.Sum256([]byte(token))
	if a.hasAdm && subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
		return "admin"
	}
	if a.signer != nil && secret.LooksLikeJWT(token) {
		if c, err := a.signer.Verify(token); err == nil {
			return "user:" + c.Username
		}
	}
	return "unknown"
}

// auditAction names an admin route's change: the resource, then what was
// done (create, update, delete, or the route's last word: reset, check …).
func auditAction(r *http.Request) string {
	method, path, _ := strings.Cut(r.Pattern, " ")
	parts := strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/")
	resource := parts[0]
	if last := parts[len(parts)-1]; len(parts) > 1 && !strings.HasPrefix(last, "{") {
		return resource + "." + last
	}
	switch method {
	case http.MethodPost:
		return resource + ".create"
	case http.MethodDelete:
		return resource + ".delete"
	}
	return resource + ".update"
}

// sourceAddr is the caller's address without its port.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// audited records every change an admin route makes (any method but GET),
// with its outcome; the body, which may hold keys, is never looked at.
func audited(d Deps, r *http.Request, w http.ResponseWriter, next http.Handler) {
	if d.Audit == nil || r.Method == http.MethodGet {
		next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	d.Audit.Record(keygate.AuditEntry{Time: d.Clock.Now().UTC(), Actor: d.Auth.actor(r), Action: auditAction(r),
		Target: r.PathValue("id"), Source: sourceAddr(r), Status: sw.status})
}

// handleAudit answers GET /api/v1/audit?from=&to=&actor=&action=.
func handleAudit(d Deps, store keygate.AuditStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := keygate.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action")}
		for _, b := range []struct {
			name string
			dst  *time.Time
		}{{"from", &f.From}, {"to", &f.To}} {
			if s := q.Get(b.name); s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "%s: %q is not an RFC 3339 time", b.name, s))
					return
				}
				*b.dst = t
			}
		}
		entries, err := store.ListAudit(r.Context(), f)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": entries})
	})
}
