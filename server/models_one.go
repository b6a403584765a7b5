package server

import (
	"net/http"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
)

// handleModel answers GET /v1/models/{id} (the SDKs' models.retrieve) in
// OpenAI's model shape, for a model the caller may use.
func handleModel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		id := r.PathValue("id")
		g := d.Pool.Group(id)
		if g == nil || !caller.AllowsModel(id) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotFound, "The model `%s` does not exist", id))
			return
		}
		respond.JSON(w, http.StatusOK, modelObject(g, id))
	})
}

// modelObject is a model in OpenAI's shape, owned by its first
// deployment's provider.
func modelObject(g *pool.Group, id string) modelEntry {
	owner := "keygate"
	if g != nil && len(g.Deployments) > 0 && g.Deployments[0].Model.Provider != "" {
		owner = g.Deployments[0].Model.Provider
	}
	return modelEntry{ID: id, Object: "model", OwnedBy: owner}
}

// allowedMethods lists the methods another route of mux answers for the
// request's path. Only the not-found path asks, so its probing costs the
// routes nothing.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}
