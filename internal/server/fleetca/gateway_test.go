package fleetca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"
)

// TestSignGateway checks that a gateway's request is signed for the given
// names only, for server and client authentication, chained to the CA.
func TestSignGateway(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.SignGateway(csr(t, key, "evil.example"), []string{"gw.example", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(is.CertPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("certificate is not for the request's key")
	}
	if cert.Subject.CommonName != "gw.example" || !slices.Equal(cert.DNSNames, []string{"gw.example"}) ||
		len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("names: CN %q, DNS %v, IP %v", cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := ca.Verify(cert, u); err != nil {
			t.Errorf("usage %v: %v", u, err)
		}
	}
	if d := time.Until(is.NotAfter); d < GatewayValidity-time.Hour || d > GatewayValidity {
		t.Errorf("validity %s", d)
	}
	if _, err := ca.SignGateway(csr(t, key, "x"), nil); err == nil {
		t.Error("no hosts: signed")
	}
	if _, err := ca.SignGateway([]byte("junk"), []string{"gw.example"}); err == nil {
		t.Error("junk request: signed")
	}
}
