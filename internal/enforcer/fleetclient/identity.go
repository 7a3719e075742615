package fleetclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mamorisec/mamori/internal/atomicfile"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
)

// State files in Config.StateDir. The identity (key, certificate, fleet
// CA) is one file written atomically, so a crash during enrollment or
// renewal leaves the old identity or the new one, never a key that does not
// match its certificate.
const (
	identityFile = "identity.json"
	policyFile   = "policy.json"
	maxStateFile = 16 << 20
)

// identity is what enrollment gives an agent.
type identity struct {
	AgentID     string    `json:"agentId"`
	Group       string    `json:"group"`
	KeyPEM      string    `json:"key"`
	CertPEM     string    `json:"certificate"`
	CAPEM       string    `json:"ca"`
	NotAfter    time.Time `json:"notAfter"`
	RenewFrom   time.Time `json:"renewFrom"`
	certificate tls.Certificate
}

// newKey generates an ECDSA P-256 key and a PEM certificate request for it.
func newKey(name string) (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generating key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, "", fmt.Errorf("creating certificate request: %w", err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

func keyPEM(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), nil
}

// load parses the key pair and checks the certificate names the agent.
func (id *identity) load() error {
	cert, err := tls.X509KeyPair([]byte(id.CertPEM), []byte(id.KeyPEM))
	if err != nil {
		return fmt.Errorf("key pair: %w", err)
	}
	if cert.Leaf == nil || cert.Leaf.Subject.CommonName != id.AgentID || id.AgentID == "" {
		return fmt.Errorf("certificate does not name agent %q", id.AgentID)
	}
	if blk, _ := pem.Decode([]byte(id.CAPEM)); blk == nil {
		return errors.New("no PEM fleet CA")
	}
	id.certificate = cert
	return nil
}

func readIdentity(dir string) (*identity, error) {
	path := filepath.Join(dir, identityFile)
	b, err := readState(path)
	if err != nil || b == nil {
		return nil, err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := id.load(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &id, nil
}

func writeIdentity(dir string, id *identity) error {
	return writeJSON(filepath.Join(dir, identityFile), 0o600, id)
}

// readState returns a state file's content, or nil when it does not exist.
func readState(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxStateFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

func writeJSON(path string, perm os.FileMode, v any) error {
	return atomicfile.Write(path, perm, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(v)
	})
}

func readPolicy(dir string) (*fleet.PolicyBundle, error) {
	path := filepath.Join(dir, policyFile)
	b, err := readState(path)
	if err != nil || b == nil {
		return nil, err
	}
	var p fleet.PolicyBundle
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &p, nil
}
