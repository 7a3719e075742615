package fleetca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// csr makes a PEM certificate request signed by key.
func csr(t testing.TB, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCreateLoadSign(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(ca.Certificate()) {
		t.Fatal("reloading created a different CA")
	}
	other, _ := LoadOrCreate(t.TempDir())
	if other.Certificate().Equal(ca.Certificate()) {
		t.Fatal("two data directories share a CA")
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := ca.SignAgent(csr(t, key, "evil-admin"), "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := again.VerifyPEM(is.CertPEM, x509.ExtKeyUsageClientAuth)
	if err != nil || id != "agent-1" {
		t.Fatalf("verify: %q %v", id, err)
	}
	if _, err := again.VerifyPEM(is.CertPEM, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("an agent certificate verified for server auth")
	}
	if _, err := other.VerifyPEM(is.CertPEM, x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("an agent certificate verified against another CA")
	}
	life := time.Until(is.NotAfter)
	if life < AgentValidity-time.Minute || life > AgentValidity {
		t.Errorf("agent certificate lives %v", life)
	}
	if got := is.NotAfter.Sub(is.RenewFrom); got < AgentValidity/3-time.Hour || got > AgentValidity/3+time.Hour {
		t.Errorf("renewal window %v, want a third of the life", got)
	}

	gw, err := ca.IssueGateway([]string{"gateway.example", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Verify(gw.Leaf, x509.ExtKeyUsageServerAuth); err != nil {
		t.Error(err)
	}
	if err := gw.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}

	// Expired certificates do not verify.
	later, _ := LoadOrCreate(dir, WithClock(func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }))
	if _, err := later.VerifyPEM(is.CertPEM, x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("an expired agent certificate verified")
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Remove(filepath.Join(dir, KeyFile))
	if _, err := LoadOrCreate(dir); err == nil {
		t.Error("a CA without its key was accepted or replaced")
	}
}

func TestParseCSR(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weakEC, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	weakRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := csr(t, ec, "x")
	tampered := []byte(strings.Replace(string(good), string(good[len(good)/2:len(good)/2+4]), "AAAA", 1))
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"good", good, ""},
		{"P-224", csr(t, weakEC, "x"), "P-224"},
		{"RSA-1024", csr(t, weakRSA, "x"), "too weak"},
		{"not PEM", []byte("hello"), "no PEM"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "no PEM"},
		{"trailing", append(append([]byte{}, good...), []byte("junk")...), "after the PEM"},
		{"huge", make([]byte, MaxCSRSize+1), "larger than"},
		{"tampered", tampered, "certificate request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSR(tc.in)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseCSR(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(csr(f, ec, "seed"))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCSR(b)
		if err == nil && c == nil {
			t.Fatal("nil request without error")
		}
	})
}
