// Package dashboard is the operators' web dashboard that keygate serves at
// / on its own port (SPEC section 10). Pages are html/template shells with
// small hand-written scripts that call the admin API, so the dashboard,
// the API and the CLI never disagree. Everything is embedded: nothing to
// install or build at run time.
package dashboard

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the dashboard uses.
type Deps struct {
	Logger   *slog.Logger
	Clock    clockwork.Clock
	Sessions *Sessions
	// Verify checks a credential exactly as the admin routes do: nil for
	// the admin token or an admin's login token; an error otherwise (403
	// for a gateway token or a user who is not an admin).
	Verify func(ctx context.Context, credential string) error
	// Login is POST /api/v1/auth/login; nil when there is no user store.
	Login http.Handler
	// Open reports that no credential is configured (loopback only).
	Open func() bool
	// Throttle, if set, locks out a source address after repeated wrong
	// admin tokens, as password logins are (admin.Throttle).
	Throttle AddrThrottle
}

// AddrThrottle counts refused sign-ins per source address.
type AddrThrottle interface {
	// AddrWait is how long r's address is locked out (zero: it may try),
	// and whether that lockout is reported for the first time.
	AddrWait(r *http.Request) (time.Duration, bool)
	// Tarpit holds a locked-out sign-in before its refusal (so a client
	// looping on refusals costs no CPU while held) and returns what is left
	// of wait, and whether the answer must close the connection.
	Tarpit(r *http.Request, wait time.Duration) (time.Duration, bool)
	AddrFailed(r *http.Request)
	AddrSucceeded(r *http.Request)
}

// page is one entry of the navigation.
type page struct {
	Path, Name, Script string
}

// Pages in navigation order, named as SPEC section 10 names them.
var pages = []page{
	{"/", "Overview", "overview.js"},
	{"/keys", "Keys", "keys.js"},
	{"/models", "Models", "models.js"},
	{"/tokens", "Tokens", "tokens.js"},
	{"/usage", "Usage", "usage.js"},
	{"/users", "Users", "users.js"},
	{"/audit", "Audit", "audit.js"},
}

// CSP allows scripts, styles and connections from this origin only: no
// inline script or style, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type server struct {
	d       Deps
	pages   map[string]*template.Template
	login   *template.Template
	assets  fs.FS
	version map[string]string // asset name → short content hash, for cache busting
	i18nJS  []byte
}

// Routes adds the dashboard's pages, sign-in and assets to mux.
func Routes(mux *http.ServeMux, d Deps) {
	s := newServer(d)
	for _, p := range pages {
		pattern := "GET " + p.Path
		if p.Path == "/" {
			pattern = "GET /{$}"
		}
		mux.Handle(pattern, s.headers(s.handlePage(p)))
	}
	mux.Handle("GET /login", s.headers(http.HandlerFunc(s.handleLoginPage)))
	mux.Handle("POST /login", s.headers(http.HandlerFunc(s.handleLogin)))
	mux.Handle("POST /logout", s.headers(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET /assets/{file}", s.headers(http.HandlerFunc(s.handleAsset)))
}

func newServer(d Deps) *server {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	s := &server{d: d, pages: map[string]*template.Template{}, assets: sub, version: map[string]string{}}
	zhJSON, err := json.Marshal(zh)
	if err != nil {
		panic(err)
	}
	s.i18nJS = []byte("window.KG_ZH=" + string(zhJSON) + ";\n")
	entries, _ := fs.ReadDir(sub, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(sub, e.Name())
		s.version[e.Name()] = hash(b)
	}
	s.version["i18n.js"] = hash(s.i18nJS)
	funcs := template.FuncMap{
		"asset": func(name string) string { return "/assets/" + name + "?v=" + s.version[name] },
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).Funcs(i18nFuncs("en")).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	for _, p := range pages {
		name := "templates/" + pageFile(p) + ".html"
		s.pages[p.Path] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, name))
	}
	s.login = template.Must(template.New("login.html").Funcs(funcs).Funcs(i18nFuncs("en")).ParseFS(templateFS, "templates/login.html", "templates/partials.html"))
	return s
}

func pageFile(p page) string { return strings.ToLower(p.Name) }

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// headers sets the security headers of every dashboard answer.
func (s *server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// view is what a page template sees.
type view struct {
	Lang    string
	Page    page
	Pages   []page
	CSRF    string
	Who     string
	Error   string
	Open    bool
	Expired bool
	Next    string // the page to open after sign-in
}

func (s *server) handlePage(p page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.d.Sessions.lookup(r)
		if sess == nil || (!s.open() && s.d.Verify(r.Context(), sess.credential) != nil) {
			if sess != nil {
				s.endCookie(w, r)
			}
			target := "/login"
			if p.Path != "/" {
				target += "?next=" + p.Path
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		s.render(w, r, s.pages[p.Path], view{Page: p, Pages: pages, CSRF: sess.csrf, Who: sess.who})
	})
}

func (s *server) render(w http.ResponseWriter, r *http.Request, t *template.Template, v view) {
	v.Lang = lang(r)
	t, err := t.Clone()
	if err == nil {
		t = t.Funcs(i18nFuncs(v.Lang))
		var b strings.Builder
		if err = t.Execute(&b, v); err == nil {
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.Write([]byte(b.String()))
			return
		}
	}
	s.d.Logger.Error("dashboard page failed", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// lang is the page language: the operator's choice (a cookie the language
// control sets), else the browser's.
func lang(r *http.Request) string {
	if c, err := r.Cookie("kg_lang"); err == nil && (c.Value == "zh" || c.Value == "en") {
		return c.Value
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Accept-Language")), "zh") {
		return "zh"
	}
	return "en"
}

func (s *server) open() bool { return s.d.Open != nil && s.d.Open() }

func (s *server) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var body []byte
	if name == "i18n.js" {
		body = s.i18nJS
	} else {
		b, err := fs.ReadFile(s.assets, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body = b
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	if r.URL.Query().Get("v") == s.version[name] {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Write(body)
}
