package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/respond"
)

func (s *server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if sess := s.d.Sessions.lookup(r); sess != nil && (s.open() || s.d.Verify(r.Context(), sess.credential) == nil) {
		http.Redirect(w, r, nextPage(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, r, s.login, view{Open: s.open(), Expired: r.URL.Query().Has("expired"), Next: nextPage(r.URL.Query().Get("next"))})
}

// handleLogin signs a browser in with a username and password (through the
// login API, so its checks apply) or with the admin token. Either way the
// credential must pass the admin routes' own check: a gateway token or a
// user who is not an admin is refused. The form is same-origin only.
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.loginFailed(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if !sameOrigin(r) {
		s.loginFailed(w, r, http.StatusForbidden, "Sign-in from another site refused.")
		return
	}
	user, pass, token := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("admin_token"))
	var credential, who string
	switch {
	case token != "":
		if th := s.d.Throttle; th != nil {
			if wait, first := th.AddrWait(r); wait > 0 {
				if first {
					s.d.Logger.Warn("dashboard sign-in throttled: address locked out", "remote", r.RemoteAddr, "retry_after", wait.Round(time.Second))
				}
				wait, closeConn := th.Tarpit(r, wait)
				if closeConn {
					w.Header().Set("Connection", "close")
				}
				ra := respond.RetryAfterSeconds(wait)
				w.Header().Set("Retry-After", ra)
				s.loginFailed(w, r, http.StatusTooManyRequests, "Too many failed sign-ins; try again in "+ra+" s.")
				return
			}
		}
		credential, who = token, "admin token"
	case user != "" || pass != "":
		if s.d.Login == nil {
			s.loginFailed(w, r, http.StatusBadRequest, "This server has no users; sign in with the admin token.")
			return
		}
		jwt, status, msg := s.passwordLogin(r, user, pass)
		if jwt == "" {
			s.loginFailed(w, r, status, msg)
			return
		}
		credential, who = jwt, user
	case s.open():
		who = "open mode"
	default:
		s.loginFailed(w, r, http.StatusBadRequest, "Enter a username and password, or the admin token.")
		return
	}
	if !s.open() {
		if err := s.d.Verify(r.Context(), credential); err != nil {
			status := keygate.HTTPStatus(keygate.ErrorCode(err))
			if token != "" && s.d.Throttle != nil {
				s.d.Throttle.AddrFailed(r)
			}
			s.d.Logger.Warn("dashboard sign-in refused", "user", who, "remote", r.RemoteAddr, "status", status)
			msg := "Wrong admin token."
			if status == http.StatusForbidden {
				msg = "Only admins can sign in: " + keygate.ErrorMessage(err) + "."
			}
			s.loginFailed(w, r, status, msg)
			return
		}
	}
	if token != "" && s.d.Throttle != nil {
		s.d.Throttle.AddrSucceeded(r)
	}
	cookie, _, err := s.d.Sessions.start(r.Context(), credential, who)
	if err != nil {
		s.d.Logger.Error("dashboard sign-in: store session", "err", err)
		s.loginFailed(w, r, http.StatusInternalServerError, "Sign-in failed; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: "/", MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.d.Logger.Info("dashboard sign-in", "user", who, "remote", r.RemoteAddr)
	http.Redirect(w, r, nextPage(r.PostForm.Get("next")), http.StatusSeeOther)
}

// passwordLogin asks POST /api/v1/auth/login for a login token.
func (s *server) passwordLogin(r *http.Request, user, pass string) (jwt string, status int, msg string) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "/api/v1/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", http.StatusInternalServerError, "Sign-in failed."
	}
	req.Header = r.Header.Clone() // the login route sees the browser's own address and headers
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	rec := httptest.NewRecorder()
	s.d.Login.ServeHTTP(rec, req)
	var answer struct {
		Token string `json:"token"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(rec.Body.Bytes(), &answer)
	if rec.Code != http.StatusOK || answer.Token == "" {
		msg = answer.Error.Message
		if rec.Code == http.StatusUnauthorized || msg == "" {
			msg = "Wrong username or password."
		}
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			return "", rec.Code, "Too many failed sign-ins; try again in " + ra + " s."
		}
		return "", rec.Code, msg
	}
	return answer.Token, http.StatusOK, ""
}

func (s *server) loginFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.WriteHeader(status)
	s.render(w, r, s.login, view{Open: s.open(), Error: msg, Next: nextPage(r.PostForm.Get("next"))})
}

// handleLogout ends the session on the server and clears the cookie. It
// is a change, so it needs the session's CSRF token.
func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	r.ParseForm()
	if sess := s.d.Sessions.lookup(r); sess != nil {
		if err := checkIntent(r, sess.csrf, r.PostForm.Get("csrf")); err != nil {
			http.Error(w, keygate.ErrorMessage(err), http.StatusForbidden)
			return
		}
		s.d.Logger.Info("dashboard sign-out", "user", sess.who)
	}
	s.endCookie(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *server) endCookie(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		if err := s.d.Sessions.end(r.Context(), c.Value); err != nil {
			s.d.Logger.Error("dashboard sign-out: end session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// nextPage is where to go after sign-in: one of the dashboard's pages.
func nextPage(p string) string {
	for _, pg := range pages {
		if pg.Path == p {
			return p
		}
	}
	return "/"
}
