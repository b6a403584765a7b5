package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/dialect"
	"github.com/keygate/keygate/pool"
	"github.com/keygate/keygate/provider"
	"github.com/keygate/keygate/provider/bridge"
	"github.com/keygate/keygate/relay"
	"github.com/keygate/keygate/respond"
	"github.com/keygate/keygate/tokenizer"
	"github.com/tidwall/gjson"
)

// servesRoute reports whether some deployment of g has a provider that
// serves the caller's dialect.
func servesRoute(g *pool.Group, d provider.Dialect) bool {
	for _, dep := range g.Deployments {
		if provider.For(dep.Model.Provider).Serves(d) {
			return true
		}
	}
	return false
}

// translatable checks, once, a request that some deployment of g must
// translate: what cannot be translated is the caller's error (400), not a
// failed attempt on every key.
func translatable(g *pool.Group, req *provider.Request) error {
	for _, dep := range g.Deployments {
		if bridge.Translates(provider.For(dep.Model.Provider).Name(), req.Dialect) {
			if err := bridge.Check(req.Dialect, req.Body); err != nil {
				return keygate.Errorf(keygate.EInvalidRequest, "%s (model `%s` is served by %s)", err.Error(), req.Model, dep.Model.Provider)
			}
			return nil
		}
	}
	return nil
}

// handleMessages serves Anthropic's Messages API (the Anthropic SDK,
// Claude Code): the token as x-api-key or Bearer, every error in
// Anthropic's shape.
func handleMessages(d Deps) http.Handler {
	relay := handleRelay(d, provider.DialectMessages, "messages", "messages")
	return anthropicRoute(relay)
}

// anthropicRoute lets an Anthropic caller authenticate with x-api-key and
// answers its errors in Anthropic's shape.
func anthropicRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := r.Header.Get("X-Api-Key"); key != "" && r.Header.Get("Authorization") == "" {
			// Headers reach a provider by allowlist only: this one stays here.
			r.Header.Set("Authorization", "Bearer "+key)
		}
		aw := &anthropicErrors{ResponseWriter: w}
		next.ServeHTTP(aw, r)
		aw.finish()
	})
}

// anthropicErrors rewrites keygate's OpenAI-shaped errors into Anthropic's
// {"type":"error","error":{"type","message"}}, the code at the start of the
// message; an error already in Anthropic's shape (a provider's) passes.
type anthropicErrors struct {
	http.ResponseWriter
	status int
	buf    []byte
	held   bool
}

func (a *anthropicErrors) WriteHeader(status int) {
	if status >= 400 && a.status == 0 {
		a.status, a.held = status, true
		return
	}
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *anthropicErrors) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.held {
		a.buf = append(a.buf, b...)
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController flush a stream through.
func (a *anthropicErrors) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *anthropicErrors) finish() {
	if !a.held {
		return
	}
	body := a.buf
	if doc := gjson.ParseBytes(body); doc.Get("type").Str != "error" {
		e := doc.Get("error")
		msg, code := e.Get("message").Str, e.Get("code").Str
		if !e.IsObject() {
			msg = string(bytes.TrimSpace(body))
		}
		body = dialect.AppendError(nil, dialect.Messages, a.status, code, e.Get("type").Str, msg)
	}
	h := a.ResponseWriter.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	a.ResponseWriter.WriteHeader(a.status)
	a.ResponseWriter.Write(body)
}

// handleCountTokens answers POST /v1/messages/count_tokens: relayed to an
// anthropic deployment, else counted by keygate's tokenizer.
func handleCountTokens(d Deps) http.Handler {
	return anthropicRoute(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := d.Clock.Now()
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		body, err := readBody(w, r, d.MaxBodyBytes, d.RequestReadTimeout)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		doc := gjson.ParseBytes(body)
		model := doc.Get("model")
		switch {
		case !gjson.ValidBytes(body) || !doc.IsObject():
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "request body is not a JSON object"))
			return
		case model.Type != gjson.String || model.Str == "":
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "missing required field: model (a string)"))
			return
		case !doc.Get("messages").IsArray():
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "missing required field: messages"))
			return
		}
		g := d.Pool.Group(model.Str)
		if g != nil && caller.AllowsModel(model.Str) && allAnthropic(g) {
			relayTo(d, w, r, caller, start, 0, &relay.Call{Request: provider.Request{
				Dialect: provider.DialectMessages, Path: "messages/count_tokens", Body: body, Model: model.Str}})
			return
		}
		if g == nil {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotFound, "The model `%s` does not exist", model.Str))
			return
		}
		if !caller.AllowsModel(model.Str) {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EModelNotAllowed, "this token may not use model `%s`", model.Str))
			return
		}
		respond.JSON(w, http.StatusOK, map[string]int{"input_tokens": countMessagesTokens(doc)})
	}))
}

func allAnthropic(g *pool.Group) bool {
	for _, dep := range g.Deployments {
		if dep.Model.Provider != "anthropic" {
			return false
		}
	}
	return len(g.Deployments) > 0
}

// countMessagesTokens counts an Anthropic request's system, messages and
// tools with the offline tokenizer.
func countMessagesTokens(doc gjson.Result) int {
	var texts []string
	add := func(v gjson.Result) {
		if v.Type == gjson.String {
			texts = append(texts, v.Str)
			return
		}
		v.ForEach(func(_, blk gjson.Result) bool {
			switch blk.Get("type").Str {
			case "text":
				texts = append(texts, blk.Get("text").Str)
			case "tool_use":
				texts = append(texts, blk.Get("name").Str, blk.Get("input").Raw)
			case "tool_result":
				c := blk.Get("content")
				if c.IsArray() {
					c.ForEach(func(_, p gjson.Result) bool { texts = append(texts, p.Get("text").Str); return true })
				} else {
					texts = append(texts, c.Str)
				}
			}
			return true
		})
	}
	add(doc.Get("system"))
	doc.Get("messages").ForEach(func(_, m gjson.Result) bool { add(m.Get("content")); return true })
	n := tokenizer.CountMessages(texts)
	doc.Get("tools").ForEach(func(_, t gjson.Result) bool {
		n += tokenizer.Count(t.Get("name").Str + " " + t.Get("description").Str + " " + t.Get("input_schema").Raw)
		return true
	})
	return n
}

// handleMultipart relays an OpenAI upload route (audio transcriptions and
// translations, image edits and variations) whose model is a form field.
// The body goes to the provider byte for byte, boundary and all.
func handleMultipart(d Deps, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := d.Clock.Now()
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		ct := r.Header.Get("Content-Type")
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "this route takes a multipart/form-data upload"))
			return
		}
		body, err := readBody(w, r, d.MaxBodyBytes, d.RequestReadTimeout)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		model, err := formField(body, params["boundary"], "model")
		if err != nil || model == "" {
			respond.Error(w, d.Logger, keygate.Errorf(keygate.EInvalidRequest, "missing required form field: model"))
			return
		}
		relayTo(d, w, r, caller, start, 0, &relay.Call{Request: provider.Request{
			Dialect: provider.DialectOther, Path: path, Body: body, ContentType: ct, Model: model}})
	})
}

// formField reads one small field of a multipart body, skipping the parts
// before it (files are read through, not kept).
func formField(body []byte, boundary, name string) (string, error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if p.FormName() == name {
			v, err := io.ReadAll(io.LimitReader(p, 256))
			return string(v), err
		}
	}
}

// handleModelsAnthropic answers GET /v1/models in Anthropic's shape when
// the caller is an Anthropic client (it sends anthropic-version, and
// perhaps its token as x-api-key); everyone else gets OpenAI's list.
func handleModelsAnthropic(d Deps, openai http.Handler) http.Handler {
	list := anthropicRoute(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := d.Auth.Client(r)
		if err != nil {
			respond.Error(w, d.Logger, err)
			return
		}
		b := []byte(`{"data":[`)
		var first, last string
		for _, id := range d.Pool.ModelIDs() {
			if !caller.AllowsModel(id) {
				continue
			}
			if first == "" {
				first = id
			} else {
				b = append(b, ',')
			}
			last = id
			b = append(b, `{"type":"model","id":`...)
			b = dialect.AppendString(b, id)
			b = append(b, `,"display_name":`...)
			b = dialect.AppendString(b, id)
			b = append(b, `,"created_at":"1970-01-01T00:00:00Z"}`...)
		}
		b = append(b, `],"has_more":false,"first_id":`...)
		b = appendNullable(b, first)
		b = append(b, `,"last_id":`...)
		b = appendNullable(b, last)
		b = append(b, '}')
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Anthropic-Version") != "" {
			list.ServeHTTP(w, r)
			return
		}
		openai.ServeHTTP(w, r)
	})
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return dialect.AppendString(b, s)
}
