// Package firstrun prepares a console server's data directory on its first
// start: a private directory, a random server key (for audit-chain HMACs
// and token hashing) and a self-signed TLS certificate for loopback use.
// Nothing here has a default value: every secret is generated with
// crypto/rand on the machine that uses it, and files are created with
// O_EXCL so that two servers starting at once cannot both write them.
package firstrun

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names in the data directory.
const (
	KeyFile  = "server.key"
	CertFile = "tls.crt"
	TLSKey   = "tls.key"
	DBFile   = "mamori.db"
)

// Data is a prepared data directory.
type Data struct {
	// Dir is the directory (mode 0700).
	Dir string
	// Key is the server's 32-byte secret.
	Key []byte
	// Created reports whether this start created the directory's secrets.
	Created bool
}

// Prepare creates dir (0700) and the server key on first use, and loads
// the key afterwards. A key file that is not 64 hex digits, or a directory
// that others can read, is an error that names the file: mamori does not
// run on a data directory whose secrets may have leaked.
func Prepare(dir string) (*Data, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("data directory %s is accessible to other users (mode %v): chmod 700 it", dir, fi.Mode().Perm())
	}
	d := &Data{Dir: dir}
	path := filepath.Join(dir, KeyFile)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	created, err := createExclusive(path, []byte(hex.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, err
	}
	if !created {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("server key: %w", err)
		}
		key, err = hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("server key %s is not 64 hex digits", path)
		}
	}
	d.Key, d.Created = key, created
	return d, nil
}

// createExclusive writes data to a new file with mode 0600; it reports
// false when the file already exists. The content is written to a temp
// file and linked into place, so a crash never leaves a partial file.
func createExclusive(path string, data []byte) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// TLSConfig returns a TLS configuration with the data directory's
// self-signed certificate for the given host names and addresses,
// creating it on first use (ECDSA P-256, valid one year; a certificate
// that has expired or does not cover the hosts is replaced).
func (d *Data) TLSConfig(hosts []string) (*tls.Config, error) {
	certPath, keyPath := filepath.Join(d.Dir, CertFile), filepath.Join(d.Dir, TLSKey)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && covers(c, hosts) {
		return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
	}
	certPEM, keyPEM, err := selfSigned(hosts)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyPath, keyPEM}, {certPath, certPEM}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return nil, err
		}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

func covers(c tls.Certificate, hosts []string) bool {
	if len(c.Certificate) == 0 {
		return false
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil || time.Now().After(x.NotAfter.Add(-24*time.Hour)) {
		return false
	}
	for _, h := range hosts {
		if x.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func selfSigned(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mamori console (self-signed)"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
