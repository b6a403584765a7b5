package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/secret"
)

// TestModelsKeysUsers runs the model, key, user and setting tests on
// SQLite, and on PostgreSQL when KEYGATE_TEST_POSTGRES_URL is set (see
// TestPostgres).
func TestModelsKeysUsers(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		runModelSuite(t, func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "keygate.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		admin := os.Getenv("KEYGATE_TEST_POSTGRES_URL")
		if admin == "" {
			t.Skip("KEYGATE_TEST_POSTGRES_URL not set; source scripts/pg-test.sh first")
		}
		runModelSuite(t, func(t *testing.T) string { return newPostgresDatabase(t, admin) })
	})
}

func testKeyring(t *testing.T, fill byte) (*secret.Keyring, keygate.KeyHasher) {
	t.Helper()
	kr, err := secret.NewKeyring(bytes.Repeat([]byte{fill}, secret.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return kr, keygate.NewKeyHasher(kr.Derive(secret.LabelKeyID))
}

func fullModel() keygate.Model {
	temp := 0.3
	return keygate.Model{
		Name: "GPT-4 Turbo", ModelID: "gpt-4-turbo", Provider: "openai", Type: "生文", Description: "best",
		Status: "enabled", BaseURL: "https://api.openai.com/v1", AuthType: "api_key", KeyUsageMode: "weighted",
		APIKeys: []keygate.KeySpec{{Key: "sk-first-key-0000000001", Status: "enabled", Weight: 3, RPM: 500, TPM: 90000},
			{Key: "sk-second-key-000000002", Status: "disabled", Weight: 1}},
		KeySource: &keygate.KeySource{URL: "http://127.0.0.1:4532/getApikey", SceneCode: "P2025122", Method: "GET",
			ResultField: "result", Headers: map[string]string{"X-Token": "ks-header-secret-0000001"},
			ExpireSeconds: 600, RefreshBeforeSeconds: 120, TimeoutSeconds: 10, Retries: 3, RetryIntervalMS: 1000},
		UpstreamModel: "gpt-4-turbo-2024-04-09", Fallbacks: []string{"gpt-4o", "gpt-4o-mini"},
		SupportsVision: true, MaxTokens: 4096, ContextWindow: 128000, InputPrice: 10, OutputPrice: 30,
		RPM: 600, TPM: 200000, Temperature: &temp, APIVersion: "2024-10-21",
		Hedge: &keygate.Hedge{AfterMS: 0, MaxExtraPercent: 5},
	}
}

func runModelSuite(t *testing.T, newURL func(t *testing.T) string) {
	open := func(t *testing.T, url string) *DB {
		t.Helper()
		db, err := Open(context.Background(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		db.UseKeyring(testKeyring(t, 7))
		return db
	}
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(t *testing.T, db *DB, table string) int {
		t.Helper()
		var n int
		must(t, db.w.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n))
		return n
	}
	secretsOf := func(m *keygate.Model) []string {
		var out []string
		for _, k := range m.APIKeys {
			out = append(out, k.Key)
		}
		return out
	}

	t.Run("CreateFindList", func(t *testing.T) {
		db := open(t, newURL(t))
		m := fullModel()
		must(t, db.CreateModel(ctx, &m))
		if m.ID == 0 || m.Origin != keygate.OriginAPI {
			t.Fatalf("CreateModel must set ID and Origin: %d %q", m.ID, m.Origin)
		}
		got, err := db.FindModel(ctx, m.ID)
		must(t, err)
		if !reflect.DeepEqual(*got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", *got, m)
		}
		other := keygate.Model{ModelID: "claude", Provider: "anthropic", Type: "chat", Status: "disabled", BaseURL: "https://x/v1"}
		must(t, db.CreateModel(ctx, &other))

		for _, tt := range []struct {
			f    keygate.ModelFilter
			want []int64
		}{
			{keygate.ModelFilter{}, []int64{m.ID, other.ID}},
			{keygate.ModelFilter{Provider: "anthropic"}, []int64{other.ID}},
			{keygate.ModelFilter{Type: "生文"}, []int64{m.ID}},
			{keygate.ModelFilter{Status: "enabled", Provider: "openai"}, []int64{m.ID}},
			{keygate.ModelFilter{Status: "inactive"}, nil},
		} {
			list, err := db.ListModels(ctx, tt.f)
			must(t, err)
			var ids []int64
			for _, x := range list {
				ids = append(ids, x.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("filter %+v: ids %v, want %v", tt.f, ids, tt.want)
			}
			if len(list) > 0 && list[0].ID == m.ID && len(list[0].APIKeys) != 2 {
				t.Errorf("filter %+v: keys not loaded", tt.f)
			}
			// The masked list is the same list, its keys named by the id
			// and mask derived from the secret, in the model's key order.
			masked, err := db.ListModelsMasked(ctx, tt.f)
			must(t, err)
			want := make([]keygate.MaskedModel, len(list))
			for i, x := range list {
				for _, k := range x.APIKeys {
					want[i].Keys = append(want[i].Keys, keygate.KeyRef{ID: db.keyring.hasher.ID(k.Key), Masked: keygate.Mask(k.Key), Status: k.Status})
				}
				x.APIKeys = nil
				want[i].Model = x
			}
			if !reflect.DeepEqual(masked, want) {
				t.Errorf("filter %+v: masked list\n got %+v\nwant %+v", tt.f, masked, want)
			}
		}
		if _, err := db.FindModel(ctx, 9999); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("FindModel(9999): %v, want not_found", err)
		}
	})

	t.Run("DashboardSessions", func(t *testing.T) {
		db := open(t, newURL(t))
		at := time.UnixMilli(time.Now().UnixMilli()).Add(time.Hour)
		s := keygate.DashboardSession{ID: strings.Repeat("ab", 32), Credential: "kg-admin-secret-in-session", Who: "admin token", Expires: at}
		must(t, db.CreateSession(ctx, s))
		old := keygate.DashboardSession{ID: strings.Repeat("cd", 32), Credential: "x", Who: "root", Expires: at.Add(-2 * time.Hour)}
		must(t, db.CreateSession(ctx, old))
		got, err := db.FindSession(ctx, s.ID)
		must(t, err)
		if got.Credential != s.Credential || got.Who != s.Who || !got.Expires.Equal(s.Expires) {
			t.Fatalf("FindSession: %+v, want %+v", *got, s)
		}
		var sealed []byte
		must(t, db.w.QueryRowContext(ctx, db.rebind("SELECT credential FROM dashboard_sessions WHERE id = ?"), s.ID).Scan(&sealed))
		if bytes.Contains(sealed, []byte(s.Credential)) {
			t.Fatal("the session's credential is stored in clear")
		}
		must(t, db.DeleteExpiredSessions(ctx, at.Add(-time.Hour)))
		if _, err := db.FindSession(ctx, old.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Fatalf("an expired session after the sweep: %v, want not_found", err)
		}
		must(t, db.DeleteSession(ctx, s.ID))
		if _, err := db.FindSession(ctx, s.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Fatalf("a deleted session: %v, want not_found", err)
		}
	})

	t.Run("SharedKeyIsOneRow", func(t *testing.T) {
		db := open(t, newURL(t))
		shared := "sk-shared-key-00000000001"
		a := keygate.Model{ModelID: "a", BaseURL: "https://a/v1", APIKeys: []keygate.KeySpec{{Key: shared, Status: "enabled"}}}
		b := keygate.Model{ModelID: "b", BaseURL: "https://b/v1", APIKeys: []keygate.KeySpec{{Key: "sk-only-b-000000000001", Status: "enabled"}, {Key: shared, Status: "enabled"}}}
		must(t, db.CreateModel(ctx, &a))
		must(t, db.CreateModel(ctx, &b))
		if n := count(t, db, "provider_keys"); n != 2 {
			t.Fatalf("provider_keys has %d rows, want 2 (the shared key once)", n)
		}
		// Disabling the shared key disables it for both models.
		ref, err := db.SetKeyStatus(ctx, db.keyring.hasher.ID(shared), "disabled")
		must(t, err)
		if ref.Masked != keygate.Mask(shared) {
			t.Errorf("SetKeyStatus answered %+v", ref)
		}
		for _, id := range []int64{a.ID, b.ID} {
			m, err := db.FindModel(ctx, id)
			must(t, err)
			if k := m.APIKeys[len(m.APIKeys)-1]; k.Key != shared || k.Status != "disabled" {
				t.Errorf("model %s: shared key %+v, want disabled", m.ModelID, k)
			}
		}
		must(t, db.DeleteModel(ctx, a.ID))
		if n := count(t, db, "provider_keys"); n != 2 {
			t.Fatalf("after deleting a: %d keys, want 2 (b still uses the shared one)", n)
		}
		must(t, db.DeleteModel(ctx, b.ID))
		if n := count(t, db, "provider_keys"); n != 0 {
			t.Fatalf("after deleting both: %d keys left, want 0", n)
		}
		if err := db.DeleteModel(ctx, b.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("second delete: %v, want not_found", err)
		}
	})

	t.Run("UpdateReplacesFieldsAndKeys", func(t *testing.T) {
		db := open(t, newURL(t))
		m := fullModel()
		must(t, db.CreateModel(ctx, &m))
		m.Status, m.KeySource, m.Fallbacks, m.Temperature = "disabled", nil, nil, nil
		m.APIKeys = []keygate.KeySpec{{Key: "sk-third-key-000000003", Status: "enabled"}, {Key: "sk-first-key-0000000001", Status: "disabled", Weight: 5}}
		must(t, db.UpdateModel(ctx, &m))
		got, err := db.FindModel(ctx, m.ID)
		must(t, err)
		if !reflect.DeepEqual(*got, m) {
			t.Fatalf("after update:\n got %+v\nwant %+v", *got, m)
		}
		if n := count(t, db, "provider_keys"); n != 2 {
			t.Errorf("the dropped key must be deleted: %d keys, want 2", n)
		}
		missing := m
		missing.ID = 9999
		if err := db.UpdateModel(ctx, &missing); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("update of a missing model: %v", err)
		}
	})

	t.Run("AddModelKeys", func(t *testing.T) {
		db := open(t, newURL(t))
		a := keygate.Model{ModelID: "a", BaseURL: "https://a/v1", APIKeys: []keygate.KeySpec{{Key: "sk-existing-0000000001", Status: "enabled"}}}
		b := keygate.Model{ModelID: "b", BaseURL: "https://b/v1", APIKeys: []keygate.KeySpec{{Key: "sk-from-b-000000000001", Status: "disabled"}}}
		must(t, db.CreateModel(ctx, &a))
		must(t, db.CreateModel(ctx, &b))
		res, err := db.AddModelKeys(ctx, a.ID, []string{"sk-new-key-00000000001", "sk-existing-0000000001", "sk-from-b-000000000001", "sk-new-key-00000000001"})
		must(t, err)
		if len(res.Added) != 2 || len(res.Duplicates) != 2 {
			t.Fatalf("want 2 added and 2 duplicates, got %+v", res)
		}
		if res.Duplicates[0].Masked != keygate.Mask("sk-existing-0000000001") || res.Added[0].ID != db.keyring.hasher.ID("sk-new-key-00000000001") {
			t.Errorf("refs: %+v", res)
		}
		got, err := db.FindModel(ctx, a.ID)
		must(t, err)
		want := []keygate.KeySpec{{Key: "sk-existing-0000000001", Status: "enabled"}, {Key: "sk-new-key-00000000001", Status: "enabled"},
			{Key: "sk-from-b-000000000001", Status: "disabled"}} // shared with b: its status stays
		if !reflect.DeepEqual(got.APIKeys, want) {
			t.Errorf("keys after add, in order:\n got %+v\nwant %+v", got.APIKeys, want)
		}
		if _, err := db.AddModelKeys(ctx, 9999, []string{"sk-x-0000000000000001"}); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("add to a missing model: %v", err)
		}

		// Many keys in one call: more than one INSERT statement carries.
		many := make([]string, 2*insertChunkRows+3)
		for i := range many {
			many[i] = fmt.Sprintf("sk-bulk-%016d", i)
		}
		res, err = db.AddModelKeys(ctx, b.ID, many)
		must(t, err)
		if len(res.Added) != len(many) || len(res.Duplicates) != 0 {
			t.Fatalf("bulk add: %d added, %d duplicates", len(res.Added), len(res.Duplicates))
		}
		got, err = db.FindModel(ctx, b.ID)
		must(t, err)
		if len(got.APIKeys) != len(many)+1 || got.APIKeys[len(many)].Key != many[len(many)-1] {
			t.Errorf("bulk add: model has %d keys", len(got.APIKeys))
		}
	})

	t.Run("SetKeyStatusAndDeleteKey", func(t *testing.T) {
		db := open(t, newURL(t))
		m := fullModel()
		must(t, db.CreateModel(ctx, &m))
		id := db.keyring.hasher.ID(m.APIKeys[0].Key)
		if _, err := db.SetKeyStatus(ctx, "k_nope", "disabled"); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("SetKeyStatus of a missing key: %v", err)
		}
		must(t, db.DeleteKey(ctx, id))
		got, err := db.FindModel(ctx, m.ID)
		must(t, err)
		if len(got.APIKeys) != 1 || got.APIKeys[0].Key != m.APIKeys[1].Key {
			t.Errorf("after DeleteKey: %+v", got.APIKeys)
		}
		if err := db.DeleteKey(ctx, id); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("second DeleteKey: %v", err)
		}
	})

	t.Run("SyncConfigModels", func(t *testing.T) {
		db := open(t, newURL(t))
		api := keygate.Model{ModelID: "gpt-4o", BaseURL: "https://api/v1"}
		must(t, db.CreateModel(ctx, &api))
		declared := func() []keygate.Model {
			return []keygate.Model{
				{ModelID: "gpt-4o", BaseURL: "https://one/v1", APIKeys: []keygate.KeySpec{{Key: "sk-config-one-00000001", Status: "enabled"}}},
				{ModelID: "gpt-4o", BaseURL: "https://two/v1", APIKeys: []keygate.KeySpec{{Key: "sk-config-two-00000002", Status: "enabled"}}},
				{ModelID: "embed", BaseURL: "https://one/v1", APIKeys: []keygate.KeySpec{{Key: "sk-config-one-00000001", Status: "enabled"}}},
			}
		}
		first := declared()
		must(t, db.SyncConfigModels(ctx, first))
		// An operator disables a key; the next start must not undo it.
		_, err := db.SetKeyStatus(ctx, db.keyring.hasher.ID("sk-config-one-00000001"), "disabled")
		must(t, err)
		again := declared()
		again[1].BaseURL = "https://two-moved/v1"
		again[2].APIKeys[0].Status = "disabled"
		must(t, db.SyncConfigModels(ctx, again))
		for i := range again {
			if again[i].ID != first[i].ID || again[i].Origin != keygate.OriginConfig {
				t.Errorf("model %d: id %d → %d (origin %q): a config model must be found again", i, first[i].ID, again[i].ID, again[i].Origin)
			}
		}
		got, err := db.FindModel(ctx, again[1].ID)
		must(t, err)
		if got.BaseURL != "https://two-moved/v1" {
			t.Errorf("the file's change must be applied: %s", got.BaseURL)
		}
		got, err = db.FindModel(ctx, again[0].ID)
		must(t, err)
		if got.APIKeys[0].Status != "disabled" {
			t.Errorf("the operator's disable must survive a restart: %+v", got.APIKeys)
		}
		// The file drops a model: it goes; the API model stays.
		must(t, db.SyncConfigModels(ctx, declared()[:1]))
		all, err := db.ListModels(ctx, keygate.ModelFilter{})
		must(t, err)
		if len(all) != 2 || all[0].ID != api.ID || all[0].Origin != keygate.OriginAPI || all[1].ID != first[0].ID {
			t.Fatalf("after dropping two config models: %+v", all)
		}
		if n := count(t, db, "provider_keys"); n != 1 {
			t.Errorf("keys of dropped config models must go: %d left", n)
		}
	})

	t.Run("Users", func(t *testing.T) {
		db := open(t, newURL(t))
		u := keygate.User{Username: "alice", PasswordHash: "$2a$hash", Role: keygate.RoleAdmin,
			UserLimits: keygate.UserLimits{Models: []string{"gpt-4o"}, RPM: 60, Budget: &keygate.Budget{Amount: 5, Period: "daily"}}}
		must(t, db.CreateUser(ctx, &u))
		if u.ID == 0 || u.CreatedAt.IsZero() {
			t.Fatalf("CreateUser must set ID and CreatedAt: %+v", u)
		}
		dup := keygate.User{Username: "alice", PasswordHash: "x", Role: keygate.RoleUser}
		if err := db.CreateUser(ctx, &dup); keygate.ErrorCode(err) != keygate.EConflict {
			t.Fatalf("duplicate username: %v, want conflict", err)
		}
		bob := keygate.User{Username: "bob", PasswordHash: "y", Role: keygate.RoleUser}
		must(t, db.CreateUser(ctx, &bob))
		list, err := db.ListUsers(ctx)
		must(t, err)
		if len(list) != 2 || !reflect.DeepEqual(list[0], u) || list[1].Username != "bob" {
			t.Fatalf("ListUsers: %+v", list)
		}
		byName, err := db.FindUserByName(ctx, "alice")
		must(t, err)
		byID, err := db.FindUser(ctx, u.ID)
		must(t, err)
		if !reflect.DeepEqual(*byName, u) || !reflect.DeepEqual(*byID, u) {
			t.Fatalf("find: %+v %+v, want %+v", byName, byID, u)
		}
		must(t, db.DeleteUser(ctx, u.ID))
		if _, err := db.FindUser(ctx, u.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("find deleted: %v", err)
		}
		if _, err := db.FindUserByName(ctx, "alice"); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("find deleted by name: %v", err)
		}
		if err := db.DeleteUser(ctx, u.ID); keygate.ErrorCode(err) != keygate.ENotFound {
			t.Errorf("delete twice: %v", err)
		}
	})

	t.Run("Settings", func(t *testing.T) {
		db := open(t, newURL(t))
		if _, found, err := db.Setting(ctx, "jwt"); found || err != nil {
			t.Fatalf("unset: found=%v err=%v", found, err)
		}
		v, err := db.InitSetting(ctx, "jwt", []byte{1, 2, 3})
		must(t, err)
		v2, err := db.InitSetting(ctx, "jwt", []byte{9})
		must(t, err)
		got, found, err := db.Setting(ctx, "jwt")
		must(t, err)
		if !bytes.Equal(v, []byte{1, 2, 3}) || !bytes.Equal(v2, v) || !found || !bytes.Equal(got, v) {
			t.Fatalf("the first value must stay: %v %v %v", v, v2, got)
		}
	})

	t.Run("NoClearKeyInDatabase", func(t *testing.T) {
		url := newURL(t)
		db := open(t, url)
		m := fullModel()
		must(t, db.CreateModel(ctx, &m))
		_, err := db.AddModelKeys(ctx, m.ID, []string{"sk-added-later-000000009"})
		must(t, err)
		plain := append(secretsOf(&m), "sk-added-later-000000009", m.KeySource.Headers["X-Token"])
		for table, content := range dumpTables(t, db) {
			for _, s := range plain {
				if bytes.Contains(content, []byte(s)) {
					t.Errorf("table %s holds %s in clear", table, keygate.Mask(s))
				}
			}
		}
		if path, ok := strings.CutPrefix(url, "sqlite://"); ok {
			// The raw files too: the database, its WAL and anything beside it.
			db.Close()
			files, _ := filepath.Glob(path + "*")
			for _, f := range files {
				b, err := os.ReadFile(f)
				must(t, err)
				for _, s := range plain {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("file %s holds %s in clear", filepath.Base(f), keygate.Mask(s))
					}
				}
			}
			if len(files) == 0 {
				t.Fatal("no database file found")
			}
		}
	})

	t.Run("WrongMasterKeyCannotRead", func(t *testing.T) {
		url := newURL(t)
		db := open(t, url)
		m := fullModel()
		must(t, db.CreateModel(ctx, &m))
		other := open(t, url)
		other.UseKeyring(testKeyring(t, 8))
		_, err := other.ListModels(ctx, keygate.ModelFilter{})
		if !errors.Is(err, secret.ErrOpen) {
			t.Fatalf("a store opened with another master key must fail to decrypt, got %v", err)
		}
		if strings.Contains(err.Error(), "sk-") {
			t.Fatalf("error shows a key: %v", err)
		}
	})
}

// dumpTables returns every row of every table, as the bytes the database
// hands back, per table.
func dumpTables(t *testing.T, db *DB) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Dialect() == DialectPostgres {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`
	}
	rows, err := db.w.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("found only tables %v", tables)
	}
	out := map[string][]byte{}
	for _, table := range tables {
		rows, err := db.w.QueryContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var buf bytes.Buffer
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				buf.Write(v)
				buf.WriteByte(0)
			}
		}
		rows.Close()
		out[table] = buf.Bytes()
	}
	return out
}
