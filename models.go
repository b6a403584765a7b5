package keygate

import "context"

// Model origins.
const (
	OriginConfig = "config"
	OriginAPI    = "api"
)

// ModelFilter narrows ListModels; an empty field matches every model.
type ModelFilter struct {
	Provider string
	Type     string
	Status   string
}

// ModelStore keeps models and the provider keys behind them. Keys travel in
// clear in Model.APIKeys between the store and its callers, in memory only;
// the store keeps them encrypted and a key string used by several models is
// one stored key. A KeySpec with an empty Status leaves a stored key's
// status as it is (new keys start enabled).
type ModelStore interface {
	ListModels(ctx context.Context, f ModelFilter) ([]Model, error)
	// ListModelsMasked lists models with their keys by id and mask only,
	// decrypting none: what a list shows.
	ListModelsMasked(ctx context.Context, f ModelFilter) ([]MaskedModel, error)
	// FindModel returns ENotFound when there is no model with id.
	FindModel(ctx context.Context, id int64) (*Model, error)
	// CreateModel adds m as an API model and sets m.ID and m.Origin.
	CreateModel(ctx context.Context, m *Model) error
	// UpdateModel replaces every field and the key list of model m.ID.
	UpdateModel(ctx context.Context, m *Model) error
	// DeleteModel removes the model, and the keys no other model uses.
	DeleteModel(ctx context.Context, id int64) error
	// SyncConfigModels makes models the set of config models: each is
	// upserted (found again by its model_id and its place among entries
	// with the same model_id), and config models no longer declared are
	// removed. API models are left alone.
	SyncConfigModels(ctx context.Context, models []Model) error
}

// MaskedModel is a model whose keys are named, not given: Model.APIKeys
// is empty and Keys holds each key's id, mask and status, in order.
type MaskedModel struct {
	Model
	Keys []KeyRef
}

// KeyRef names a stored key without its secret.
type KeyRef struct {
	ID     string `json:"id"`
	Masked string `json:"masked"`
	Status string `json:"status,omitempty"`
}

// AddedKeys is the outcome of adding keys to a model.
type AddedKeys struct {
	Added      []KeyRef `json:"added"`
	Duplicates []KeyRef `json:"duplicates"` // already in the model, or repeated in the request
}

// KeyStore changes stored keys one at a time, by id.
type KeyStore interface {
	// AddModelKeys appends keys to model id; keys it already has are
	// reported as duplicates, and keys stored for other models are shared
	// (their status unchanged).
	AddModelKeys(ctx context.Context, id int64, keys []string) (AddedKeys, error)
	// SetKeyStatus sets a stored key enabled or disabled; ENotFound if none.
	SetKeyStatus(ctx context.Context, id, status string) (KeyRef, error)
	// DeleteKey removes a key from every model; ENotFound if none.
	DeleteKey(ctx context.Context, id string) error
}

// Sealer encrypts secrets at rest. aad binds a sealed value to its place
// (a row): sealed elsewhere, it does not open.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}
