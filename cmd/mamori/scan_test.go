package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/vuln"
)

// demoDB builds a database from the demo feed.
func demoDB(t *testing.T) string {
	t.Helper()
	feed := filepath.Join(t.TempDir(), "feed")
	if err := demo.WriteFeed(feed); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "demo.db")
	if out, err := runCLI(t, "", "db", "build", "-o", db, feed); err != nil {
		t.Fatalf("db build: %v\n%s", err, out)
	}
	return db
}

func scanJSON(t *testing.T, args ...string) (*report.Scan, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "scan.json")
	_, err := runCLI(t, "", append([]string{"scan", "-q", "--no-cache", "-f", "json", "-o", out}, args...)...)
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("no report written (%v): %v", err, rerr)
	}
	var s report.Scan
	if jerr := json.Unmarshal(b, &s); jerr != nil {
		t.Fatalf("report is not JSON: %v", jerr)
	}
	return &s, err
}

func byID(s *report.Scan) map[string]vuln.Finding {
	m := map[string]vuln.Finding{}
	for _, f := range s.Vulnerabilities {
		m[f.ID] = f
	}
	return m
}

func TestScanDemo(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	s, err := scanJSON(t, "--db", db, layout)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(s)
	tests := []struct {
		id, pkg string
		status  vuln.Status
		sev     vuln.Severity
		reach   string
	}{
		{"DEMO-CVE-2026-1001", "demo-tls", vuln.StatusFixed, vuln.SeverityCritical, ""},
		{"DEMO-CVE-2026-1002", "demo-base", vuln.StatusNotFixed, vuln.SeverityMedium, ""},
		{"DEMO-CVE-2026-1003", "PyYAML", vuln.StatusFixed, vuln.SeverityCritical, ""},
		{"DEMO-CVE-2026-1005", "lodash", vuln.StatusFixed, vuln.SeverityHigh, ""},
		{"MAMORI-DEMO-GO-0007", "github.com/spf13/pflag", vuln.StatusFixed, vuln.SeverityUnknown, vuln.ReachableYes},
		{"MAMORI-DEMO-GO-0008", "golang.org/x/term", vuln.StatusFixed, vuln.SeverityUnknown, vuln.ReachableNo},
	}
	for _, tt := range tests {
		f, ok := got[tt.id]
		if !ok {
			t.Errorf("%s: missing", tt.id)
			continue
		}
		if f.Package.Name != tt.pkg || f.Status != tt.status || f.Severity != tt.sev {
			t.Errorf("%s: %s %s %s, want %s %s %s", tt.id, f.Package.Name, f.Status, f.Severity, tt.pkg, tt.status, tt.sev)
		}
		if tt.reach != "" && (f.Reachability == nil || f.Reachability.Status != tt.reach) {
			t.Errorf("%s: reachability %+v, want %s", tt.id, f.Reachability, tt.reach)
		}
	}
	// The dpkg-owned PyYAML 6.0 is matched through Debian only.
	for _, f := range s.Vulnerabilities {
		if f.Package.Name == "PyYAML" && f.Package.Version != "5.3" {
			t.Errorf("distro-owned %s %s matched as a PyPI package", f.Package.Name, f.Package.Version)
		}
	}
	if lodash := got["DEMO-CVE-2026-1005"]; len(lodash.Records) != 2 {
		t.Errorf("lodash records %v, want the two aliased records merged", lodash.Records)
	}
	for _, format := range report.Formats() {
		if out, err := runCLI(t, "", "scan", "-q", "--no-cache", "--db", db, "-f", format, layout); err != nil || len(out) < 100 {
			t.Errorf("-f %s: %v, %d bytes", format, err, len(out))
		}
	}
}

func TestScanGate(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ignore := write("ignore.yaml", `- id: DEMO-CVE-2026-1001
  reason: demo-tls is only used for tests
- id: DEMO-CVE-2026-1003
  reason: not loaded with the unsafe loader
`)
	vex := write("vex.json", `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/1",
  "author": "security@example.com",
  "timestamp": "2026-11-01T00:00:00Z",
  "version": 1,
  "statements": [{
    "vulnerability": {"name": "DEMO-CVE-2026-1005"},
    "products": [{"@id": "pkg:npm/lodash@4.17.15"}],
    "status": "not_affected",
    "justification": "vulnerable_code_not_in_execute_path"
  }]
}`)
	policy := write("policy.yaml", `apiVersion: mamori.dev/v1
kind: AssurancePolicy
name: production
controls:
  max_severity: HIGH
  ignore_unreachable: true
`)
	var ee *exitError
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"no gate", nil, 0},
		{"exit code on any finding", []string{"--exit-code", "3"}, 3},
		{"critical only, both suppressed", []string{"--exit-code", "3", "--severity", "CRITICAL", "--ignorefile", ignore}, 0},
		{"critical only", []string{"--exit-code", "3", "--severity", "CRITICAL"}, 3},
		{"high: lodash suppressed by VEX", []string{"--exit-code", "4", "--severity", "HIGH", "--vex", vex}, 0},
		{"high without VEX", []string{"--exit-code", "4", "--severity", "HIGH"}, 4},
		{"ignore unfixed leaves the fixed ones", []string{"--exit-code", "5", "--ignore-unfixed", "--severity", "MEDIUM"}, 5},
		{"policy fails on criticals", []string{"--policy", policy}, 1},
		{"policy passes once they are suppressed", []string{"--policy", policy, "--ignorefile", ignore, "--vex", vex}, 0},
	}
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
				t.Errorf("exit code %d, want %d (verdict %+v)", code, tt.wantCode, s.Assurance)
			}
			if strings.Contains(strings.Join(tt.args, " "), "--ignorefile") {
				f := byID(s)["DEMO-CVE-2026-1001"]
				if f.Suppressed == nil || f.Suppressed.Kind != "ignore" || f.Suppressed.Justification == "" {
					t.Errorf("suppressed finding not kept in JSON with its reason: %+v", f.Suppressed)
				}
			}
		})
	}
}

func TestScanBadInput(t *testing.T) {
	layout := "oci-layout:" + demoLayout(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	os.WriteFile(corrupt, []byte("this is not a database"), 0o644)
	badPolicy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(badPolicy, []byte("apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: x\ncontrols:\n  max_severitee: HIGH\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing db", []string{"--db", filepath.Join(dir, "none.db"), layout}, "mamori db update"},
		{"corrupt db", []string{"--db", corrupt, layout}, "corrupt.db"},
		{"bad policy", []string{"--db", corrupt, "--policy", badPolicy, layout}, "max_severitee"},
		{"bad severity", []string{"--severity", "SEVERE", layout}, "SEVERE"},
		{"bad format", []string{"-f", "xml", layout}, "xml"},
		{"missing vex", []string{"--vex", filepath.Join(dir, "none.json"), layout}, "none.json"},
	}
	for _, tt := range tests {
		out, err := runCLI(t, "", append([]string{"scan", "-q"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v (out %q), want one naming %q", tt.name, err, out, tt.want)
		}
	}
}

// osvZip returns an all.zip holding the demo feed.
func osvZip(t *testing.T) []byte {
	t.Helper()
	feed := filepath.Join(t.TempDir(), "feed")
	if err := demo.WriteFeed(feed); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	entries, _ := os.ReadDir(feed)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(feed, e.Name()))
		w, _ := zw.Create(e.Name())
		w.Write(b)
	}
	zw.Close()
	return buf.Bytes()
}

func TestDBUpdateExportImport(t *testing.T) {
	body := osvZip(t)
	var requests, conditional atomic.Int32
	var broken atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if broken.Load() {
			http.Error(w, "<html>maintenance</html>", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	sources := filepath.Join(dir, "sources.yaml")
	os.WriteFile(sources, []byte("sources:\n  - name: demo\n    url: "+srv.URL+"/demo/all.zip\n    format: osv-zip\n"), 0o644)
	db := filepath.Join(dir, "db", "mamori.db")
	layout := "oci-layout:" + demoLayout(t)

	if out, err := runCLI(t, "", "db", "update", "--db", db, "--sources", sources); err != nil {
		t.Fatalf("first update: %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "db", "update", "--db", db, "--sources", sources)
	if err != nil || conditional.Load() != 1 || !strings.Contains(out, "up to date") {
		t.Fatalf("second update: %v, %d conditional requests\n%s", err, conditional.Load(), out)
	}
	status, err := runCLI(t, "", "db", "status", "--db", db)
	if err != nil || !strings.Contains(status, "demo") || !strings.Contains(status, "records:   9") {
		t.Errorf("status: %v\n%s", err, status)
	}

	// A failed update leaves the old database working.
	broken.Store(true)
	os.RemoveAll(filepath.Join(dir, "db", "sources"))
	if _, err := runCLI(t, "", "db", "update", "--db", db, "--sources", sources); err == nil || !strings.Contains(err.Error(), "not changed") {
		t.Errorf("update against a broken server: err = %v", err)
	}
	if s, err := scanJSON(t, "--db", db, layout); err != nil || len(s.Vulnerabilities) < 6 {
		t.Fatalf("scan after failed update: %v", err)
	}

	// Export, then import into a fresh path; a damaged bundle leaves the
	// imported database untouched.
	bundle := filepath.Join(dir, "offline.bundle")
	if out, err := runCLI(t, "", "db", "export", "--db", db, bundle); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	airgap := filepath.Join(dir, "airgap", "mamori.db")
	if out, err := runCLI(t, "", "db", "import", "--db", airgap, bundle); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	before, _ := os.ReadFile(airgap)
	data, _ := os.ReadFile(bundle)
	for _, n := range []int{len(data) / 3, len(data) - 10} {
		bad := filepath.Join(dir, "bad.bundle")
		os.WriteFile(bad, data[:n], 0o644)
		if _, err := runCLI(t, "", "db", "import", "--db", airgap, bad); err == nil || !strings.Contains(err.Error(), "bad.bundle") {
			t.Errorf("truncated bundle (%d bytes): err = %v", n, err)
		}
	}
	after, _ := os.ReadFile(airgap)
	if !bytes.Equal(before, after) {
		t.Error("a failed import changed the database")
	}
	if s, err := scanJSON(t, "--db", airgap, layout); err != nil || len(s.Vulnerabilities) < 6 {
		t.Fatalf("scan with the imported database: %v", err)
	}
}

func TestScanWarnsOnStaleDB(t *testing.T) {
	db, layout := demoDB(t), "oci-layout:"+demoLayout(t)
	s, err := scanJSON(t, "--db", db, "--db-max-age", "1ns", layout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.Warnings, "\n"), "db-max-age") {
		t.Errorf("warnings = %q, want a stale database warning", s.Warnings)
	}
}
