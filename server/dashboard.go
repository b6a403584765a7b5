package server

import (
	"net/http"

	"github.com/keygate/keygate/dashboard"
)

// addDashboard serves the operators' dashboard at / (SPEC section 10).
// Signing in checks a credential exactly as the admin routes do, and a
// password goes through the login route itself.
func addDashboard(mux *http.ServeMux, d Deps, login http.Handler) {
	if d.Sessions == nil {
		return
	}
	deps := dashboard.Deps{
		Logger: d.Logger, Clock: d.Clock, Sessions: d.Sessions,
		Verify: d.Auth.AdminToken, Login: login, Open: d.Auth.Open,
	}
	if d.Admin.Logins != nil && d.Admin.Logins.Throttle != nil {
		deps.Throttle = d.Admin.Logins.Throttle // one count per address for passwords and admin tokens
	}
	dashboard.Routes(mux, deps)
}
