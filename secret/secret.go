// Package secret is keygate's cryptography: the master key, AES-256-GCM
// encryption of provider keys at rest, the keyed hash behind key ids,
// password hashes and login tokens. Everything here is the standard
// library or golang.org/x/crypto and golang-jwt; nothing is hand-rolled
// beyond putting them together.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the length of the master key: AES-256.
const MasterKeySize = 32

// MasterKeyFile is the name of the generated master key in the data directory.
const MasterKeyFile = "master.key"

// ParseMasterKey decodes a 32-byte master key written as 64 hex characters
// or as base64 (standard or URL alphabet, padded or not). The error never
// repeats the value.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*MasterKeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != MasterKeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(b), MasterKeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is neither 64 hex characters nor base64 of 32 bytes (generate one with: openssl rand -base64 32)")
}

// ReadMasterKeyFile reads the master key kept at path. found is false when
// there is no such file.
func ReadMasterKeyFile(path string) (key []byte, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read master key: %w", err)
	}
	key, err = ParseMasterKey(string(b))
	if err != nil {
		return nil, true, fmt.Errorf("master key in %s %w", path, err)
	}
	return key, true, nil
}

// CreateMasterKeyFile generates a master key and writes it to path with
// mode 0600, creating its directory (0700) if needed. The file appears
// whole or not at all (written aside, then linked into place); if another
// process created it first, its key is returned instead.
func CreateMasterKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	f, err := os.CreateTemp(dir, MasterKeyFile+".*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		key, _, err := ReadMasterKeyFile(path)
		return key, err
	} else if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	return key, nil
}

// Keyring holds the keys derived from the master key. It is safe for
// concurrent use.
type Keyring struct {
	master []byte
	aead   cipher.AEAD
}

// Labels of the keys derived from the master key: each use has its own, so
// knowing one derived key tells nothing about another.
const (
	labelEncryption = "keygate/aes-256-gcm/v1"
	// LabelKeyID keys the hash that names a provider key (keygate.KeyHasher).
	LabelKeyID = "keygate/key-id/v1"
)

// sealedVersion is the first byte of every sealed value, so the format can
// change without guessing.
const sealedVersion = 1

// NewKeyring derives the encryption key from master.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(master), MasterKeySize)
	}
	kr := &Keyring{master: append([]byte(nil), master...)}
	block, err := aes.NewCipher(kr.Derive(labelEncryption))
	if err != nil {
		return nil, err
	}
	if kr.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return kr, nil
}

// Derive returns a 32-byte key for one purpose (HKDF-SHA256 over the master
// key, with label as the info). The same label always gives the same key.
func (k *Keyring) Derive(label string) []byte {
	b, err := hkdf.Key(sha256.New, k.master, nil, label, 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // only for lengths HKDF cannot give; 32 is fine
	}
	return b
}

// Seal encrypts plaintext with AES-256-GCM under a random nonce. aad binds
// the result to where it is kept (a row id): a sealed value copied to
// another place does not open.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = sealedVersion
	rand.Read(out[1:])
	return k.aead.Seal(out, out[1:], plaintext, aad), nil
}

// ErrOpen is returned when a sealed value does not decrypt: another master
// key, another place, or damaged data.
var ErrOpen = errors.New("cannot decrypt: wrong master key or damaged data")

// Open decrypts what Seal produced with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != sealedVersion {
		return nil, ErrOpen
	}
	b, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return b, nil
}
