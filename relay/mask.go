package relay

import (
	"bytes"
	"net/url"

	"github.com/keygate/keygate"
)

// maskBody hides, in an error body meant for the caller, the key the
// attempt used (as it is, or JSON-escaped: "sk\u002dabc" is the same key
// to whoever decodes it) and the deployment's address, which is internal.
func maskBody(b []byte, secret, baseURL string) []byte {
	if len(b) == 0 {
		return b
	}
	if secret != "" {
		masked := []byte(keygate.Mask(secret))
		b = bytes.ReplaceAll(b, []byte(secret), masked)
		if bytes.IndexByte(b, '\\') >= 0 {
			b = replaceEscaped(b, secret, masked)
		}
	}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		b = bytes.ReplaceAll(b, []byte(baseURL), []byte("<upstream>"))
		b = bytes.ReplaceAll(b, []byte(u.Host), []byte("<upstream>"))
	}
	return b
}

// replaceEscaped replaces every occurrence of secret in which some
// characters are written as JSON escapes (\u00XX, \/).
func replaceEscaped(b []byte, secret string, masked []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		if b[i] != secret[0] && b[i] != '\\' {
			i++
			continue
		}
		if end := matchEscaped(b, i, secret); end > 0 {
			out = append(out, b[last:i]...)
			out = append(out, masked...)
			i, last = end, end
			continue
		}
		i++
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// matchEscaped returns the end of secret matched at b[i:], each byte
// literally or as a JSON escape, or -1.
func matchEscaped(b []byte, i int, secret string) int {
	for j := 0; j < len(secret); j++ {
		if i >= len(b) {
			return -1
		}
		c := secret[j]
		switch {
		case b[i] == c:
			i++
		case b[i] == '\\' && i+1 < len(b) && b[i+1] == '/' && c == '/':
			i += 2
		case b[i] == '\\' && i+5 < len(b) && b[i+1] == 'u' && b[i+2] == '0' && b[i+3] == '0' &&
			unhex(b[i+4])<<4|unhex(b[i+5]) == int(c):
			i += 6
		default:
			return -1
		}
	}
	return i
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -64
}
