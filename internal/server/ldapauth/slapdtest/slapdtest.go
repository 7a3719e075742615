// Package slapdtest starts a private OpenLDAP slapd for tests. Each server
// runs from its own generated slapd.conf and mdb database in a temporary
// directory, listens only on 127.0.0.1 and is killed when the test ends. The
// system slapd service is never used.
package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/mamorisec/mamori/internal/testenv"
)

// Suffix is the naming context of every test server.
const Suffix = "dc=example,dc=org"

// RootDN is the administrator entry of every test server.
const RootDN = "cn=admin," + Suffix

// Server is a running slapd.
type Server struct {
	// URL is the ldap:// URL the server listens on; it offers StartTLS.
	URL string
	// TLSURL is the ldaps:// URL the server listens on.
	TLSURL string
	// RootCAs trusts the server's certificate (issued for 127.0.0.1 by a CA
	// generated per server).
	RootCAs *x509.CertPool
	// RootPassword is the password of RootDN, generated per server.
	RootPassword string
	cmd          *exec.Cmd
}

// Start starts slapd for the test and registers its shutdown with t.Cleanup.
// It reports the dependency Missing when slapd (Debian package slapd) is not
// installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := slapdPath(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{RootPassword: fmt.Sprintf("root-%d", time.Now().UnixNano())}
	if err := s.writeCerts(dir); err != nil {
		t.Fatalf("generate slapd certificate: %v", err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(s.config(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		tlsPort, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
		s.TLSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tlsPort)
		if lastErr = s.run(t, bin, conf, dir); lastErr == nil {
			return s
		}
	}
	t.Fatalf("start slapd: %v", lastErr)
	return nil
}

// slapdPath finds slapd, which Debian installs in /usr/sbin (often not on a
// non-root PATH).
func slapdPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/slapd"); err == nil {
		return "/usr/sbin/slapd"
	}
	return testenv.NeedCommand(t, "slapd")
}

func (s *Server) config(dir string) string {
	return strings.Join([]string{
		"include /etc/ldap/schema/core.schema",
		"include /etc/ldap/schema/cosine.schema",
		"include /etc/ldap/schema/inetorgperson.schema",
		"include /etc/ldap/schema/nis.schema",
		"modulepath /usr/lib/ldap",
		"moduleload back_mdb",
		"moduleload memberof",
		"pidfile " + filepath.Join(dir, "slapd.pid"),
		"argsfile " + filepath.Join(dir, "slapd.args"),
		"TLSCertificateFile " + filepath.Join(dir, "cert.pem"),
		"TLSCertificateKeyFile " + filepath.Join(dir, "key.pem"),
		"access to attrs=userPassword by self write by anonymous auth by * none",
		"access to * by * read",
		"database mdb",
		"maxsize 16777216",
		`suffix "` + Suffix + `"`,
		`rootdn "` + RootDN + `"`,
		"rootpw " + s.RootPassword,
		"directory " + filepath.Join(dir, "db"),
		"overlay memberof",
		"",
	}, "\n")
}

// run starts slapd in the foreground (-d 0) and waits until it accepts
// connections.
func (s *Server) run(t testing.TB, bin, conf, dir string) error {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-d", "0", "-f", conf, "-h", s.URL+"/ "+s.TLSURL+"/")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			return fmt.Errorf("slapd exited (%v): %s", err, log)
		default:
		}
		if listening(s.URL) && listening(s.TLSURL) {
			s.cmd = cmd
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("slapd did not listen on %s within 15s", s.URL)
}

// Stop kills the server early, e.g. to test an unreachable directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
}

// Admin returns a connection bound as RootDN, closed at the end of the test.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(RootDN, s.RootPassword); err != nil {
		t.Fatalf("bind %s: %v", RootDN, err)
	}
	return c
}

// Entry is one directory entry to add: its DN and attributes.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Add adds the entries in order as RootDN.
func (s *Server) Add(t testing.TB, entries ...Entry) {
	t.Helper()
	c := s.Admin(t)
	for _, e := range entries {
		req := ldap.NewAddRequest(e.DN, nil)
		for name, vals := range e.Attrs {
			req.Attribute(name, vals)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", e.DN, err)
		}
	}
}

// listening reports whether something accepts TCP connections at the
// host:port of an LDAP URL.
func listening(url string) bool {
	_, addr, _ := strings.Cut(url, "://")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// writeCerts writes cert.pem and key.pem for 127.0.0.1, issued by a CA that
// becomes RootCAs.
func (s *Server) writeCerts(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slapdtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(ca)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
