// Package admin holds the operator routes under /api/v1: models and their
// keys, key health, users and login. Every handler here but login is behind
// the admin credential (see server.Auth.Admin).
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"

	"github.com/jonboulle/clockwork"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keycheck"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/respond"
)

// Deps is what the admin handlers use. Without a store (Models, Keys and
// Users nil) only the key health routes work, on the pool alone.
type Deps struct {
	Logger *slog.Logger
	Clock  clockwork.Clock
	Pool   *pool.Pool
	Models keygate.ModelStore
	Keys   keygate.KeyStore
	Users  keygate.UserStore
	Logins *Logins
	// Reload puts the stored models into service at once (requests in
	// flight keep the keys they started with). Handlers that change models
	// or keys call it after the change is stored.
	Reload func(ctx context.Context) error
	// UsersChanged is called after a user is created or deleted.
	UsersChanged func(ctx context.Context) error
	// AuditLogin, if set, records a login attempt: who tried (the
	// username), what came of it (login, login.failed, login.throttled)
	// and the answer's status.
	AuditLogin func(r *http.Request, username, action string, status int)
	// RemovingCredential, if set, is asked before a token or a user is
	// deleted; an error refuses the deletion (the last way in).
	RemovingCredential func(ctx context.Context) error
}

// mayRemoveCredential asks RemovingCredential, if set.
func (d Deps) mayRemoveCredential(ctx context.Context) error {
	if d.RemovingCredential == nil {
		return nil
	}
	return d.RemovingCredential(ctx)
}

// HandleListKeys answers every key with its state; ?model= and ?status=
// narrow the list, and keyPage's parameters search, sort and page it.
// "total" is how many keys matched before paging.
func HandleListKeys(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		model, status := r.URL.Query().Get("model"), r.URL.Query().Get("status")
		now := d.Clock.Now()
		out := []pool.KeyView{}
		for _, k := range d.Pool.Keys() {
			v := k.View(now)
			if (model != "" && !slices.Contains(v.Models, model)) || (status != "" && v.Status != status) {
				continue
			}
			out = append(out, v)
		}
		out, total, err := keyPage(out, r.URL.Query())
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": out, "total": total})
	})
}

// HandleGetKey answers one key.
func HandleGetKey(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := findKey(d, r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, k.View(d.Clock.Now()))
	})
}

// HandleResetKey clears one key's failure state.
func HandleResetKey(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := findKey(d, r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		k.Reset()
		d.Logger.Info("key reset by operator", "key_id", k.ID)
		respond.JSON(w, http.StatusOK, k.View(d.Clock.Now()))
	})
}

// HandleResetKeys clears the failure state of every key, or with
// ?failed=true only of those cooling down, disabled by failures or in error.
func HandleResetKeys(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		onlyFailed := r.URL.Query().Get("failed") == "true"
		now := d.Clock.Now()
		reset := []string{}
		for _, k := range d.Pool.Keys() {
			v := k.View(now)
			if onlyFailed && v.ErrorClass == "" && v.Status != pool.StatusError {
				continue
			}
			k.Reset()
			reset = append(reset, k.ID)
		}
		d.Logger.Info("keys reset by operator", "count", len(reset), "only_failed", onlyFailed)
		respond.JSON(w, http.StatusOK, map[string]any{"reset": len(reset), "ids": reset})
	})
}

// HandlePatchKey switches a key on or off: {"status":"enabled"|"disabled"}.
// A stored key keeps the change across restarts and for every model using
// it; a key fetched from a key service keeps it in its saved state.
func HandlePatchKey(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var body struct {
			Status string `json:"status"`
		}
		if err := decode(w, r, maxBody, &body); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if body.Status != keygate.StatusEnabled && body.Status != keygate.StatusDisabled {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "status: must be enabled or disabled"))
			return
		}
		ref := keygate.KeyRef{ID: id, Status: body.Status}
		var err error = keygate.Errorf(keygate.ENotFound, "no stored key")
		if d.Keys != nil {
			ref, err = d.Keys.SetKeyStatus(r.Context(), id, body.Status)
		}
		k := d.Pool.Key(id)
		switch {
		case err == nil:
			err = d.apply(r.Context())
		case keygate.ErrorCode(err) == keygate.ENotFound && k != nil:
			k.SetDisabled(body.Status == keygate.StatusDisabled)
			err = nil
		case keygate.ErrorCode(err) == keygate.ENotFound:
			err = keygate.Errorf(keygate.ENotFound, "no key with id %q", id)
		}
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("key status changed by operator", "key_id", id, "status", body.Status)
		if k := d.Pool.Key(id); k != nil {
			respond.JSON(w, http.StatusOK, k.View(d.Clock.Now()))
			return
		}
		respond.JSON(w, http.StatusOK, ref) // stored, but no model in service uses it
	})
}

// HandleDeleteKey removes a stored key from every model that uses it;
// requests in flight with it finish.
func HandleDeleteKey(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		err := d.Keys.DeleteKey(r.Context(), id)
		if keygate.ErrorCode(err) == keygate.ENotFound {
			if k := d.Pool.Key(id); k != nil && k.Source() != nil {
				err = keygate.Errorf(keygate.EInvalidRequest, "key %s is fetched from a key service: remove key_source from its model instead", id)
			} else {
				err = keygate.Errorf(keygate.ENotFound, "no key with id %q", id)
			}
		}
		if err == nil {
			err = d.apply(r.Context())
		}
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("key deleted by operator", "key_id", id)
		respond.JSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	})
}

func findKey(d Deps, r *http.Request) (*pool.Key, error) {
	id := r.PathValue("id")
	if k := d.Pool.Key(id); k != nil {
		return k, nil
	}
	return nil, keygate.Errorf(keygate.ENotFound, "no key with id %q", id)
}

// HandleCheckKeys checks every key (or those of ?model= / ?vendor=) against
// its provider now and answers one result per key.
func HandleCheckKeys(d Deps, c *keycheck.Checker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := keycheck.Filter{Model: r.URL.Query().Get("model"), Vendor: r.URL.Query().Get("vendor"), IDs: r.URL.Query()["id"]}
		if !keycheck.KnownVendor(f.Vendor) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "vendor: %q must be openai, azure, gemini, siliconflow, anthropic or all", f.Vendor))
			return
		}
		if f.Model != "" && d.Pool.Group(f.Model) == nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotFound, "no model %q", f.Model))
			return
		}
		if r.Header.Get("Accept") == "application/x-ndjson" {
			streamChecks(w, r, c, f)
			return
		}
		results := c.CheckAll(r.Context(), f, nil)
		passed := 0
		for _, res := range results {
			if res.OK {
				passed++
			}
		}
		respond.JSON(w, http.StatusOK, map[string]any{"checked": len(results), "passed": passed, "data": results})
	})
}

// streamChecks answers a check as newline-delimited JSON: first
// {"total":N}, then one result per key as soon as it is known, so a
// terminal can draw progress.
func streamChecks(w http.ResponseWriter, r *http.Request, c *keycheck.Checker, f keycheck.Filter) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	enc.Encode(map[string]int{"total": c.Plan(f)})
	rc.Flush()
	c.CheckAll(r.Context(), f, func(res keycheck.Result) {
		enc.Encode(res)
		rc.Flush()
	})
}

// HandleLookupKey finds a key by its clear text ({"key":"sk-…"}), sent in
// a body so it never lands in a URL or an access log, and answers its view.
func HandleLookupKey(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Key string `json:"key"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil || body.Key == "" {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "body must be {\"key\":\"…\"}"))
			return
		}
		k := d.Pool.Key(d.Pool.KeyID(body.Key))
		if k == nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.ENotFound, "no key %s in service", keygate.Mask(body.Key)))
			return
		}
		respond.JSON(w, http.StatusOK, k.View(d.Clock.Now()))
	})
}
