package oidcauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// maxCookieLen bounds the state cookie accepted from a browser.
const maxCookieLen = 1024

// flowState is what Begin remembers for Callback: the state parameter, the
// ID token nonce and the PKCE code verifier, and when they expire.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// sealer encrypts and authenticates flow state with AES-256-GCM. The cookie
// name is bound as additional data, so a value cannot be moved to another
// cookie.
type sealer struct {
	aead cipher.AEAD
	name string
}

// newSealer derives the AES key from secret with HKDF-SHA256, so the server
// can pass a general master secret.
func newSealer(secret []byte, name string) (*sealer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("oidc config: cookie key has %d bytes, want at least 32", len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "mamori oidc state cookie v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, name: name}, nil
}

// seal returns the cookie value for st.
func (s *sealer) seal(st flowState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(s.name))), nil
}

// open decrypts a cookie value and checks that it has not expired at now.
func (s *sealer) open(value string, now time.Time) (*flowState, error) {
	if len(value) > maxCookieLen {
		return nil, fmt.Errorf("state cookie is %d bytes, longer than %d", len(value), maxCookieLen)
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("state cookie is not base64url: %w", err)
	}
	ns := s.aead.NonceSize()
	if len(raw) < ns+s.aead.Overhead() {
		return nil, errors.New("state cookie is too short")
	}
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], []byte(s.name))
	if err != nil {
		return nil, errors.New("state cookie failed authentication (tampered, or sealed with another key)")
	}
	var st flowState
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, fmt.Errorf("state cookie payload: %w", err)
	}
	if st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return nil, errors.New("state cookie lacks state, nonce or verifier")
	}
	if now.Unix() > st.Expires {
		return nil, fmt.Errorf("login expired at %s", time.Unix(st.Expires, 0).UTC().Format(time.RFC3339))
	}
	return &st, nil
}
