package enforcer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Files of the state directory.
const (
	identityFile = "identity.json"
	keyFile      = "agent.key"
	certFile     = "agent.crt"
	bundleFile   = "bundle.json"
	// maxStateFile bounds a state file read back.
	maxStateFile = 16 << 20
)

// identity is the kube-enforcer's enrollment, kept across restarts.
type identity struct {
	AgentID string `json:"agentId"`
	Group   string `json:"group"`
	// Hostname is the name it enrolled with (the cluster name); a changed
	// cluster name enrolls again.
	Hostname string `json:"hostname"`
}

// newCSR returns a fresh P-256 key in PEM and a certificate request for it.
func newCSR() (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// writeFile replaces dir/name atomically (temporary file, rename) with
// mode 0600.
func writeFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// readJSON reads dir/name into v; a missing file returns false and no
// error.
func readJSON(dir, name string, v any) (bool, error) {
	p := filepath.Join(dir, name)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxStateFile)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", p, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w (delete it to start afresh)", p, err)
	}
	return true, nil
}

// saveEnrollment stores the identity, the key and the certificate the
// server signed.
func saveEnrollment(dir string, id identity, keyPEM []byte, resp fleet.EnrollResponse) error {
	if err := writeFile(dir, keyFile, keyPEM); err != nil {
		return err
	}
	if err := writeFile(dir, certFile, []byte(resp.Certificate)); err != nil {
		return err
	}
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return writeFile(dir, identityFile, b)
}
