package server

import (
	"github.com/keygate/keygate"
	"net/http"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/provider"
)

// addRoutes is the whole API surface of keygate.
func addRoutes(mux *http.ServeMux, d Deps) {
	chat := traced(d, provider.DialectChat, "", handleRelay(d, provider.DialectChat, "chat/completions", "messages"))
	mux.Handle("POST /v1/chat/completions", chat)
	mux.Handle("POST /api/v1/llm/chat", chat)
	mux.Handle("POST /v1/embeddings", traced(d, provider.DialectEmbeddings, "", handleRelay(d, provider.DialectEmbeddings, "embeddings", "input")))
	mux.Handle("POST /v1/responses", traced(d, provider.DialectResponses, "", handleRelay(d, provider.DialectResponses, "responses", "input")))
	mux.Handle("POST /v1/messages", traced(d, provider.DialectMessages, "", handleMessages(d)))
	mux.Handle("POST /v1/messages/count_tokens", handleCountTokens(d))
	mux.Handle("POST /v1/completions", traced(d, provider.DialectCompletions, "", handleRelay(d, provider.DialectCompletions, "completions", "prompt")))
	for path, required := range map[string]string{"moderations": "input", "images/generations": "prompt",
		"audio/speech": "input", "rerank": "query"} {
		mux.Handle("POST /v1/"+path, traced(d, provider.DialectOther, path, handleRelay(d, provider.DialectOther, path, required)))
	}
	for _, path := range []string{"audio/transcriptions", "audio/translations", "images/edits", "images/variations"} {
		mux.Handle("POST /v1/"+path, traced(d, provider.DialectOther, path, handleMultipart(d, path)))
	}

	models := handleModels(d)
	mux.Handle("GET /v1/models", handleModelsAnthropic(d, models))
	mux.Handle("GET /api/v1/llm/models", models)
	mux.Handle("GET /v1/models/{id}", handleModel(d))

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d))
	if d.Metrics != nil {
		mux.Handle("GET /metrics", requireAdmin(d, d.Metrics))
	}

	ad := d.Admin
	ad.Logger, ad.Clock, ad.Pool = d.Logger, d.Clock, d.Pool
	mux.Handle("GET /api/v1/keys", requireAdmin(d, admin.HandleListKeys(ad)))
	mux.Handle("GET /api/v1/keys/{id}", requireAdmin(d, admin.HandleGetKey(ad)))
	mux.Handle("PATCH /api/v1/keys/{id}", requireAdmin(d, admin.HandlePatchKey(ad)))
	mux.Handle("POST /api/v1/keys/{id}/reset", requireAdmin(d, admin.HandleResetKey(ad)))
	mux.Handle("POST /api/v1/keys/reset", requireAdmin(d, admin.HandleResetKeys(ad)))
	mux.Handle("POST /api/v1/keys/check", requireAdmin(d, admin.HandleCheckKeys(ad, d.Checker)))
	mux.Handle("POST /api/v1/keys/lookup", requireAdmin(d, admin.HandleLookupKey(ad)))
	mux.Handle("GET /api/v1/keys/summary", requireAdmin(d, admin.HandleKeySummary(ad)))
	mux.Handle("GET /api/v1/key-sources", requireAdmin(d, admin.HandleListKeySources(d.Pool, d.Clock)))

	td := admin.TokenDeps{Deps: ad, Tokens: d.Tokens, Hash: HashToken,
		Reload: func(r *http.Request) error { return d.ReloadTokens(r.Context()) },
		Spent: func(name string) (float64, bool) {
			if b := d.Auth.Budgets()[name]; b != nil {
				return b.Spent(d.Clock.Now()), true
			}
			return 0, false
		}}
	mux.Handle("POST /api/v1/tokens", requireAdmin(d, admin.HandleCreateToken(td)))
	mux.Handle("GET /api/v1/tokens", requireAdmin(d, admin.HandleListTokens(td)))
	mux.Handle("DELETE /api/v1/tokens/{id}", requireAdmin(d, admin.HandleDeleteToken(td)))

	mux.Handle("GET /api/v1/usage", requireAdmin(d, admin.HandleUsage(ad, d.Usage)))
	if d.AuditStore != nil {
		mux.Handle("GET /api/v1/audit", requireAdmin(d, handleAudit(d, d.AuditStore)))
	}
	if d.Audit != nil {
		ad.AuditLogin = func(r *http.Request, username, action string, status int) {
			actor := username
			if action == "login" {
				actor = "user:" + username
			}
			d.Audit.Record(keygate.AuditEntry{Time: d.Clock.Now().UTC(), Actor: actor, Action: action, Source: sourceAddr(r), Status: status})
		}
	}
	mux.Handle("GET /api/v1/llm/usage", handleOwnUsage(d))
	if d.UsageSeries != nil {
		mux.Handle("GET /api/v1/usage/series", requireAdmin(d, admin.HandleUsageSeries(ad, d.UsageSeries)))
	}

	if ad.Models != nil {
		mux.Handle("DELETE /api/v1/keys/{id}", requireAdmin(d, admin.HandleDeleteKey(ad)))
		mux.Handle("POST /api/v1/llm-models", requireAdmin(d, admin.HandleCreateModel(ad)))
		mux.Handle("GET /api/v1/llm-models", requireAdmin(d, admin.HandleListModels(ad)))
		mux.Handle("GET /api/v1/llm-models/{id}", requireAdmin(d, admin.HandleGetModel(ad)))
		mux.Handle("PUT /api/v1/llm-models/{id}", requireAdmin(d, admin.HandleUpdateModel(ad)))
		mux.Handle("DELETE /api/v1/llm-models/{id}", requireAdmin(d, admin.HandleDeleteModel(ad)))
		mux.Handle("POST /api/v1/llm-models/{id}/keys", requireAdmin(d, admin.HandleAddModelKeys(ad)))
	}
	if ad.Users != nil {
		mux.Handle("POST /api/v1/users", requireAdmin(d, admin.HandleCreateUser(ad)))
		mux.Handle("GET /api/v1/users", requireAdmin(d, admin.HandleListUsers(ad)))
		mux.Handle("DELETE /api/v1/users/{id}", requireAdmin(d, admin.HandleDeleteUser(ad)))
	}
	var login http.Handler
	if ad.Logins != nil {
		login = admin.HandleLogin(ad)
		mux.Handle("POST /api/v1/auth/login", login)
	}
	addDashboard(mux, d, login)

	mux.Handle("/", handleNotFound(mux))
}
