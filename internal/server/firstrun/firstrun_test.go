package firstrun

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestPrepare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d1, err := Prepare(dir)
	if err != nil || !d1.Created || len(d1.Key) != 32 {
		t.Fatalf("first Prepare: %+v, %v", d1, err)
	}
	d2, err := Prepare(dir)
	if err != nil || d2.Created || !bytes.Equal(d1.Key, d2.Key) {
		t.Fatalf("second Prepare must load the same key: %+v, %v", d2, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, KeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	other, _ := Prepare(filepath.Join(t.TempDir(), "other"))
	if bytes.Equal(other.Key, d1.Key) {
		t.Error("two data directories got the same key")
	}
}

func TestPrepareConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Prepare(dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = d.Key
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent first runs disagree on the key")
		}
	}
}

func TestPrepareErrors(t *testing.T) {
	open := t.TempDir()
	os.Chmod(open, 0o755)
	if _, err := Prepare(open); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("world-readable dir: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.Mkdir(bad, 0o700)
	os.WriteFile(filepath.Join(bad, KeyFile), []byte("not hex"), 0o600)
	if _, err := Prepare(bad); err == nil || !strings.Contains(err.Error(), "not 64 hex digits") {
		t.Errorf("bad key: %v", err)
	}
}

func TestTLSConfig(t *testing.T) {
	d, err := Prepare(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	c1, err := d.TLSConfig([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := x509.ParseCertificate(c1.Certificates[0].Certificate[0])
	if x.VerifyHostname("127.0.0.1") != nil || x.VerifyHostname("localhost") != nil {
		t.Errorf("certificate does not cover loopback: %v %v", x.DNSNames, x.IPAddresses)
	}
	c2, _ := d.TLSConfig([]string{"localhost", "127.0.0.1"})
	if !bytes.Equal(c1.Certificates[0].Certificate[0], c2.Certificates[0].Certificate[0]) {
		t.Error("certificate regenerated on a second start")
	}
	c3, _ := d.TLSConfig([]string{"console.example.com"})
	if bytes.Equal(c1.Certificates[0].Certificate[0], c3.Certificates[0].Certificate[0]) {
		t.Error("certificate not replaced for a new host name")
	}
}
