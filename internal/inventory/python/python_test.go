package python

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/extracttest"
	"github.com/mamorisec/mamori/internal/testenv"
)

// summary renders packages as "name@version" with " dev", " [licenses]"
// and " {metadata}" when set.
func summary(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		s := p.Name + "@" + p.Version
		if p.Dev {
			s += " dev"
		}
		if len(p.Licenses) > 0 {
			s += " " + fmt.Sprint(p.Licenses)
		}
		if len(p.Metadata) > 0 {
			s += " " + fmt.Sprint(p.Metadata)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func checkPackages(t testing.TB, pkgs []inventory.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypePyPI || p.PURL != PURL(p.Name, p.Version) {
			t.Errorf("bad package %+v", p)
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"/usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA", "language/python/installed"},
		{"/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", "language/python/installed"},
		{"/usr/lib/python3/dist-packages/crit-3.17.1-py3.11.egg-info", "language/python/installed"},
		{"/site-packages/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO", "language/python/installed"},
		{"/usr/lib/python3/dist-packages/pip-23.0.1.dist-info/RECORD", ""},
		{"/src/proj/PKG-INFO", ""},
		{"/src/proj/METADATA", ""},
		{"/src/poetry.lock", "language/python/poetrylock"},
		{"/src/Pipfile.lock", "language/python/pipfilelock"},
		{"/src/Pipfile", ""},
		{"/src/requirements.txt", "language/python/requirements"},
		{"/src/requirements-dev.txt", "language/python/requirements"},
		{"/src/requirements.in", ""},
		{"/src/dev-requirements.txt", ""},
	}
	for _, tt := range tests {
		got := extracttest.RequiredBy(All(), tt.path)
		var want []string
		if tt.want != "" {
			want = []string{tt.want}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s required by %v, want %v", tt.path, got, want)
		}
	}
}

func TestPURL(t *testing.T) {
	tests := []struct{ name, version, want string }{
		{"Flask", "2.3.2", "pkg:pypi/flask@2.3.2"},
		{"zope.interface", "6.1", "pkg:pypi/zope-interface@6.1"},
		{"Ruamel_YAML..clib", "0.2.7", "pkg:pypi/ruamel-yaml-clib@0.2.7"},
		{"pkg", "1.0+local", "pkg:pypi/pkg@1.0%2Blocal"},
	}
	for _, tt := range tests {
		if got := PURL(tt.name, tt.version); got != tt.want {
			t.Errorf("PURL(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		file string
		ex   inventory.Extractor
		path string
		want []string
	}{
		{"METADATA-expression", NewInstalled(), "/site-packages/example_pkg-1.0.0rc1.dist-info/METADATA", []string{
			"example_pkg@1.0.0rc1 [MIT OR Apache-2.0]",
		}},
		{"METADATA-longlicense", NewInstalled(), "/site-packages/LongLicense.egg-info/PKG-INFO", []string{
			"LongLicense@2.0 [BSD License Apache-2.0 GPL-2.0-or-later]",
		}},
		{"legacy.egg-info", NewInstalled(), "/site-packages/legacy-0.9.egg-info", []string{"legacy@0.9"}},
		{"poetry-1.lock", NewPoetryLock(), "/app/poetry.lock", []string{
			"Flask@2.3.2", "certifi@2023.7.22", "mylib@0.3.0 map[source:git]", "pytest@7.4.0 dev",
		}},
		{"poetry-2.lock", NewPoetryLock(), "/app/poetry.lock", []string{
			"colorama@0.4.6", "ruff@0.1.9 dev", "zope.interface@6.1",
		}},
		{"Pipfile.lock", NewPipfileLock(), "/app/Pipfile.lock", []string{
			"Typing_Extensions@4.7.1 dev", "pytest@7.4.0 dev", "requests@2.31.0", "urllib3@2.0.4",
		}},
		{"requirements.txt", NewRequirements(), "/app/requirements.txt", []string{
			"django@4.2.3", "numpy@1.25.1", "requests@2.31.0", "ruamel-yaml-clib@0.2.7", "six@1.16.0", "zope-interface@6.1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := extracttest.File(t, tt.ex, tt.path, tt.file)
			checkPackages(t, pkgs)
			if got := summary(pkgs); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name    string
		ex      inventory.Extractor
		path    string
		data    string
		wantErr string
	}{
		{"metadata without name", NewInstalled(), "/s/x.dist-info/METADATA", "Metadata-Version: 2.1\nVersion: 1.0\n", "no Name header"},
		{"metadata without version", NewInstalled(), "/s/x.dist-info/METADATA", "Name: x\n", "no Version header for x"},
		{"metadata binary", NewInstalled(), "/s/x.egg-info", "\x00\x01\x02", "no Name header"},
		{"poetry not TOML", NewPoetryLock(), "/a/poetry.lock", "[[package]\nname=", "parsing poetry.lock"},
		{"poetry without version", NewPoetryLock(), "/a/poetry.lock", "[[package]]\nname = \"x\"\n", "number 1 has no name or version"},
		{"pipfile not JSON", NewPipfileLock(), "/a/Pipfile.lock", "{\"default\": [", "parsing Pipfile.lock"},
		{"pipfile wrong type", NewPipfileLock(), "/a/Pipfile.lock", `{"default": {"x": "==1.0"}}`, "parsing Pipfile.lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extracttest.CheckError(t, tt.ex, tt.path, tt.data, tt.wantErr)
		})
	}
}

// distPackages is where Debian installs Python packages.
const distPackages = "/usr/lib/python3/dist-packages"

// TestDebianDistPackages reads the metadata of the Python packages Debian
// installed and compares names and versions with what Python's
// importlib.metadata reads from the same files.
func TestDebianDistPackages(t *testing.T) {
	python := testenv.NeedCommand(t, "python3")
	var files, dists []string
	for _, pattern := range []string{"*.dist-info/METADATA", "*.egg-info/PKG-INFO", "*.egg-info"} {
		matches, err := filepath.Glob(filepath.Join(distPackages, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err != nil || !st.Mode().IsRegular() {
				continue
			}
			files = append(files, m)
			if base := filepath.Base(m); base == "METADATA" || base == "PKG-INFO" {
				m = filepath.Dir(m)
			}
			dists = append(dists, m)
		}
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, ".dist-info/") }) ||
		!slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, ".egg-info/") }) {
		testenv.Missing(t, "no .dist-info and .egg-info metadata in %s (install python3-pip and python3-six)", distPackages)
	}
	script := `
import importlib.metadata, json, pathlib, sys
out = []
for p in sys.argv[1:]:
    d = importlib.metadata.PathDistribution(pathlib.Path(p))
    out.append([d.metadata["Name"], d.version])
print(json.dumps(out))
`
	out, err := exec.Command(python, append([]string{"-c", script}, dists...)...).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want [][2]string
	if err := json.Unmarshal(out, &want); err != nil || len(want) != len(files) {
		t.Fatalf("python3 printed %d entries (%v) for %d files", len(want), err, len(files))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := extracttest.Run(t, NewInstalled(), f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		checkPackages(t, res.Packages)
		if p := res.Packages[0]; p.Name != want[i][0] || p.Version != want[i][1] {
			t.Errorf("%s: got %s %s, want %s %s", f, p.Name, p.Version, want[i][0], want[i][1])
		}
	}
	t.Logf("compared %d distributions", len(files))
}

func FuzzMetadata(f *testing.F) {
	extracttest.Seeds(f, "METADATA-expression", "METADATA-longlicense", "legacy.egg-info")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseMetadata(data)
		if err == nil {
			checkPackages(t, []inventory.Package{p})
		}
	})
}

func FuzzPoetryLock(f *testing.F) {
	extracttest.Seeds(f, "poetry-1.lock", "poetry-2.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePoetryLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzPipfileLock(f *testing.F) {
	extracttest.Seeds(f, "Pipfile.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePipfileLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzRequirements(f *testing.F) {
	extracttest.Seeds(f, "requirements.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseRequirements(data)
		if err != nil {
			t.Fatalf("ParseRequirements failed: %v", err)
		}
		checkPackages(t, pkgs)
		for _, p := range pkgs {
			if p.Name != NormalizeName(p.Name) {
				t.Errorf("name %q is not normalized", p.Name)
			}
		}
	})
}
