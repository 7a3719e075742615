package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/malware"
	"github.com/mamorisec/mamori/internal/malware/clamd/clamdtest"
)

// TestScanContentGate checks that the content controls of a policy decide
// the exit status, and that --scanners limits the analyses.
func TestScanContentGate(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	dir := t.TempDir()
	policy := func(name, controls string) string {
		p := filepath.Join(dir, name+".yaml")
		body := "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: " + name + "\ncontrols:\n" + controls
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		violation string
	}{
		{"malware", []string{"--policy", policy("malware", "  disallow_malware: true\n")}, 1, "disallow_malware"},
		{"secrets", []string{"--policy", policy("secrets", "  disallow_secrets: true\n")}, 1, "disallow_secrets"},
		{"root", []string{"--policy", policy("root", "  disallow_root: true\n")}, 1, "disallow_root"},
		{"forbidden license", []string{"--policy", policy("mit", "  licenses:\n    forbidden: [MIT]\n")}, 1, "licenses"},
		{"allowed licenses", []string{"--policy", policy("any", "  licenses:\n    forbidden_categories: [forbidden]\n")}, 0, ""},
		{"misconfiguration by CIS id", []string{"--policy", policy("cis", "  block_misconfigurations: [CIS-4.1]\n")}, 1, "block_misconfigurations"},
		{"secrets not scanned", []string{"--scanners", "vuln,malware", "--policy", policy("secrets2", "  disallow_secrets: true\n")}, 0, ""},
		{"image too old", []string{"--policy", policy("age", "  max_image_age: 30d\n")}, 1, "max_image_age"},
		{"image young enough", []string{"--policy", policy("age2", "  max_image_age: 10000d\n")}, 0, ""},
		{"required label missing", []string{"--policy", policy("labels", "  required_labels: {org.opencontainers.image.source: \"\"}\n")}, 1, "required_labels"},
		{"signature on a local layout", []string{"--policy", policy("sig", "  signature_required:\n    keys: ["+must(filepath.Abs("testdata/cosign.pub"))+"]\n")}, 1, "signature cannot be checked"},
		{"licenses not scanned fail closed", []string{"--scanners", "vuln", "--policy", policy("mit2", "  licenses:\n    forbidden: [MIT]\n")}, 1, "no license analysis ran"},
	}
	var ee *exitError
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scanJSON(t, append([]string{"--db", db, layout}, tt.args...)...)
			code := 0
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (verdict %+v)", code, tt.wantCode, s.Assurance)
			}
			if tt.violation != "" {
				got := ""
				for _, v := range s.Assurance.Violations {
					got += v.Control + ": " + v.Message + "\n"
				}
				if !strings.Contains(got, tt.violation) {
					t.Errorf("violations %q do not mention %q", got, tt.violation)
				}
			}
		})
	}

	s, err := scanJSON(t, "--db", db, "--scanners", "secret", layout)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Vulnerabilities) != 0 || len(s.Malware) != 0 || len(s.Secrets) == 0 || s.Licenses != nil || s.DB != nil {
		t.Errorf("--scanners secret: %d vulnerabilities, %d malware, %d secrets, licenses %v", len(s.Vulnerabilities), len(s.Malware), len(s.Secrets), s.Licenses != nil)
	}
	if _, err := runCLI(t, "", "scan", "-q", "--db", db, "--scanners", "vuln,secrets", layout); err == nil || !strings.Contains(err.Error(), `unknown scanner "secrets"`) {
		t.Errorf("bad --scanners: %v", err)
	}
}

// TestScanClamdDown checks that a clamd that does not answer leaves the
// scan running on the built-in engine and says so in the report.
func TestScanClamdDown(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	sock := filepath.Join(t.TempDir(), "clamd.sock")
	s, err := scanJSON(t, "--db", db, "--clamd", "unix:"+sock, layout)
	if err != nil {
		t.Fatal(err)
	}
	var problems string
	for _, r := range s.Scanners {
		if r.Name == "malware" {
			problems = strings.Join(r.Problems, "\n")
			if len(r.Engines) == 0 || r.Engines[0] != "builtin" {
				t.Errorf("malware engines %v, want builtin", r.Engines)
			}
		}
	}
	if !strings.Contains(problems, sock) || !strings.Contains(problems, "continued without ClamAV") {
		t.Errorf("malware problems %q do not say clamd at %s was skipped", problems, sock)
	}
	if len(s.Malware) == 0 {
		t.Errorf("the built-in engine found nothing without clamd")
	}

	// A clamd that accepts and never answers times out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, err = scanJSON(t, "--db", db, "--clamd", "tcp:"+l.Addr().String(), "--clamd-timeout", "300ms", layout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.Warnings, "\n"), "ClamAV") {
		t.Errorf("warnings %q do not mention ClamAV", s.Warnings)
	}
}

// TestScanDockerfile lints a Dockerfile next to the image scan.
func TestScanDockerfile(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	df := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(df, []byte("FROM debian:latest\nADD https://example.com/app.tgz /app/\nRUN curl -fsSL https://example.com/install.sh | sh\nEXPOSE 22\n"), 0o644)
	s, err := scanJSON(t, "--db", db, "--scanners", "misconfig", "--dockerfile", df, layout)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range s.Misconfigurations {
		if f.Source == "dockerfile" && f.Path == df && f.StartLine > 0 {
			n++
		}
	}
	if n < 3 {
		t.Errorf("%d Dockerfile findings, want at least 3: %+v", n, s.Misconfigurations)
	}
	if _, err := runCLI(t, "", "scan", "-q", "--db", db, "--dockerfile", filepath.Join(t.TempDir(), "missing"), layout); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

// TestScanClamdReal scans a root filesystem with a real clamd loaded with
// signatures this test writes: EICAR by a body signature and a file by its
// sha256. Both engines report, with the engine named on each finding.
func TestScanClamdReal(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "opt", "drop"), 0o755)
	os.WriteFile(filepath.Join(root, "opt", "drop", "eicar.com"), malware.EICAR(), 0o644)
	payload := []byte("mamori test payload: a file known by its hash only\n")
	os.WriteFile(filepath.Join(root, "opt", "drop", "payload.bin"), payload, 0o755)
	sum := sha256.Sum256(payload)
	d := clamdtest.Start(t, clamdtest.Config{Signatures: map[string]string{
		"test.ndb": "Mamori.Test.Eicar-1:0:0:" + hex.EncodeToString(malware.EICAR()) + "\n",
		"test.hsb": hex.EncodeToString(sum[:]) + ":" + strconv.Itoa(len(payload)) + ":Mamori.Test.Payload-1\n",
	}})
	s, err := scanJSON(t, "--scanners", "malware", "--clamd", d.Addr, "dir:"+root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range s.Malware {
		got[f.Engine+" "+f.RuleID+" "+f.Path] = true
	}
	for _, want := range []string{
		"builtin Mamori.Test.EICAR /opt/drop/eicar.com",
		"clamav Mamori.Test.Eicar-1.UNOFFICIAL /opt/drop/eicar.com",
		"clamav Mamori.Test.Payload-1.UNOFFICIAL /opt/drop/payload.bin",
	} {
		if !got[want] {
			t.Errorf("missing malware finding %q; have %v", want, got)
		}
	}
	for _, r := range s.Scanners {
		if r.Name == "malware" && (len(r.Engines) < 2 || !strings.HasPrefix(r.Engines[1], "clamav")) {
			t.Errorf("malware engines %v, want builtin and clamav", r.Engines)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
