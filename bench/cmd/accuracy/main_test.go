package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	tests := []struct {
		typ, name, version, want string
	}{
		{"pypi", "zope.interface", "4.6.0", "zope-interface@4.6.0"},
		{"pypi", "Typing_Extensions", "3.7.4", "typing-extensions@3.7.4"},
		{"golang", "github.com/Sirupsen/logrus", "v1.4.0", "github.com/sirupsen/logrus@v1.4.0"},
		{"npm", "%40babel/core", "7.12.3", "@babel/core@7.12.3"},
		{"deb", "libc6", "2.36-9+deb12u10", "libc6@2.36-9+deb12u10"},
	}
	for _, tt := range tests {
		if got := key(tt.typ, tt.name, tt.version); got != tt.want {
			t.Errorf("key(%q, %q, %q) = %q, want %q", tt.typ, tt.name, tt.version, got, tt.want)
		}
	}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	truthPath := write(t, dir, "truth.json", `{"packages": [
		{"type": "deb", "name": "adduser", "version": "3.134"},
		{"type": "deb", "name": "bash", "version": "5.2.15-2+b7"},
		{"type": "deb", "name": "vim", "version": "2:9.0.1378-2+deb12u2"},
		{"type": "pypi", "name": "six", "version": "1.16.0", "ownedBy": "deb:python3-six"},
		{"type": "pypi", "name": "zope.interface", "version": "4.6.0"},
		{"type": "golang", "name": "example.com/app", "version": "(devel)", "main": true},
		{"type": "golang", "name": "golang.org/x/text", "version": "v0.3.0"}
	]}`)
	// The epoch in a qualifier (trivy's spelling), a nested component, the
	// main module and stdlib (ignored), a PyPI name spelled differently.
	bomPath := write(t, dir, "bom.json", `{"bomFormat": "CycloneDX", "components": [
		{"purl": "pkg:deb/debian/adduser@3.134?arch=all&distro=debian-12"},
		{"purl": "pkg:deb/debian/vim@9.0.1378-2%2Bdeb12u2?arch=amd64&epoch=2"},
		{"purl": "pkg:pypi/zope-interface@4.6.0", "components": [
			{"purl": "pkg:pypi/six@1.16.0"}]},
		{"purl": "pkg:golang/example.com/app"},
		{"purl": "pkg:golang/stdlib@v1.26.8"},
		{"purl": "pkg:golang/golang.org/x/text@v0.3.0"},
		{"purl": "pkg:npm/left-pad@1.3.0"},
		{"purl": "pkg:maven/org.example/lib@1.0"},
		{"name": "no purl"}
	]}`)
	truth, ignore, err := readTruth(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	found, err := readBOM(bomPath, ignore)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	missed := report(&out, truth, []tool{{name: "x", found: found}}, 10)
	if missed["x"] != 1 {
		t.Errorf("missed = %d, want 1 (bash)\n%s", missed["x"], out.String())
	}
	for _, want := range []string{
		"| deb | 3 | 2 | 1 | 0 |",
		"| pypi | 1 | 1 | 0 | 0 |",
		"| pypi (dpkg) | 1 | 1 | 0 | 0 |",
		"| golang | 1 | 1 | 0 | 0 |",
		"| npm | 0 | 0 | 0 | 1 |",
		"| other | 0 | – | – | 1 |",
		"x missed deb (1): `bash@5.2.15-2+b7`",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
		truth               bool
	}{
		{"empty truth", `{"packages": []}`, "no packages", true},
		{"truth without version", `{"packages": [{"type": "deb", "name": "x"}]}`, "without name or version", true},
		{"truth not JSON", `dpkg`, "not a ground-truth file", true},
		{"bom not JSON", `<bom/>`, "not a CycloneDX JSON document", false},
		{"bad purl", `{"components": [{"purl": "npm:left-pad"}]}`, "component purl", false},
	}
	for _, tt := range tests {
		p := write(t, dir, "f.json", tt.content)
		var err error
		if tt.truth {
			_, _, err = readTruth(p)
		} else {
			_, err = readBOM(p, nil)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want one naming %s and %q", tt.name, err, p, tt.want)
		}
	}
}
