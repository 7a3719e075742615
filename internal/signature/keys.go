package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxKeySize is the largest PEM public key ParsePublicKey accepts.
const MaxKeySize = 16 << 10

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// PublicKey is a trusted public key: ECDSA P-256 (cosign's default),
// ECDSA P-384/P-521, RSA of at least 2048 bits, or Ed25519. Its JSON form
// is its PEM text.
type PublicKey struct {
	// ID is "sha256:" and the hex SHA-256 of the key's DER
	// SubjectPublicKeyInfo: it identifies the key in verdicts.
	ID string
	// PEM is the key as a PEM "PUBLIC KEY" block.
	PEM string
	key crypto.PublicKey
}

// ParsePublicKey parses one PEM "PUBLIC KEY" block (PKIX, as cosign
// writes cosign.pub). Anything after the block is an error, so that a
// file holding several keys is not silently cut to its first.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	if len(data) > MaxKeySize {
		return nil, fmt.Errorf("public key is %d bytes, more than the %d allowed", len(data), MaxKeySize)
	}
	data = bytes.TrimSpace(data)
	block, rest := pem.Decode(data)
	if block == nil || !bytes.HasPrefix(data, []byte("-----BEGIN ")) {
		return nil, errors.New("no PEM block found: want a \"-----BEGIN PUBLIC KEY-----\" block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\" (a private key or certificate is not accepted)", block.Type)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("data follows the PEM block: give one key per entry")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PEM block is not a PKIX public key: %w", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("ECDSA curve %s is not supported (want P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, fewer than the %d required", k.N.BitLen(), minRSABits)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("key type %T is not supported (want ECDSA, RSA or Ed25519)", pub)
	}
	sum := sha256.Sum256(block.Bytes)
	return &PublicKey{
		ID:  "sha256:" + hex.EncodeToString(sum[:]),
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes})),
		key: pub,
	}, nil
}

// Verify checks sig over payload. ECDSA signatures are ASN.1 DER over the
// payload's SHA-256 (for every curve, as cosign does for key files), RSA
// signatures PKCS #1 v1.5 over its SHA-256, Ed25519 signatures over the
// payload itself.
func (k *PublicKey) Verify(payload, sig []byte) error {
	switch pub := k.key.(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		d := sha256.Sum256(payload)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			return errors.New("RSA signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, payload, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
	default:
		return errors.New("public key was not parsed with ParsePublicKey")
	}
	return nil
}

// MarshalJSON encodes the key as its PEM text.
func (k PublicKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.PEM)
}

// UnmarshalJSON parses the key from its PEM text.
func (k *PublicKey) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("public key: want a PEM string: %w", err)
	}
	p, err := ParsePublicKey([]byte(s))
	if err != nil {
		return err
	}
	*k = *p
	return nil
}
