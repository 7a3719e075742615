package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
)

// newECDSA returns a P-256 key, the kind cosign generate-key-pair makes.
func newECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pubPEM encodes a signer's public key as PEM "PUBLIC KEY".
func pubPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// mustKey parses a signer's public key.
func mustKey(t testing.TB, k crypto.Signer) *PublicKey {
	t.Helper()
	p, err := ParsePublicKey(pubPEM(t, k))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signBytes signs payload the way cosign does for each key type.
func signBytes(t testing.TB, k crypto.Signer, payload []byte) []byte {
	t.Helper()
	var (
		sig []byte
		err error
	)
	switch k.(type) {
	case ed25519.PrivateKey:
		sig, err = k.Sign(rand.Reader, payload, crypto.Hash(0))
	default: // ECDSA (ASN.1 DER) and RSA PKCS #1 v1.5, over SHA-256
		d := sha256.Sum256(payload)
		sig, err = k.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestParsePublicKey(t *testing.T) {
	ec := newECDSA(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"ecdsa p-256", pubPEM(t, ec), ""},
		{"rsa 2048", pubPEM(t, rsaKey), ""},
		{"ed25519", pubPEM(t, edKey), ""},
		{"leading and trailing space", append(append([]byte("\n  "), pubPEM(t, ec)...), "\n\n"...), ""},
		{"rsa 1024", pubPEM(t, weakRSA), "1024 bits"},
		{"ecdsa p-224", pubPEM(t, p224), "P-224"},
		{"private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}), `"EC PRIVATE KEY"`},
		{"two keys", append(pubPEM(t, ec), pubPEM(t, edKey)...), "one key per entry"},
		{"not pem", []byte("ssh-ed25519 AAAA"), "no PEM block"},
		{"text before the block", append([]byte("key:\n"), pubPEM(t, ec)...), "no PEM block"},
		{"empty", nil, "no PEM block"},
		{"garbage der", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("xx")}), "not a PKIX public key"},
		{"too large", []byte(strings.Repeat("A", MaxKeySize+1)), "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePublicKey(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(k.ID, "sha256:") || len(k.ID) != 71 || !strings.HasPrefix(k.PEM, "-----BEGIN PUBLIC KEY-----") {
				t.Errorf("key = %+v", k)
			}
		})
	}
}

// TestVerifyKeyTypes signs with each supported key type and checks that
// the signature verifies, and fails for another payload and another key.
func TestVerifyKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := mustKey(t, newECDSA(t))
	payload := []byte(`{"critical":{}}`)
	for name, signer := range map[string]crypto.Signer{"ecdsa": newECDSA(t), "rsa": rsaKey, "ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			k := mustKey(t, signer)
			sig := signBytes(t, signer, payload)
			if err := k.Verify(payload, sig); err != nil {
				t.Errorf("valid signature: %v", err)
			}
			if err := k.Verify(append([]byte(" "), payload...), sig); err == nil {
				t.Error("signature verified over another payload")
			}
			if err := other.Verify(payload, sig); err == nil {
				t.Error("signature verified against another key")
			}
			if err := k.Verify(payload, []byte("garbage")); err == nil {
				t.Error("garbage signature verified")
			}
		})
	}
	if err := (&PublicKey{}).Verify(payload, nil); err == nil {
		t.Error("zero PublicKey verified")
	}
}

func TestPublicKeyJSON(t *testing.T) {
	k := mustKey(t, newECDSA(t))
	data, err := json.Marshal(struct{ Keys []*PublicKey }{[]*PublicKey{k}})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Keys []*PublicKey }
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Keys) != 1 || back.Keys[0].ID != k.ID || back.Keys[0].PEM != k.PEM || back.Keys[0].key == nil {
		t.Errorf("round trip: %s -> %+v", data, back.Keys)
	}
	if err := json.Unmarshal([]byte(`["not a key"]`), &back.Keys); err == nil || !strings.Contains(err.Error(), "no PEM block") {
		t.Errorf("bad key: %v", err)
	}
}
