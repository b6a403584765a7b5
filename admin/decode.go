package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
)

// Body limits: a model is small; a bulk import of keys is not.
const (
	maxBody     = 1 << 20
	maxKeysBody = 32 << 20
)

// decode reads the request body, one JSON value, into v. Unknown fields
// are refused; every error names the field at fault and never repeats a
// value that was sent.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return keygate.Errorf(keygate.EInvalidRequest, "body: want one JSON object, found more after it")
	}
	return nil
}

// decodeBytes is decode over a body already read.
func decodeBytes(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return keygate.Errorf(keygate.EInvalidRequest, "body: empty; want a JSON object")
	case errors.As(err, &mbe):
		return keygate.Errorf(keygate.ERequestTooLarge, "body: larger than %d bytes", mbe.Limit)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return keygate.Errorf(keygate.EInvalidRequest, "%s: want %s, got %s", field, kind(te.Type), firstWord(te.Value))
	case errors.As(err, &se):
		return keygate.Errorf(keygate.EInvalidRequest, "body: not valid JSON (at byte %d)", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if !fieldName.MatchString(name) {
			name = keygate.Mask(name)
		}
		return keygate.Errorf(keygate.EInvalidRequest, "%s: unknown field", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keygate.Errorf(keygate.EInvalidRequest, "body: JSON ends too early")
	}
	return keygate.Errorf(keygate.EInvalidRequest, "body: not valid JSON")
}

// kind names what a Go type takes in JSON.
func kind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// firstWord keeps the JSON kind of a value ("number" of "number -1.5").
func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// fieldName is what a field name looks like; anything else is shown
// masked, since an unknown "field" may be a key sent in the wrong place.
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// invalid is the 400 answer listing every problem.
func invalid(what string, problems []string) error {
	return keygate.Errorf(keygate.EInvalidRequest, "invalid %s: %s", what, strings.Join(problems, "; "))
}
