package license

import (
	"os"
	"reflect"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

// classifyFile returns the findings for a testdata file as the walk would
// report them at path p.
func classifyFile(t *testing.T, file, p string) []inventory.Finding {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fs := Classify(b)
	for i := range fs {
		fs[i].Path = p
	}
	return fs
}

func TestAnalyze(t *testing.T) {
	var findings []inventory.Finding
	for _, f := range []struct{ file, path string }{
		{"testdata/npm/ms-2.1.3-license.md", "/app/node_modules/ms/license.md"},
		{"testdata/npm/once-1.4.0-LICENSE", "/app/node_modules/@scope/once/LICENSE"},
		{"testdata/npm/qs-6.17.1-LICENSE.md", "/usr/lib/python3/dist-packages/attrs-23.2.0.dist-info/licenses/LICENSE"},
		{"testdata/npm/rxjs-7.8.2-LICENSE.txt", "/usr/local/bundle/gems/rack-3.0.8/MIT-LICENSE"},
		{"testdata/npm/tslib-2.9.1-LICENSE.txt", "/app/LICENSE"},
		{"testdata/npm/qs-6.17.1-LICENSE.md", "/var/www/vendor/acme/lib/LICENSE"},
		{"testdata/npm/qs-6.17.1-LICENSE.md", "/usr/lib/python3/dist-packages/colorama-0.4.6.dist-info/LICENSE.txt"},
	} {
		findings = append(findings, classifyFile(t, f.file, f.path)...)
	}
	findings = append(findings, inventory.Finding{Kind: inventory.KindSecret, RuleID: "x", Path: "/app/node_modules/ms/LICENSE"})
	rep := &inventory.Report{
		Packages: []inventory.Package{
			{Name: "bash", Version: "5.2", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status", Licenses: []string{"GPL-3.0-or-later"}, SourceName: "bash", SourceVersion: "5.2"},
			{Name: "libfoo", Version: "1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status", SourceName: "foo", SourceVersion: "1"},
			{Name: "ms", Version: "2.1.3", Type: inventory.TypeNPM, Path: "/app/node_modules/ms/package.json", Licenses: []string{"MIT"}},
			{Name: "@scope/once", Version: "1.4.0", Type: inventory.TypeNPM, Path: "/app/node_modules/@scope/once/package.json", Licenses: []string{"SEE LICENSE IN LICENSE"}},
			{Name: "attrs", Version: "23.2.0", Type: inventory.TypePyPI, Path: "/usr/lib/python3/dist-packages/attrs-23.2.0.dist-info/METADATA"},
			{Name: "rack", Version: "3.0.8", Type: inventory.TypeGem, Path: "/usr/local/bundle/specifications/rack-3.0.8.gemspec", Licenses: []string{"Nonsense"}},
			{Name: "acme/lib", Version: "1.0", Type: inventory.TypeComposer, Path: "/var/www/vendor/composer/installed.json", Licenses: []string{"MIT", "GPL-3.0-only"}},
			{Name: "bash-doc", Version: "5.2", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status", SourceName: "bash", SourceVersion: "5.2"},
			{Name: "colorama", Version: "0.4.6", Type: inventory.TypePyPI, Path: "/usr/lib/python3/dist-packages/colorama-0.4.6.dist-info/METADATA", Licenses: []string{"BSD License", "LicenseRef-GPL"}},
			{Name: "stdlib", Version: "v1.26.8", Type: inventory.TypeGolang, Path: "/usr/local/bin/app"},
			{Name: "bash-old", Version: "5.1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status", SourceName: "bash", SourceVersion: "5.1"},
		},
		Findings: findings,
	}
	r := Analyze(rep)
	type row struct {
		expr   string
		cat    Category
		source string
		files  []string
	}
	want := map[string]row{
		"bash":        {"GPL-3.0-or-later", StrongCopyleft, FromDeclared, nil},
		"libfoo":      {"", Unknown, "", nil},
		"ms":          {"MIT", Permissive, FromDeclared, []string{"/app/node_modules/ms/license.md"}},
		"@scope/once": {"ISC", Permissive, FromFile, []string{"/app/node_modules/@scope/once/LICENSE"}},
		"attrs":       {"BSD-3-Clause", Permissive, FromFile, []string{"/usr/lib/python3/dist-packages/attrs-23.2.0.dist-info/licenses/LICENSE"}},
		"rack":        {"Apache-2.0", Permissive, FromFile, []string{"/usr/local/bundle/gems/rack-3.0.8/MIT-LICENSE"}},
		"acme/lib":    {"MIT OR GPL-3.0-only", Permissive, FromDeclared, []string{"/var/www/vendor/acme/lib/LICENSE"}},
		"bash-doc":    {"GPL-3.0-or-later", StrongCopyleft, FromSourcePackage, nil},
		"bash-old":    {"", Unknown, "", nil},
		"stdlib":      {"BSD-3-Clause", Permissive, FromWellKnown, nil},
		"colorama":    {"BSD-3-Clause AND LicenseRef-GPL", StrongCopyleft, FromDeclared, []string{"/usr/lib/python3/dist-packages/colorama-0.4.6.dist-info/LICENSE.txt"}},
	}
	if len(r.Packages) != len(rep.Packages) {
		t.Fatalf("%d packages, want %d", len(r.Packages), len(rep.Packages))
	}
	for _, p := range r.Packages {
		got := row{p.Expression, p.Category, p.Source, p.Files}
		if !reflect.DeepEqual(got, want[p.Name]) {
			t.Errorf("%s: %+v, want %+v", p.Name, got, want[p.Name])
		}
	}
	if len(r.Files) != 1 || r.Files[0].Path != "/app/LICENSE" || r.Files[0].RuleID != "0BSD" {
		t.Errorf("unattributed files = %+v, want /app/LICENSE (0BSD)", r.Files)
	}
	s := r.Summary
	if s.Packages != 11 || s.WithLicense != 9 || s.ByCategory[Permissive] != 6 || s.ByCategory[StrongCopyleft] != 3 ||
		s.ByCategory[Unknown] != 2 || s.ByLicense["MIT"] != 2 || s.ByLicense["GPL-3.0-only"] != 1 ||
		!reflect.DeepEqual(s.Unknown, []string{rep.Packages[1].Key(), rep.Packages[10].Key()}) {
		t.Errorf("summary = %+v", s)
	}
	if p := r.Packages[5]; !reflect.DeepEqual(p.Unrecognized, []string{"Nonsense"}) || !reflect.DeepEqual(p.Declared, []string{"Nonsense"}) {
		t.Errorf("rack: declared %q unrecognized %q", p.Declared, p.Unrecognized)
	}
}

func TestPackageRoot(t *testing.T) {
	for _, c := range []struct {
		p    inventory.Package
		want string
	}{
		{inventory.Package{Type: inventory.TypeNPM, Path: "/a/node_modules/x/package.json"}, "/a/node_modules/x"},
		{inventory.Package{Type: inventory.TypeNPM, Path: "/a/package-lock.json"}, ""},
		{inventory.Package{Type: inventory.TypePyPI, Path: "/s/x-1.dist-info/METADATA"}, "/s/x-1.dist-info"},
		{inventory.Package{Type: inventory.TypePyPI, Path: "/s/x-1.egg-info/PKG-INFO"}, "/s/x-1.egg-info"},
		{inventory.Package{Type: inventory.TypePyPI, Path: "/app/requirements.txt"}, ""},
		{inventory.Package{Type: inventory.TypeGem, Path: "/g/specifications/default/json-2.7.gemspec"}, "/g/gems/json-2.7"},
		{inventory.Package{Type: inventory.TypeGem, Path: "/app/Gemfile.lock"}, ""},
		{inventory.Package{Type: inventory.TypeComposer, Name: "a/b", Path: "/w/vendor/composer/installed.json"}, "/w/vendor/a/b"},
		{inventory.Package{Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status"}, ""},
	} {
		if got := packageRoot(&c.p); got != c.want {
			t.Errorf("packageRoot(%s %s) = %q, want %q", c.p.Type, c.p.Path, got, c.want)
		}
	}
}
