package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

func init() { PasswordCost = bcrypt.MinCost }

var testMaster = bytes.Repeat([]byte{7}, MasterKeySize)

func TestParseMasterKey(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(testMaster), true},
		{"base64", base64.StdEncoding.EncodeToString(testMaster), true},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(testMaster), true},
		{"base64 url", base64.URLEncoding.EncodeToString(append([]byte{0xfb, 0xff}, testMaster[2:]...)), true},
		{"with newline", base64.StdEncoding.EncodeToString(testMaster) + "\n", true},
		{"too short", base64.StdEncoding.EncodeToString(testMaster[:16]), false},
		{"hex too short", hex.EncodeToString(testMaster[:31]), false},
		{"a passphrase", "correct horse battery staple!!", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseMasterKey(tt.in)
			if tt.ok && (err != nil || len(k) != MasterKeySize) {
				t.Fatalf("want a 32-byte key, got %d bytes, %v", len(k), err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("want an error")
				}
				if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatalf("the error repeats the value: %v", err)
				}
			}
		})
	}
}

func TestMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", MasterKeyFile)
	if _, found, err := ReadMasterKeyFile(path); found || err != nil {
		t.Fatalf("no file yet: found=%v err=%v", found, err)
	}
	// Replicas starting at once all end up with the one key written.
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := CreateMasterKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent creators got different keys")
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file mode %v, want 0600", fi.Mode().Perm())
	}
	got, found, err := ReadMasterKeyFile(path)
	if !found || err != nil || !bytes.Equal(got, keys[0]) {
		t.Fatalf("read back: found=%v err=%v equal=%v", found, err, bytes.Equal(got, keys[0]))
	}

	os.WriteFile(path, []byte("not a key\n"), 0o600)
	if _, _, err := ReadMasterKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a damaged file must be an error naming it, got %v", err)
	}
}

func TestKeyringSealOpen(t *testing.T) {
	kr, err := NewKeyring(testMaster)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("sk-live-0123456789abcdef")
	a, _ := kr.Seal(secret, []byte("row-1"))
	b, _ := kr.Seal(secret, []byte("row-1"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value must differ (random nonce)")
	}
	if bytes.Contains(a, secret) {
		t.Fatal("sealed value contains the clear text")
	}
	got, err := kr.Open(a, []byte("row-1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open: %q, %v", got, err)
	}

	other, _ := NewKeyring(bytes.Repeat([]byte{8}, MasterKeySize))
	tampered := append([]byte(nil), a...)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other place":      func() ([]byte, error) { return kr.Open(a, []byte("row-2")) },
		"other master key": func() ([]byte, error) { return other.Open(a, []byte("row-1")) },
		"tampered":         func() ([]byte, error) { return kr.Open(tampered, []byte("row-1")) },
		"truncated":        func() ([]byte, error) { return kr.Open(a[:10], []byte("row-1")) },
	} {
		if _, err := open(); err != ErrOpen {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
	if _, err := NewKeyring(testMaster[:16]); err == nil {
		t.Error("a 16-byte master key must be refused")
	}
}

func TestDerive(t *testing.T) {
	a, _ := NewKeyring(testMaster)
	b, _ := NewKeyring(testMaster)
	if !bytes.Equal(a.Derive(LabelKeyID), b.Derive(LabelKeyID)) {
		t.Fatal("the same master key and label must give the same key (ids stable across restarts)")
	}
	if bytes.Equal(a.Derive(LabelKeyID), a.Derive(labelEncryption)) || bytes.Equal(a.Derive(LabelKeyID), testMaster) {
		t.Fatal("each label must give its own key")
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "s3cret-pass") {
		t.Fatal("hash contains the password")
	}
	if !CheckPassword(h, "s3cret-pass") || CheckPassword(h, "s3cret-pasS") || CheckPassword("", "s3cret-pass") {
		t.Fatal("CheckPassword")
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordBytes+1)); err == nil {
		t.Fatal("a password longer than bcrypt takes must be refused, not cut")
	}
}

func TestLoginTokens(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"), 24*time.Hour, clock)
	tok, exp, err := s.Issue(42, "alice", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !LooksLikeJWT(tok) || LooksLikeJWT("kg-app-secret") {
		t.Fatal("LooksLikeJWT")
	}
	c, err := s.Verify(tok)
	if err != nil || c.UserID != 42 || c.Username != "alice" || c.Role != "admin" || !c.ExpiresAt.Equal(exp) {
		t.Fatalf("Verify: %+v, %v", c, err)
	}

	now = now.Add(24*time.Hour + time.Second)
	if _, err := s.Verify(tok); err != ErrExpired {
		t.Fatalf("after 24 h: %v, want ErrExpired", err)
	}
	now = now.Add(-time.Hour)

	other := NewSigner([]byte("another-secret-another-secret-xx"), time.Hour, clock)
	forged, _, _ := other.Issue(42, "alice", "admin")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "role": "admin", "iss": "keygate",
		"exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, bad := range map[string]string{"other key": forged, "alg none": none, "garbage": "a.b.c", "tampered": tok[:len(tok)-2] + "xx"} {
		if _, err := s.Verify(bad); err != ErrInvalidToken {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
}
