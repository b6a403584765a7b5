package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/respond"
)

// ModelView is a model as the admin API answers it (SPEC section 3): every
// field, but keys only as {"id","masked","status"} and key service header
// values masked.
type ModelView struct {
	keygate.Model
	APIKeys   []keygate.KeyRef   `json:"api_keys"`
	KeySource *keygate.KeySource `json:"key_source,omitempty"`
}

func (d Deps) view(m keygate.Model) ModelView {
	v := ModelView{Model: m, APIKeys: make([]keygate.KeyRef, len(m.APIKeys))}
	v.Model.APIKeys = nil
	for i, k := range m.APIKeys {
		v.APIKeys[i] = keygate.KeyRef{ID: d.Pool.KeyID(k.Key), Masked: keygate.Mask(k.Key), Status: cmp.Or(k.Status, keygate.StatusEnabled)}
	}
	if m.KeySource != nil {
		v.KeySource = maskedSource(*m.KeySource)
	}
	return v
}

// maskedView is view for a model listed with its keys' stored masks.
func maskedView(m keygate.MaskedModel) ModelView {
	v := ModelView{Model: m.Model, APIKeys: make([]keygate.KeyRef, len(m.Keys))}
	for i, k := range m.Keys {
		v.APIKeys[i] = keygate.KeyRef{ID: k.ID, Masked: k.Masked, Status: cmp.Or(k.Status, keygate.StatusEnabled)}
	}
	if m.KeySource != nil {
		v.KeySource = maskedSource(*m.KeySource)
	}
	return v
}

// modelBody is a model as the admin API reads it: the fields of
// keygate.Model, with api_keys entries that may also name a key the model
// already has by its id (so an answer can be edited and sent back).
type modelBody struct {
	keygate.Model
	APIKeys []keyBody `json:"api_keys"`
}

type keyBody struct {
	ID     string `json:"id,omitempty"`
	Masked string `json:"masked,omitempty"` // ignored: part of what GET answers
	Key    string `json:"key,omitempty"`
	Status string `json:"status,omitempty"`
	Weight int    `json:"weight,omitempty"`
	RPM    int    `json:"rpm,omitempty"`
	TPM    int    `json:"tpm,omitempty"`
}

// UnmarshalJSON also takes a key as a plain string, as the YAML file does.
// Unknown fields are refused here too: a decoder's DisallowUnknownFields
// does not reach into an UnmarshalJSON, and a dropped field (a key's rpm)
// would be lost without a word.
func (k *keyBody) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*k = keyBody{Key: s}
		return nil
	}
	type plain keyBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(k))
}

// resolve turns a body into a model and lists every problem with it.
// Keys named by id must be keys of existing.
func (d Deps) resolve(b modelBody, existing *keygate.Model) (keygate.Model, []string) {
	m := b.Model
	m.ID, m.Origin, m.APIKeys = 0, "", nil
	known := map[string]keygate.KeySpec{}
	if existing != nil {
		for _, k := range existing.APIKeys {
			known[d.Pool.KeyID(k.Key)] = k
		}
	}
	var problems []string
	for i, k := range b.APIKeys {
		at := fmt.Sprintf("api_keys[%d]", i)
		switch {
		case k.Key != "":
			k.Key = strings.TrimSpace(k.Key)
			if p := keyProblem(k.Key); p != "" {
				problems = append(problems, at+".key: "+p)
				continue
			}
			m.APIKeys = append(m.APIKeys, keygate.KeySpec{Key: k.Key, Status: k.Status, Weight: k.Weight, RPM: k.RPM, TPM: k.TPM})
		case k.ID != "":
			spec, ok := known[k.ID]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s.id: the model has no key %q", at, k.ID))
				continue
			}
			spec.Status = cmp.Or(k.Status, spec.Status)
			spec.Weight = cmp.Or(k.Weight, spec.Weight)
			spec.RPM, spec.TPM = cmp.Or(k.RPM, spec.RPM), cmp.Or(k.TPM, spec.TPM)
			m.APIKeys = append(m.APIKeys, spec)
		default:
			problems = append(problems, at+".key: required")
		}
	}
	if existing != nil && existing.KeySource != nil && m.KeySource != nil {
		keepMaskedSecrets(m.KeySource, existing.KeySource)
	}
	return m, append(problems, config.ModelProblems(&m)...)
}

// keyProblem says what is wrong with a key string, or "".
func keyProblem(key string) string {
	switch {
	case key == "":
		return "required"
	case len(key) > 4096:
		return "longer than 4096 characters"
	case strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain spaces or control characters"
	}
	return ""
}

// HandleCreateModel creates an API model and serves it at once.
func HandleCreateModel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b modelBody
		if err := decode(w, r, maxBody, &b); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		m, problems := d.resolve(b, nil)
		if len(problems) > 0 {
			respond.Error(w, d.Logger, invalid("model", problems))
			return
		}
		if err := d.Models.CreateModel(r.Context(), &m); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("model created", "id", m.ID, "model", m.ModelID, "keys", len(m.APIKeys))
		if err := d.apply(r.Context()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusCreated, d.view(m))
	})
}

// HandleListModels lists models; ?provider=, ?type= and ?status= narrow it.
func HandleListModels(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		models, err := d.Models.ListModelsMasked(r.Context(), keygate.ModelFilter{Provider: q.Get("provider"), Type: q.Get("type"), Status: q.Get("status")})
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		out := make([]ModelView, len(models))
		for i, m := range models {
			out[i] = maskedView(m)
		}
		respond.JSON(w, http.StatusOK, map[string]any{"data": out})
	})
}

// HandleGetModel answers one model.
func HandleGetModel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := d.findModel(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, d.view(*m))
	})
}

// HandleUpdateModel changes a model: each field present in the body
// replaces the stored one (api_keys the whole key list); fields left out
// stay as they are.
func HandleUpdateModel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		existing, err := d.findModel(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		var patch map[string]json.RawMessage
		if err := decode(w, r, maxBody, &patch); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		b, err := merge(existing, patch)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		m, problems := d.resolve(b, existing)
		if len(problems) > 0 {
			respond.Error(w, d.Logger, invalid("model", problems))
			return
		}
		m.ID, m.Origin = existing.ID, existing.Origin
		if err := d.Models.UpdateModel(r.Context(), &m); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("model updated", "id", m.ID, "model", m.ModelID, "fields", strings.Join(sortedKeys(patch), ","))
		if err := d.apply(r.Context()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, d.view(m))
	})
}

// merge lays the fields of patch over the stored model and reads the
// result as a body. The stored keys pass through in clear, in memory only.
func merge(existing *keygate.Model, patch map[string]json.RawMessage) (modelBody, error) {
	base := modelBody{Model: *existing}
	for _, k := range existing.APIKeys {
		base.APIKeys = append(base.APIKeys, keyBody{Key: k.Key, Status: k.Status, Weight: k.Weight})
	}
	raw, err := json.Marshal(base)
	if err != nil {
		return modelBody{}, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return modelBody{}, err
	}
	maps.Copy(fields, patch)
	raw, err = json.Marshal(fields)
	if err != nil {
		return modelBody{}, err
	}
	var b modelBody
	return b, decodeBytes(raw, &b)
}

// HandleDeleteModel removes a model and stops serving it; requests in
// flight finish with the keys they have.
func HandleDeleteModel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := d.findModel(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		if err := d.Models.DeleteModel(r.Context(), m.ID); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("model deleted", "id", m.ID, "model", m.ModelID, "origin", m.Origin)
		if err := d.apply(r.Context()); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"id": m.ID, "deleted": true})
	})
}

// HandleAddModelKeys adds keys to a model: {"keys":["sk-…",…]}. Keys the
// model already has, or that repeat in the list, are reported as duplicates.
func HandleAddModelKeys(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Not findModel: that would decrypt every key the model has; the
		// store says not_found itself.
		id, err := modelID(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		var b struct {
			Keys []string `json:"keys"`
		}
		if err := decode(w, r, maxKeysBody, &b); err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		var problems []string
		if len(b.Keys) == 0 {
			problems = append(problems, `keys: required (a list of keys, like {"keys":["sk-…"]})`)
		}
		for i := range b.Keys {
			b.Keys[i] = strings.TrimSpace(b.Keys[i])
			if p := keyProblem(b.Keys[i]); p != "" {
				problems = append(problems, fmt.Sprintf("keys[%d]: %s", i, p))
			}
		}
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		if len(problems) > 0 {
			respond.Error(w, d.Logger, invalid("keys", problems))
			return
		}
		res, err := d.Keys.AddModelKeys(r.Context(), id, b.Keys)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		d.Logger.Info("keys added", "id", id, "added", len(res.Added), "duplicates", len(res.Duplicates))
		if len(res.Added) > 0 {
			if err := d.apply(r.Context()); err != nil {
				respond.Error(w, d.Logger, err)
				return
			}
		}
		respond.JSON(w, http.StatusOK, res)
	})
}

// findModel reads the model named by the {id} of the path.
func (d Deps) findModel(r *http.Request) (*keygate.Model, error) {
	id, err := modelID(r)
	if err != nil {
		return nil, err
	}
	return d.Models.FindModel(r.Context(), id)
}

func modelID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, keygate.Errorf(keygate.ENotFound, "no model with id %q (ids are numbers)", r.PathValue("id"))
	}
	return id, nil
}

// apply puts the stored models into service. The change is already saved
// when this fails, so the answer says so; the cause goes to the log.
func (d Deps) apply(ctx context.Context) error {
	if d.Reload == nil {
		return nil
	}
	if err := d.Reload(ctx); err != nil {
		d.Logger.Error("applying stored models to the pool failed", "err", err)
		return keygate.Errorf(keygate.EInternal, "the change is saved but could not be put into service; see the server log")
	}
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if fieldName.MatchString(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
