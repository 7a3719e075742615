package ruby

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

// summary renders a package as "name@version purl [licenses] {metadata}".
func summary(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		s := p.Name + "@" + p.Version + " " + p.PURL
		if len(p.Licenses) > 0 {
			s += " " + fmt.Sprint(p.Licenses)
		}
		if len(p.Metadata) > 0 {
			s += " " + fmt.Sprint(p.Metadata)
		}
		out = append(out, s)
	}
	return out
}

func checkPackages(t testing.TB, pkgs []inventory.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypeGem || !strings.HasPrefix(p.PURL, "pkg:gem/") {
			t.Errorf("bad package %+v", p)
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"/usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", "language/ruby/gemspec"},
		{"/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", "language/ruby/gemspec"},
		{"/usr/local/bundle/specifications/rack-2.2.8.gemspec", "language/ruby/gemspec"},
		{"/usr/share/rubygems-integration/all/specifications/webrick-1.8.1.gemspec", "language/ruby/gemspec"},
		{"/usr/local/bundle/gems/rack-2.2.8/rack.gemspec", ""},
		{"/src/app/app.gemspec", ""},
		{"/src/app/Gemfile.lock", "language/ruby/gemfilelock"},
		{"/src/app/gems.locked", "language/ruby/gemfilelock"},
		{"/src/app/Gemfile", ""},
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

func TestFiles(t *testing.T) {
	tests := []struct {
		file string
		ex   inventory.Extractor
		path string
		want []string
	}{
		{"Gemfile.lock", NewGemfileLock(), "/app/Gemfile.lock", []string{
			"widgets@0.4.0 pkg:gem/widgets@0.4.0 map[source:git]",
			"actionpack@7.0.8 pkg:gem/actionpack@7.0.8",
			"mini_portile2@2.8.5 pkg:gem/mini_portile2@2.8.5",
			"nokogiri@1.15.5 pkg:gem/nokogiri@1.15.5 map[platforms:aarch64-linux,x86_64-linux]",
			"racc@1.7.3 pkg:gem/racc@1.7.3",
			"rack@2.2.8 pkg:gem/rack@2.2.8",
			"rack-test@2.1.0 pkg:gem/rack-test@2.1.0",
			"sqlite3@1.6.9 pkg:gem/sqlite3@1.6.9 map[platforms:x86_64-linux]",
		}},
		{"old-style.gemspec", NewGemspec(), "/gems/specifications/legacy-gem-0.9.2.gemspec", []string{
			"legacy-gem@0.9.2 pkg:gem/legacy-gem@0.9.2 [BSD-3-Clause]",
		}},
		{"native.gemspec", NewGemspec(), "/gems/specifications/nokogiri-1.15.5-x86_64-linux.gemspec", []string{
			"nokogiri@1.15.5 pkg:gem/nokogiri@1.15.5?platform=x86_64-linux [MIT] map[platform:x86_64-linux]",
		}},
		{"stub-only.gemspec", NewGemspec(), "/gems/specifications/computed-2.0.0.gemspec", []string{
			"computed@2.0.0 pkg:gem/computed@2.0.0",
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
		{"gemspec without version", NewGemspec(), "/g/specifications/x-1.gemspec", "Gem::Specification.new do |s|\n  s.name = \"x\"\nend\n", "no string literal for s.name or s.version"},
		{"gemspec binary", NewGemspec(), "/g/specifications/x-1.gemspec", "\x00\xff", "no string literal"},
		{"lock bad spec line", NewGemfileLock(), "/a/Gemfile.lock", "GEM\n  remote: https://rubygems.org/\n  specs:\n    rack 2.2.8\n", `line 4: expected "    NAME (VERSION)" in the GEM specs`},
		{"lock platform without version", NewGemfileLock(), "/a/Gemfile.lock", "GEM\n  specs:\n    rack (-java)\n", "line 3: gem rack has no version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extracttest.CheckError(t, tt.ex, tt.path, tt.data, tt.wantErr)
		})
	}
}

// TestDebianGemspecs reads the gem specifications Debian's ruby package
// installs and compares them with what RubyGems itself loads from the same
// files.
func TestDebianGemspecs(t *testing.T) {
	ruby := testenv.NeedCommand(t, "ruby")
	var files []string
	for _, pattern := range []string{
		"/usr/share/rubygems-integration/*/specifications/*.gemspec",
		"/usr/lib/*/rubygems-integration/*/specifications/*.gemspec",
		"/usr/lib/ruby/gems/*/specifications/*.gemspec",
		"/usr/lib/ruby/gems/*/specifications/default/*.gemspec",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		testenv.Missing(t, "only %d gemspecs found (install the Debian ruby package)", len(files))
	}
	script := `
require "json"
out = ARGV.map do |f|
  s = Gem::Specification.load(f)
  {name: s.name, version: s.version.to_s, platform: s.platform.to_s, licenses: s.licenses}
end
puts JSON.generate(out)
`
	out, err := exec.Command(ruby, append([]string{"-e", script}, files...)...).Output()
	if err != nil {
		t.Fatalf("ruby: %v", err)
	}
	var want []struct {
		Name, Version, Platform string
		Licenses                []string
	}
	if err := json.Unmarshal(out, &want); err != nil || len(want) != len(files) {
		t.Fatalf("ruby printed %d entries (%v) for %d files", len(want), err, len(files))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := extracttest.Run(t, NewGemspec(), f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		checkPackages(t, res.Packages)
		p, w := res.Packages[0], want[i]
		if p.Name != w.Name || p.Version != w.Version || p.PURL != PURL(w.Name, w.Version, w.Platform) || !slices.Equal(p.Licenses, w.Licenses) {
			t.Errorf("%s: got %s %s %s %q, want %s %s %s %q", f, p.Name, p.Version, p.PURL, p.Licenses, w.Name, w.Version, w.Platform, w.Licenses)
		}
	}
	t.Logf("compared %d gemspecs", len(files))
}

func FuzzGemspec(f *testing.F) {
	extracttest.Seeds(f, "old-style.gemspec", "native.gemspec", "stub-only.gemspec")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseGemspec(data)
		if err == nil {
			checkPackages(t, []inventory.Package{p})
		}
	})
}

func FuzzGemfileLock(f *testing.F) {
	extracttest.Seeds(f, "Gemfile.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseGemfileLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}
