package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultURL is where the operator commands look for keygate without KEYGATE_URL.
const defaultURL = "http://127.0.0.1:8080"

// apiClient is the operator commands' way to a running keygate: its admin
// API at KEYGATE_URL with KEYGATE_ADMIN_TOKEN. get, post, patch and del
// decode the JSON answer into out (nil to drop it) and turn every failure
// into an error that says what to do about it.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(env Env) *apiClient {
	get := func(name string) string {
		v, _ := env.LookupEnv(name)
		return strings.TrimSpace(v)
	}
	return &apiClient{
		base:  strings.TrimRight(cmp.Or(get("KEYGATE_URL"), defaultURL), "/"),
		token: get("KEYGATE_ADMIN_TOKEN"),
		http:  &http.Client{Timeout: 2 * time.Minute},
	}
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *apiClient) post(ctx context.Context, path string, in, out any) error {
	return c.do(ctx, http.MethodPost, path, in, out)
}

func (c *apiClient) patch(ctx context.Context, path string, in, out any) error {
	return c.do(ctx, http.MethodPatch, path, in, out)
}

func (c *apiClient) del(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodDelete, path, nil, out)
}

// apiError is an answer of keygate that is not a success.
type apiError struct {
	Status  int
	Code    string // the error code keygate answered, e.g. not_found
	Message string // keygate's message
	text    string // what the operator reads
}

func (e *apiError) Error() string { return e.text }

func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("KEYGATE_URL %q is not a usable URL: %w", c.base, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach keygate at %s: %v (is it running? KEYGATE_URL says where it is)", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read the answer of keygate at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		return c.failure(method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("keygate at %s answered %s %s with something unexpected: %w", c.base, method, path, err)
	}
	return nil
}

func (c *apiClient) failure(method, path string, status int, body []byte) error {
	var answer struct {
		Error struct{ Message, Code string }
	}
	json.Unmarshal(body, &answer)
	e := &apiError{Status: status, Code: answer.Error.Code, Message: answer.Error.Message}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	switch {
	case status == http.StatusUnauthorized && c.token == "":
		e.text = fmt.Sprintf("keygate at %s wants an admin credential: set KEYGATE_ADMIN_TOKEN", c.base)
	case status == http.StatusUnauthorized:
		e.text = fmt.Sprintf("keygate at %s refused KEYGATE_ADMIN_TOKEN: %s", c.base, e.Message)
	case status == http.StatusForbidden:
		e.text = fmt.Sprintf("KEYGATE_ADMIN_TOKEN is not an admin credential: %s", e.Message)
	case status == http.StatusNotFound && strings.HasPrefix(e.Message, "no route"):
		e.text = fmt.Sprintf("keygate at %s has no %s %s: is it an older version, or is KEYGATE_URL wrong?", c.base, method, path)
	case status < 500:
		e.text = e.Message // keygate's messages name the fields at fault
	default:
		e.text = fmt.Sprintf("keygate at %s failed (%d): %s", c.base, status, e.Message)
	}
	return e
}
