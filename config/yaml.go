package config

import (
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keygate/keygate"
)

// varRef is a ${VAR} reference; a lone $ or $VAR is left alone.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// readYAML decodes the file at path over c. A missing file is an error only
// when the operator named it.
func (c *Config) readYAML(path string, explicit bool, get func(string) string) error {
	data, err := os.ReadFile(path)
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	c.Source = path
	// An unset variable stops the start (SPEC section 1): a misspelt
	// ${KEYGATE_ADMIN_TOKN} must not start a gateway with no admin token.
	var unset []string
	data = varRef.ReplaceAllFunc(data, func(ref []byte) []byte {
		name := string(ref[2 : len(ref)-1])
		v := get(name)
		if v == "" && !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return []byte(v)
	})
	if len(unset) > 0 {
		return fmt.Errorf("invalid config: %s: ${%s} is not set in the environment or .env", path, strings.Join(unset, "}, ${"))
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("invalid config: %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	var bad []string
	prepare(doc.Content[0], reflect.TypeFor[Config](), "", &bad)
	if len(bad) > 0 {
		return fmt.Errorf("invalid config: %s: %s", path, strings.Join(bad, "\n"))
	}
	if err := doc.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for i, e := range te.Errors {
				te.Errors[i] = quotedValue.ReplaceAllString(e, " into ")
			}
		}
		return fmt.Errorf("invalid config: %s: %w", path, err)
	}
	return nil
}

// quotedValue is the start of the offending value yaml.v3 quotes in a type
// error; it may be part of a key that was put in the wrong place.
var quotedValue = regexp.MustCompile("(?s) `.*` into ")

// fieldName is what a YAML field name looks like; anything else is shown
// masked, since an unknown "field" is sometimes a key with a stray colon.
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,24}$`)

var (
	keySpecType     = reflect.TypeFor[keygate.KeySpec]()
	timeType        = reflect.TypeFor[time.Time]()
	durationType    = reflect.TypeFor[time.Duration]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// prepare walks n against the Go type t before decoding, and reports in bad:
//   - mapping keys that t has no field for (yaml.v3's KnownFields cannot be
//     used: it does not apply to Node.Decode);
//   - values a field's UnmarshalText rejects, since yaml.v3 reports those
//     without saying where they are.
//
// It also rewrites an API key written as a plain string into the {key: …}
// mapping keygate.KeySpec decodes from. Aliases are not followed, so merged
// or aliased content is not checked.
func prepare(n *yaml.Node, t reflect.Type, path string, bad *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode && t == keySpecType && n.Tag != "!!null":
		key := *n
		*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "key", Line: n.Line, Column: n.Column},
			&key,
		}}
	case n.Kind == yaml.ScalarNode && n.Tag != "!!null" && t != timeType && reflect.PointerTo(t).Implements(textUnmarshaler):
		// time.Time is left out: yaml.v3 decodes timestamps itself, in more forms than UnmarshalText takes.
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			*bad = append(*bad, fmt.Sprintf("line %d: %s: %v", n.Line, path, err))
		}
	case n.Kind == yaml.ScalarNode && n.Tag == "!!float" && isWholeKind(t):
		// yaml.v3 silently drops the fraction of a float decoded into an
		// int (rpm: 1.5 would mean 1): refuse it, naming the field.
		if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != math.Trunc(f) {
			*bad = append(*bad, fmt.Sprintf("line %d: %s: %s is not a whole number", n.Line, path, n.Value))
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			prepare(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), bad)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				name := k.Value
				if !fieldName.MatchString(name) {
					name = keygate.Mask(name)
				}
				*bad = append(*bad, fmt.Sprintf("line %d: %s: unknown field", k.Line, join(path, name)))
				continue
			}
			prepare(n.Content[i+1], ft, join(path, k.Value), bad)
		}
	}
}

// isWholeKind reports whether t holds whole numbers (durations are left to
// their own decoding).
func isWholeKind(t reflect.Type) bool {
	if t == durationType {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// yamlFields maps the YAML keys of struct type t to their field types, the
// way yaml.v3 names them.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func join(path, field string) string {
	if path == "" || field == "" {
		return path + field
	}
	return path + "." + field
}
