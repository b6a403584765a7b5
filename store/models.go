package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

var (
	_ keygate.ModelStore = (*DB)(nil)
	_ keygate.KeyStore   = (*DB)(nil)
)

// keyring is what the store needs to keep provider keys.
type keyring struct {
	sealer keygate.Sealer
	hasher keygate.KeyHasher
}

// UseKeyring gives the store the sealer that encrypts provider keys and
// the hasher that names them. Call it once, after Open and before any
// model or key method.
func (db *DB) UseKeyring(s keygate.Sealer, h keygate.KeyHasher) {
	db.keyring = &keyring{sealer: s, hasher: h}
}

var errNoKeyring = errors.New("store has no keyring (UseKeyring not called)")

// modelColumns are the columns of a model's fields, in the order of modelArgs.
var modelColumns = []string{"name", "model_id", "provider", "type", "description", "status", "base_url",
	"auth_type", "key_usage_mode", "key_source", "upstream_model", "fallbacks", "supports_vision",
	"max_tokens", "context_window", "input_price", "output_price", "rpm", "tpm", "temperature", "headers", "api_version", "hedge"}

// keySourceAAD binds a sealed key_source to its column.
var keySourceAAD = []byte("models.key_source")

// keyAAD binds a sealed key to its row.
func keyAAD(id string) []byte { return []byte("provider_keys." + id) }

func (db *DB) modelArgs(m *keygate.Model) ([]any, error) {
	var source []byte
	if m.KeySource != nil {
		plain, err := json.Marshal(m.KeySource)
		if err != nil {
			return nil, err
		}
		if source, err = db.keyring.sealer.Seal(plain, keySourceAAD); err != nil {
			return nil, fmt.Errorf("seal key_source: %w", err)
		}
	}
	fallbacks, err := json.Marshal(append([]string{}, m.Fallbacks...))
	if err != nil {
		return nil, err
	}
	headers, err := json.Marshal(m.Headers)
	if err != nil || m.Headers == nil {
		headers = []byte("{}")
	}
	hedge := ""
	if m.Hedge != nil {
		b, err := json.Marshal(m.Hedge)
		if err != nil {
			return nil, err
		}
		hedge = string(b)
	}
	return []any{text(m.Name), text(m.ModelID), text(m.Provider), text(m.Type), text(m.Description),
		text(m.Status), text(m.BaseURL), text(m.AuthType), text(m.KeyUsageMode), source,
		text(m.UpstreamModel), text(string(fallbacks)), m.SupportsVision, m.MaxTokens, m.ContextWindow,
		finite(m.InputPrice), finite(m.OutputPrice), m.RPM, m.TPM, m.Temperature, text(string(headers)), text(m.APIVersion), hedge}, nil
}

// ListModels returns the models matching f, ordered by id, with their keys
// in clear.
func (db *DB) ListModels(ctx context.Context, f keygate.ModelFilter) ([]keygate.Model, error) {
	where, args := modelFilter(f)
	var out []keygate.Model
	err := db.read(ctx, "list models", func(tx *sql.Tx) (err error) {
		out, err = db.queryModels(ctx, tx, where, args)
		return err
	})
	return out, err
}

// FindModel returns model id with its keys in clear.
func (db *DB) FindModel(ctx context.Context, id int64) (*keygate.Model, error) {
	var out []keygate.Model
	err := db.read(ctx, "find model", func(tx *sql.Tx) (err error) {
		out, err = db.queryModels(ctx, tx, "m.id = ?", []any{id})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, keygate.Errorf(keygate.ENotFound, "no model with id %d", id)
	}
	return &out[0], nil
}

// ListModelsMasked is ListModels as a list shows it: each model's keys by
// id, stored mask and status, so listing 10,000 keys decrypts none.
func (db *DB) ListModelsMasked(ctx context.Context, f keygate.ModelFilter) ([]keygate.MaskedModel, error) {
	where, args := modelFilter(f)
	if where != "" {
		where = " WHERE " + where
	}
	var out []keygate.MaskedModel
	err := db.read(ctx, "list models", func(tx *sql.Tx) error {
		models, index, err := db.modelRows(ctx, tx, where, args)
		if err != nil || len(models) == 0 {
			out = []keygate.MaskedModel{}
			return err
		}
		out = make([]keygate.MaskedModel, len(models))
		for i, m := range models {
			out[i].Model = m
		}
		rows, err := tx.QueryContext(ctx, db.rebind("SELECT mk.model_ref, k.id, k.masked, k.status "+modelKeysFrom(where)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				ref int64
				k   keygate.KeyRef
			)
			if err := rows.Scan(&ref, &k.ID, &k.Masked, &k.Status); err != nil {
				return fmt.Errorf("scan key: %w", err)
			}
			m := &out[index[ref]]
			m.Keys = append(m.Keys, k)
		}
		return rows.Err()
	})
	return out, err
}

// modelKeysFrom is the FROM … ORDER BY of a query over the keys of the
// models matching where (a WHERE clause over alias m, or empty), in each
// model's key order (model_keys_position_idx: no sort).
func modelKeysFrom(where string) string {
	from := "FROM model_keys mk JOIN provider_keys k ON k.id = mk.key_id"
	if where != "" {
		from += " JOIN models m ON m.id = mk.model_ref" + where
	}
	return from + " ORDER BY mk.model_ref, mk.position"
}

// modelFilter is f as conditions over alias m (empty: every model).
func modelFilter(f keygate.ModelFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	for _, c := range []struct{ col, v string }{{"provider", f.Provider}, {"type", f.Type}, {"status", f.Status}} {
		if c.v != "" {
			where, args = append(where, "m."+c.col+" = ?"), append(args, c.v)
		}
	}
	return strings.Join(where, " AND "), args
}

// queryModels reads the models matching where (over alias m) and their keys.
func (db *DB) queryModels(ctx context.Context, tx *sql.Tx, where string, args []any) ([]keygate.Model, error) {
	if where != "" {
		where = " WHERE " + where
	}
	out, index, err := db.modelRows(ctx, tx, where, args)
	if err != nil || len(out) == 0 {
		return out, err
	}
	rows, err := tx.QueryContext(ctx, db.rebind("SELECT mk.model_ref, k.id, k.secret, k.status, k.weight, k.rpm, k.tpm "+modelKeysFrom(where)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	secrets := map[string]string{} // a key shared by several models is decrypted once
	for rows.Next() {
		var (
			ref    int64
			id     string
			sealed []byte
			spec   keygate.KeySpec
		)
		if err := rows.Scan(&ref, &id, &sealed, &spec.Status, &spec.Weight, &spec.RPM, &spec.TPM); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		secret, ok := secrets[id]
		if !ok {
			plain, err := db.keyring.sealer.Open(sealed, keyAAD(id))
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", id, err)
			}
			secret = string(plain)
			secrets[id] = secret
		}
		spec.Key = secret
		m := &out[index[ref]]
		m.APIKeys = append(m.APIKeys, spec)
	}
	return out, rows.Err()
}

// modelRows reads the models matching where (a WHERE clause over alias m,
// or empty) without their keys, and where each is in the answer by id.
func (db *DB) modelRows(ctx context.Context, tx *sql.Tx, where string, args []any) ([]keygate.Model, map[int64]int, error) {
	if db.keyring == nil {
		return nil, nil, errNoKeyring
	}
	rows, err := tx.QueryContext(ctx, db.rebind("SELECT id, origin, "+strings.Join(modelColumns, ", ")+
		" FROM models m"+where+" ORDER BY id"), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		out   []keygate.Model
		index = map[int64]int{}
	)
	for rows.Next() {
		var (
			m         keygate.Model
			source    []byte
			fallbacks string
			temp      sql.NullFloat64
			hedge     string
			headers   string
		)
		if err := rows.Scan(&m.ID, &m.Origin, &m.Name, &m.ModelID, &m.Provider, &m.Type, &m.Description,
			&m.Status, &m.BaseURL, &m.AuthType, &m.KeyUsageMode, &source, &m.UpstreamModel, &fallbacks,
			&m.SupportsVision, &m.MaxTokens, &m.ContextWindow, &m.InputPrice, &m.OutputPrice, &m.RPM, &m.TPM,
			&temp, &headers, &m.APIVersion, &hedge); err != nil {
			return nil, nil, fmt.Errorf("scan: %w", err)
		}
		if hedge != "" {
			m.Hedge = new(keygate.Hedge)
			if err := json.Unmarshal([]byte(hedge), m.Hedge); err != nil {
				return nil, nil, fmt.Errorf("model %d: hedge: %w", m.ID, err)
			}
		}
		if temp.Valid {
			m.Temperature = &temp.Float64
		}
		if err := json.Unmarshal([]byte(fallbacks), &m.Fallbacks); err != nil {
			return nil, nil, fmt.Errorf("model %d: fallbacks: %w", m.ID, err)
		}
		if len(m.Fallbacks) == 0 {
			m.Fallbacks = nil
		}
		if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
			return nil, nil, fmt.Errorf("model %d: headers: %w", m.ID, err)
		}
		if len(m.Headers) == 0 {
			m.Headers = nil
		}
		if source != nil {
			plain, err := db.keyring.sealer.Open(source, keySourceAAD)
			if err != nil {
				return nil, nil, fmt.Errorf("model %d: key_source: %w", m.ID, err)
			}
			m.KeySource = new(keygate.KeySource)
			if err := json.Unmarshal(plain, m.KeySource); err != nil {
				return nil, nil, fmt.Errorf("model %d: key_source: %w", m.ID, err)
			}
		}
		index[m.ID] = len(out)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return out, index, nil
}

// CreateModel adds m as an API model with its keys.
func (db *DB) CreateModel(ctx context.Context, m *keygate.Model) error {
	if db.keyring == nil {
		return errNoKeyring
	}
	var id int64
	err := db.write(ctx, "create model", func(tx *sql.Tx) error {
		args, err := db.modelArgs(m)
		if err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		err = tx.QueryRowContext(ctx, db.rebind("INSERT INTO models (origin, "+strings.Join(modelColumns, ", ")+
			", created_ms, updated_ms) VALUES (?, "+placeholders(len(modelColumns))+", ?, ?) RETURNING id"),
			append(append([]any{keygate.OriginAPI}, args...), now, now)...).Scan(&id)
		if err != nil {
			return err
		}
		return db.putModelKeys(ctx, tx, id, m.APIKeys)
	})
	if err != nil {
		return err
	}
	m.ID, m.Origin = id, keygate.OriginAPI
	return nil
}

// UpdateModel replaces the fields and keys of model m.ID; its origin stays.
func (db *DB) UpdateModel(ctx context.Context, m *keygate.Model) error {
	if db.keyring == nil {
		return errNoKeyring
	}
	return db.write(ctx, "update model", func(tx *sql.Tx) error {
		args, err := db.modelArgs(m)
		if err != nil {
			return err
		}
		set := strings.Join(modelColumns, " = ?, ") + " = ?, updated_ms = ?"
		err = execOne(ctx, tx, keygate.Errorf(keygate.ENotFound, "no model with id %d", m.ID),
			db.rebind("UPDATE models SET "+set+" WHERE id = ?"), append(args, time.Now().UnixMilli(), m.ID)...)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.rebind("DELETE FROM model_keys WHERE model_ref = ?"), m.ID); err != nil {
			return err
		}
		if err := db.putModelKeys(ctx, tx, m.ID, m.APIKeys); err != nil {
			return err
		}
		return db.deleteOrphanKeys(ctx, tx)
	})
}

// DeleteModel removes model id and the keys no other model uses.
func (db *DB) DeleteModel(ctx context.Context, id int64) error {
	return db.write(ctx, "delete model", func(tx *sql.Tx) error {
		err := execOne(ctx, tx, keygate.Errorf(keygate.ENotFound, "no model with id %d", id),
			db.rebind("DELETE FROM models WHERE id = ?"), id)
		if err != nil {
			return err
		}
		return db.deleteOrphanKeys(ctx, tx)
	})
}

// SyncConfigModels upserts the models declared in the config file and
// removes the config models it no longer declares. A key the file declares
// enabled keeps the status an operator gave it; one it declares disabled is
// disabled. It sets each model's ID and Origin.
func (db *DB) SyncConfigModels(ctx context.Context, models []keygate.Model) error {
	if db.keyring == nil {
		return errNoKeyring
	}
	return db.write(ctx, "sync config models", func(tx *sql.Tx) error {
		cols := strings.Join(modelColumns, ", ")
		var update []string
		for _, c := range modelColumns {
			update = append(update, c+" = excluded."+c)
		}
		upsert := db.rebind("INSERT INTO models (origin, config_key, " + cols + ", created_ms, updated_ms) VALUES (?, ?, " +
			placeholders(len(modelColumns)) + ", ?, ?) ON CONFLICT (config_key) WHERE config_key <> '' DO UPDATE SET " +
			strings.Join(update, ", ") + ", origin = excluded.origin, updated_ms = excluded.updated_ms RETURNING id")
		place := map[string]int{}
		var keep []any
		now := time.Now().UnixMilli()
		for i := range models {
			m := &models[i]
			configKey := fmt.Sprintf("%s#%d", m.ModelID, place[m.ModelID])
			place[m.ModelID]++
			keep = append(keep, configKey)
			args, err := db.modelArgs(m)
			if err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, upsert, append(append([]any{keygate.OriginConfig, configKey}, args...), now, now)...).Scan(&m.ID); err != nil {
				return fmt.Errorf("model %s: %w", m.ModelID, err)
			}
			m.Origin = keygate.OriginConfig
			if _, err := tx.ExecContext(ctx, db.rebind("DELETE FROM model_keys WHERE model_ref = ?"), m.ID); err != nil {
				return err
			}
			specs := make([]keygate.KeySpec, len(m.APIKeys))
			for j, k := range m.APIKeys {
				specs[j] = k
				if k.Status != keygate.StatusDisabled {
					specs[j].Status = "" // the stored status stands
				}
			}
			if err := db.putModelKeys(ctx, tx, m.ID, specs); err != nil {
				return fmt.Errorf("model %s: %w", m.ModelID, err)
			}
		}
		q := "DELETE FROM models WHERE origin = 'config'"
		if len(keep) > 0 {
			q += " AND config_key NOT IN (" + placeholders(len(keep)) + ")"
		}
		if _, err := tx.ExecContext(ctx, db.rebind(q), keep...); err != nil {
			return err
		}
		return db.deleteOrphanKeys(ctx, tx)
	})
}

var keyColumns = []string{"id", "secret", "masked", "status", "weight", "rpm", "tpm", "created_ms", "updated_ms"}

// keyRow seals the key with id for provider_keys; an empty status becomes enabled.
func (db *DB) keyRow(id, secret, status string, weight, rpm, tpm int, now int64) ([]any, error) {
	sealed, err := db.keyring.sealer.Seal([]byte(secret), keyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", id, err)
	}
	if status == "" {
		status = keygate.StatusEnabled
	}
	return []any{id, sealed, keygate.Mask(secret), status, weight, rpm, tpm, now, now}, nil
}

// putModelKeys stores specs and links them to model ref in their order. A
// spec with a status sets it; one without leaves a stored key's status.
func (db *DB) putModelKeys(ctx context.Context, tx *sql.Tx, ref int64, specs []keygate.KeySpec) error {
	now := time.Now().UnixMilli()
	var setStatus, keepStatus, links [][]any
	seen := map[string]bool{}
	for i, s := range specs {
		id := db.keyring.hasher.ID(s.Key)
		if seen[id] {
			continue // one statement must not upsert a row twice
		}
		seen[id] = true
		row, err := db.keyRow(id, s.Key, s.Status, s.Weight, s.RPM, s.TPM, now)
		if err != nil {
			return err
		}
		if s.Status != "" {
			setStatus = append(setStatus, row)
		} else {
			keepStatus = append(keepStatus, row)
		}
		links = append(links, []any{ref, id, i})
	}
	const weight = "weight = excluded.weight, rpm = excluded.rpm, tpm = excluded.tpm, updated_ms = excluded.updated_ms"
	if err := db.insertRows(ctx, tx, "provider_keys", keyColumns,
		"ON CONFLICT (id) DO UPDATE SET status = excluded.status, "+weight, setStatus); err != nil {
		return err
	}
	if err := db.insertRows(ctx, tx, "provider_keys", keyColumns, "ON CONFLICT (id) DO UPDATE SET "+weight, keepStatus); err != nil {
		return err
	}
	return db.insertRows(ctx, tx, "model_keys", []string{"model_ref", "key_id", "position"}, "ON CONFLICT DO NOTHING", links)
}

// deleteOrphanKeys removes keys no model uses any more: an encrypted secret
// is kept only as long as something may call with it.
func (db *DB) deleteOrphanKeys(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM provider_keys
		WHERE NOT EXISTS (SELECT 1 FROM model_keys mk WHERE mk.key_id = provider_keys.id)`)
	return err
}

// AddModelKeys appends keys to model id, after the keys it has.
func (db *DB) AddModelKeys(ctx context.Context, id int64, keys []string) (keygate.AddedKeys, error) {
	out := keygate.AddedKeys{Added: []keygate.KeyRef{}, Duplicates: []keygate.KeyRef{}}
	if db.keyring == nil {
		return out, errNoKeyring
	}
	err := db.write(ctx, "add keys", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.rebind("SELECT COUNT(*) FROM models WHERE id = ?"), id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return keygate.Errorf(keygate.ENotFound, "no model with id %d", id)
		}
		have := map[string]bool{}
		rows, err := tx.QueryContext(ctx, db.rebind("SELECT key_id FROM model_keys WHERE model_ref = ?"), id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			have[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var next int
		if err := tx.QueryRowContext(ctx, db.rebind("SELECT COALESCE(MAX(position) + 1, 0) FROM model_keys WHERE model_ref = ?"), id).Scan(&next); err != nil {
			return err
		}

		now := time.Now().UnixMilli()
		var keyRows, links [][]any
		for _, secret := range keys {
			ref := keygate.KeyRef{ID: db.keyring.hasher.ID(secret), Masked: keygate.Mask(secret)}
			if have[ref.ID] {
				out.Duplicates = append(out.Duplicates, ref)
				continue
			}
			have[ref.ID] = true
			row, err := db.keyRow(ref.ID, secret, "", 0, 0, 0, now)
			if err != nil {
				return err
			}
			keyRows = append(keyRows, row)
			links = append(links, []any{id, ref.ID, next})
			next++
			out.Added = append(out.Added, ref)
		}
		if err := db.insertRows(ctx, tx, "provider_keys", keyColumns, "ON CONFLICT (id) DO NOTHING", keyRows); err != nil {
			return err
		}
		return db.insertRows(ctx, tx, "model_keys", []string{"model_ref", "key_id", "position"}, "ON CONFLICT DO NOTHING", links)
	})
	return out, err
}

// SetKeyStatus sets a stored key enabled or disabled, for every model.
func (db *DB) SetKeyStatus(ctx context.Context, id, status string) (keygate.KeyRef, error) {
	ref := keygate.KeyRef{ID: id, Status: status}
	err := db.write(ctx, "set key status", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.rebind("UPDATE provider_keys SET status = ?, updated_ms = ? WHERE id = ? RETURNING masked"),
			status, time.Now().UnixMilli(), id).Scan(&ref.Masked)
		if errors.Is(err, sql.ErrNoRows) {
			return keygate.Errorf(keygate.ENotFound, "no stored key with id %q", id)
		}
		return err
	})
	return ref, err
}

// DeleteKey removes a stored key from every model.
func (db *DB) DeleteKey(ctx context.Context, id string) error {
	return db.write(ctx, "delete key", func(tx *sql.Tx) error {
		return execOne(ctx, tx, keygate.Errorf(keygate.ENotFound, "no stored key with id %q", id),
			db.rebind("DELETE FROM provider_keys WHERE id = ?"), id)
	})
}
