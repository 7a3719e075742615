// Package fleetca is the console server's fleet certificate authority: it
// signs the client certificates agents (enforcers, kube-enforcers) present
// to gateways over mutual TLS, and the serving certificates of gateways.
//
// The CA is generated on the server's first start in its data directory
// (an ECDSA P-256 key, written with mode 0600 and atomically) and never
// shipped: every installation has its own. Agent certificates live for
// AgentValidity and are renewed from two thirds of their life on, so a
// disabled agent loses access within a week even if nobody revokes
// anything.
package fleetca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names in the data directory.
const (
	CertFile = "fleet-ca.crt"
	KeyFile  = "fleet-ca.key"
)

// Validity periods.
const (
	// CAValidity is the CA certificate's lifetime.
	CAValidity = 10 * 365 * 24 * time.Hour
	// AgentValidity is an agent certificate's lifetime.
	AgentValidity = 7 * 24 * time.Hour
	// GatewayValidity is a gateway serving certificate's lifetime.
	GatewayValidity = 90 * 24 * time.Hour
	// MaxCSRSize bounds a PEM certificate request.
	MaxCSRSize = 16 << 10
)

// CA is a loaded fleet CA. It is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	now     func() time.Time
}

// Option configures a CA.
type Option func(*CA)

// WithClock sets the clock (time.Now by default), for tests.
func WithClock(now func() time.Time) Option { return func(c *CA) { c.now = now } }

// LoadOrCreate loads the CA from dir, or creates it there when neither
// file exists. One file without the other is an error: the server never
// silently replaces a CA agents trust.
func LoadOrCreate(dir string, opts ...Option) (*CA, error) {
	c := &CA{now: time.Now}
	for _, o := range opts {
		o(c)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		return c, c.create(certPath, keyPath)
	case cerr != nil:
		return nil, fmt.Errorf("fleet CA certificate %s: %w", certPath, cerr)
	case kerr != nil:
		return nil, fmt.Errorf("fleet CA key %s: %w", keyPath, kerr)
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("fleet CA key %s: mode %v lets other users read it; chmod 600 it", keyPath, fi.Mode().Perm())
	}
	return c, c.load(certPEM, keyPEM, certPath, keyPath)
}

func (c *CA) load(certPEM, keyPEM []byte, certPath, keyPath string) error {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return fmt.Errorf("fleet CA certificate %s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("fleet CA certificate %s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return fmt.Errorf("fleet CA key %s: no PEM EC PRIVATE KEY block", keyPath)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("fleet CA key %s: %w", keyPath, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("fleet CA key %s does not belong to the certificate %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return fmt.Errorf("fleet CA certificate %s is not a CA certificate", certPath)
	}
	c.cert, c.certPEM, c.key = cert, pem.EncodeToMemory(cb), key
	return nil
}

func (c *CA) create(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the fleet CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"mamori"}, CommonName: fmt.Sprintf("mamori fleet CA %.8s", serial.Text(16))},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("creating the fleet CA certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is refused on the next
	// start rather than a new CA silently created.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	return c.load(certPEM, keyPEM, certPath, keyPath)
}

// writeAtomic writes data to a temporary file in path's directory, syncs
// it and renames it over path.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a certificate serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate in PEM form.
func (c *CA) CertPEM() []byte { return bytes.Clone(c.certPEM) }

// Pool returns a certificate pool holding only the CA.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Issued is a signed certificate.
type Issued struct {
	// CertPEM is the PEM certificate.
	CertPEM []byte
	// Serial is the certificate's serial number in hex.
	Serial    string
	NotAfter  time.Time
	RenewFrom time.Time
}

// RenewFrom is when a certificate valid from notBefore to notAfter
// should be renewed: after two thirds of its life.
func RenewFrom(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// ParseCSR decodes and checks a PEM certificate request: one CERTIFICATE
// REQUEST block with a valid self-signature over an acceptable key
// (ECDSA P-256 or P-384, Ed25519, or RSA of at least 2048 bits).
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	if len(csrPEM) > MaxCSRSize {
		return nil, fmt.Errorf("certificate request: %d bytes, larger than the limit of %d", len(csrPEM), MaxCSRSize)
	}
	b, rest := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("certificate request: no PEM CERTIFICATE REQUEST block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("certificate request: data after the PEM block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: the signature does not verify: %w", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return csr, nil
}

// checkKey accepts strong public keys only.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s is not accepted (want P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too weak (want at least 2048)", k.N.BitLen())
		}
	default:
		return fmt.Errorf("key type %T is not accepted", pub)
	}
	return nil
}

// SignAgent signs an agent's certificate request: the certificate's
// CommonName is agentID whatever the request asked for, it is for client
// authentication only and valid for AgentValidity.
func (c *CA) SignAgent(csrPEM []byte, agentID string) (Issued, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return Issued{}, err
	}
	if agentID == "" {
		return Issued{}, errors.New("signing an agent certificate: empty agent ID")
	}
	return c.sign(csr.PublicKey, &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"mamori fleet"}, CommonName: agentID},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, AgentValidity)
}

func (c *CA) sign(pub crypto.PublicKey, tmpl *x509.Certificate, validity time.Duration) (Issued, error) {
	serial, err := newSerial()
	if err != nil {
		return Issued{}, err
	}
	now := c.now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-5 * time.Minute)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return Issued{}, fmt.Errorf("signing certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	return Issued{
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Serial:    serial.Text(16),
		NotAfter:  tmpl.NotAfter.UTC(),
		RenewFrom: RenewFrom(tmpl.NotBefore, tmpl.NotAfter).UTC(),
	}, nil
}

// IssueGateway creates a key and a serving certificate for a gateway
// whose names are hosts (DNS names or IP addresses); the certificate
// also allows client authentication, so the gateway can present it to
// the server. It returns the certificate with its key.
func (c *CA) IssueGateway(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("gateway certificate: at least one host name or address is required")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"mamori fleet"}, CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("gateway certificate: %w", err)
	}
	is, err := c.sign(key.Public(), tmpl, GatewayValidity)
	if err != nil {
		return tls.Certificate{}, err
	}
	b, _ := pem.Decode(is.CertPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: key, Leaf: leaf}, nil
}

// Verify checks that cert was issued by the CA for usage and is valid
// now; it returns the certificate's CommonName (an agent's ID).
func (c *CA) Verify(cert *x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	_, err := cert.Verify(x509.VerifyOptions{Roots: c.Pool(), CurrentTime: c.now(), KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return "", fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, err)
	}
	return cert.Subject.CommonName, nil
}

// VerifyPEM is Verify for a PEM certificate.
func (c *CA) VerifyPEM(certPEM []byte, usage x509.ExtKeyUsage) (string, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", fmt.Errorf("certificate: %w", err)
	}
	return c.Verify(cert, usage)
}
