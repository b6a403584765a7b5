// Package jsonx checks JSON without recursion: a body of eight million
// nested brackets must cost a 400 (or a failover), not the process's stack.
// The check is one pass over the bytes with an explicit stack bounded by a
// depth limit; it also refuses an object whose top level names a key twice,
// since keygate and the provider could otherwise read different values.
package jsonx

import (
	"encoding/json"
	"fmt"
)

// MaxDepth is the nesting keygate accepts: far more than any real request
// or answer uses, far less than what could hurt.
const MaxDepth = 128

// Error says what is wrong with a document, in words a caller can act on.
type Error struct {
	Offset int
	Msg    string
	// Refused is set for well-formed JSON keygate will not take: too
	// deeply nested, or a top-level key named twice.
	Refused bool
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset) }

// Valid reports whether b is one well-formed JSON value nested at most
// MaxDepth deep.
func Valid(b []byte) bool { return check(b, false, nil) == nil }

// ValidTop is Valid, and in the same pass it hands visit each member of a
// top-level object: its key as written (quotes and escapes included) and
// where its value is, b[start:end]. Members come as they are read, before
// the rest of the document is checked: act on them only if ValidTop
// returns true.
func ValidTop(b []byte, visit func(key []byte, start, end int)) bool {
	return check(b, false, visit) == nil
}

// CheckObject checks that b is a JSON object, well formed, nested at most
// MaxDepth deep, and without a top-level key named twice.
func CheckObject(b []byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return &Error{Offset: i, Msg: "the body must be a JSON object"}
	}
	return check(b, true, nil)
}

// check validates b; topKeys turns on the duplicate-key check of the
// top-level object; visit, if set, gets each member of a top-level object.
func check(b []byte, topKeys bool, visit func(key []byte, start, end int)) error {
	var stack [MaxDepth]byte // '{' or '['
	depth := 0
	var keys [][]byte
	var key []byte // the top-level member whose value is being read (visit)
	vstart := 0
	i := skipSpace(b, 0)
	if i >= len(b) {
		return &Error{Offset: i, Msg: "empty document"}
	}
	// expectValue: a value must come next. After a value, the container
	// decides: ',' or its closing bracket.
	for {
		// --- a value at i
		if i >= len(b) {
			return &Error{Offset: i, Msg: "unexpected end of JSON"}
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == MaxDepth {
				return &Error{Offset: i, Msg: fmt.Sprintf("JSON nested deeper than %d levels", MaxDepth), Refused: true}
			}
			stack[depth] = c
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				depth--
				i++
				goto after
			}
			if c == '{' {
				var k []byte
				var err error
				if i, k, err = readKey(b, i); err != nil {
					return err
				}
				if topKeys && depth == 1 {
					if err := addKey(&keys, k, i); err != nil {
						return err
					}
				}
				if depth == 1 {
					key, vstart = k, i
				}
			}
			continue
		case '"':
			j, err := skipString(b, i)
			if err != nil {
				return err
			}
			i = j
		case 't':
			if !hasLit(b, i, "true") {
				return &Error{Offset: i, Msg: "invalid literal"}
			}
			i += 4
		case 'f':
			if !hasLit(b, i, "false") {
				return &Error{Offset: i, Msg: "invalid literal"}
			}
			i += 5
		case 'n':
			if !hasLit(b, i, "null") {
				return &Error{Offset: i, Msg: "invalid literal"}
			}
			i += 4
		default:
			j, ok := skipNumber(b, i)
			if !ok {
				return &Error{Offset: i, Msg: "invalid character " + quoteByte(c)}
			}
			i = j
		}
	after:
		// --- after a value
		for {
			if visit != nil && depth == 1 && key != nil {
				visit(key, vstart, i)
				key = nil
			}
			i = skipSpace(b, i)
			if depth == 0 {
				if i != len(b) {
					return &Error{Offset: i, Msg: "unexpected data after the JSON value"}
				}
				return nil
			}
			if i >= len(b) {
				return &Error{Offset: i, Msg: "unexpected end of JSON"}
			}
			top := stack[depth-1]
			switch {
			case b[i] == ',':
				i = skipSpace(b, i+1)
				if top == '{' {
					var k []byte
					var err error
					if i, k, err = readKey(b, i); err != nil {
						return err
					}
					if topKeys && depth == 1 {
						if err := addKey(&keys, k, i); err != nil {
							return err
						}
					}
					if depth == 1 {
						key, vstart = k, i
					}
				}
			case b[i] == '}' && top == '{', b[i] == ']' && top == '[':
				depth--
				i++
				continue
			default:
				return &Error{Offset: i, Msg: "invalid character " + quoteByte(b[i]) + " after a value"}
			}
			break
		}
	}
}

// readKey reads `"key" :` at i and returns the index of the value after it.
func readKey(b []byte, i int) (int, []byte, error) {
	if i >= len(b) || b[i] != '"' {
		return i, nil, &Error{Offset: i, Msg: "expected a string key"}
	}
	j, err := skipString(b, i)
	if err != nil {
		return i, nil, err
	}
	key := b[i:j]
	j = skipSpace(b, j)
	if j >= len(b) || b[j] != ':' {
		return j, nil, &Error{Offset: j, Msg: "expected ':' after a key"}
	}
	return skipSpace(b, j+1), key, nil
}

// addKey records a top-level key, refusing one seen before. Keys are
// compared as the provider will read them: escapes decoded.
func addKey(keys *[][]byte, raw []byte, at int) error {
	key := raw[1 : len(raw)-1]
	for _, c := range key {
		if c == '\\' {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return &Error{Offset: at, Msg: "invalid string key"}
			}
			key = []byte(s)
			break
		}
	}
	for _, k := range *keys {
		if string(k) == string(key) {
			return &Error{Offset: at, Msg: fmt.Sprintf("duplicate key %q", key), Refused: true}
		}
	}
	*keys = append(*keys, key)
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at i.
func skipString(b []byte, i int) (int, error) {
	start := i
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, &Error{Offset: start, Msg: "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, &Error{Offset: i, Msg: "invalid \\u escape"}
				}
				i += 6
			default:
				return i, &Error{Offset: i, Msg: "invalid escape"}
			}
		case c < 0x20:
			return i, &Error{Offset: i, Msg: "control character in string"}
		default:
			i++
		}
	}
	return i, &Error{Offset: start, Msg: "unterminated string"}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func hasLit(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// skipNumber returns the index after the number at i.
func skipNumber(b []byte, i int) (int, bool) {
	n := len(b)
	if i < n && b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && '1' <= b[i] && b[i] <= '9':
		for i < n && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < n && b[i] == '.' {
		i++
		if i >= n || !isDigit(b[i]) {
			return i, false
		}
		for i < n && isDigit(b[i]) {
			i++
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || !isDigit(b[i]) {
			return i, false
		}
		for i < n && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func quoteByte(c byte) string { return fmt.Sprintf("%q", string([]byte{c})) }
