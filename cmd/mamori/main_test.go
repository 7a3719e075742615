package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/testenv"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRoot()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func demoLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Write(dir, self); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDemoEndToEnd(t *testing.T) {
	out, err := runCLI(t, "", "demo", "-f", "json", "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	var scan report.Scan
	if err := json.Unmarshal([]byte(out), &scan); err != nil || scan.Inventory == nil {
		t.Fatalf("demo -f json is not a JSON scan report: %v", err)
	}
	if len(scan.Vulnerabilities) < 7 || scan.DB == nil || scan.DB.Records != 9 {
		t.Errorf("demo found %d vulnerabilities with %+v, want the demo feed's", len(scan.Vulnerabilities), scan.DB)
	}
	// The demo's fake secrets, miner configuration, malicious package and
	// root user are found, and no secret value appears in the report.
	rules := map[string]bool{}
	for _, fs := range [][]inventory.Finding{scan.Secrets, scan.Malware, scan.Misconfigurations} {
		for _, f := range fs {
			rules[f.Kind+"/"+f.RuleID+"@"+f.Path] = true
		}
	}
	for _, want := range []string{
		"secret/url-password@/srv/app/.env", "secret/aws-secret-access-key@/srv/app/.env", "secret/url-password@REPORTS_DB",
		"malware/Mamori.Miner.XMRig.Config@/opt/tools/config.json", "malware/MAL-DEMO-2026-0009@npm:@demo/color-helper@1.0.2",
		"misconfiguration/MISC-001@", "misconfiguration/MISC-006@",
	} {
		found := false
		for r := range rules {
			found = found || strings.HasPrefix(r, want)
		}
		if !found {
			t.Errorf("demo scan lacks %s; has %v", want, rules)
		}
	}
	for _, secret := range []string{"Qm7tR2vX9pLk4wZs", "q8Fz3LrT0vWx6Yb2Nc5Md1Kp7Hs4Gj9Ae2Ui0Ro3", "Vb4nK8sQ2mXz7Lp0"} {
		if strings.Contains(out, secret) {
			t.Errorf("the demo report holds the secret %q in clear", secret)
		}
	}
	for _, f := range scan.Malware {
		if f.Path == "/usr/local/bin/mamori" {
			t.Errorf("the malware engine detects mamori itself: %s (%s)", f.RuleID, f.Match)
		}
	}
	if scan.Licenses == nil || scan.Licenses.Summary.WithLicense == 0 {
		t.Errorf("demo scan has no license analysis: %+v", scan.Licenses)
	}
	rep := scan.Inventory
	got := map[string]inventory.Package{}
	for _, p := range rep.Packages {
		got[p.Type+":"+p.Name+"@"+p.Version] = p
	}
	for _, want := range []string{
		"deb:demo-base@12.4", "deb:demo-tls@3.0.11-1~deb12u1", "deb:demo-python3-yaml@1:6.0-3+b2",
		"npm:lodash@4.17.15", "npm:@demo/logger@0.3.1", "pypi:requests@2.25.0", "pypi:PyYAML@5.3", "pypi:PyYAML@6.0",
		"golang:github.com/spf13/cobra@v1.10.2",
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	if _, ok := got["npm:minimist@1.2.0"]; ok {
		t.Error("minimist was deleted by a whiteout in layer 2 but is reported")
	}
	if _, ok := got["deb:demo-removed@0.1"]; ok {
		t.Error("a package in config-files state is reported as installed")
	}
	if p := got["pypi:PyYAML@6.0"]; p.OwnedBy != "deb:demo-python3-yaml" {
		t.Errorf("PyYAML 6.0 ownedBy = %q, want deb:demo-python3-yaml", p.OwnedBy)
	}
	if p := got["deb:demo-tls@3.0.11-1~deb12u1"]; p.SourceName != "demo-tls-src" || !slices.Equal(p.Licenses, []string{"Apache-2.0"}) ||
		p.PURL != "pkg:deb/debian/demo-tls@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=demo-tls-src" {
		t.Errorf("demo-tls = %+v", p)
	}
	if p := got["npm:lodash@4.17.15"]; p.Layer.Index != 1 || !strings.Contains(p.Layer.CreatedBy, "COPY app") || p.Layer.DiffID == "" {
		t.Errorf("lodash layer = %+v", p.Layer)
	}
	if rep.OS == nil || rep.OS.ID != "debian" || rep.OS.VersionID != "12" {
		t.Errorf("OS = %+v", rep.OS)
	}
}

func TestSBOMFormats(t *testing.T) {
	dir := demoLayout(t)
	for _, f := range []string{"table", "json", "cyclonedx", "spdx"} {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := runCLI(t, "", "sbom", "oci-layout:"+dir, "-f", f, "-o", out, "--cache-dir", t.TempDir()); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("lodash")) {
			t.Errorf("%s output lacks lodash", f)
		}
		if f != "table" && !json.Valid(b) {
			t.Errorf("%s output is not valid JSON", f)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(garbage, []byte("this is not a tar file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.json")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sbom", garbage, "-o", out}, garbage},
		{[]string{"sbom", "docker-archive:" + filepath.Join(dir, "missing.tar"), "-o", out}, "missing.tar"},
		{[]string{"sbom", "oci-layout:" + dir, "-f", "xml"}, `unknown format "xml"`},
		{[]string{"sbom"}, "accepts 1 arg"},
	}
	for _, tc := range tests {
		_, err := runCLI(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Errorf("a failed scan changed the output file: %q", b)
	}
}

func TestRescanUsesCache(t *testing.T) {
	dir := demoLayout(t)
	cache := t.TempDir()
	first, err := runCLI(t, "", "sbom", "oci-layout:"+dir, "-f", "json", "--cache-dir", cache)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := os.ReadDir(filepath.Join(cache, "layers"))
	if err != nil || len(layers) != 4 {
		t.Fatalf("layer cache has %d entries (%v), want one per layer (4)", len(layers), err)
	}
	images, err := os.ReadDir(filepath.Join(cache, "images"))
	if err != nil || len(images) != 1 {
		t.Fatalf("image cache has %d entries (%v), want 1", len(images), err)
	}
	second, err := runCLI(t, "", "sbom", "oci-layout:"+dir, "-f", "json", "--cache-dir", cache)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("rescan from the image report cache differs from the first scan")
	}
	// Without the image report, the per-layer results alone give the same
	// answer (another image sharing these layers).
	if err := os.RemoveAll(filepath.Join(cache, "images")); err != nil {
		t.Fatal(err)
	}
	third, err := runCLI(t, "", "sbom", "oci-layout:"+dir, "-f", "json", "--cache-dir", cache)
	if err != nil {
		t.Fatal(err)
	}
	if first != third {
		t.Error("rescan from per-layer results differs from the first scan")
	}
}

// TestRegistryWithAuth pushes the demo image to a real registry (Debian's
// docker-registry with htpasswd auth on 127.0.0.1) and scans it by reference,
// with the password on stdin.
func TestRegistryWithAuth(t *testing.T) {
	reg := testenv.Distribution(t, true)
	dir := demoLayout(t)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host+"/demo/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, reg.Password+"\n", "sbom", "registry:"+reg.Host+"/demo/app:1", "--insecure",
		"--username", reg.Username, "--password-stdin", "-f", "json", "--no-cache")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"name": "lodash"`) {
		t.Errorf("registry scan lacks lodash:\n%.500s", out)
	}
	_, err = runCLI(t, "wrong\n", "sbom", "registry:"+reg.Host+"/demo/app:1", "--insecure",
		"--username", reg.Username, "--password-stdin", "--no-cache")
	if err == nil || !strings.Contains(err.Error(), reg.Host) {
		t.Errorf("wrong password: err = %v, want an error naming the registry", err)
	}
}
