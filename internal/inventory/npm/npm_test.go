package npm

import (
	"encoding/json"
	"fmt"
	"io/fs"
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

// summary renders packages as "name@version" with " dev" and
// " [licenses]" when set, sorted.
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
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// checkPackages verifies the fields every extractor must fill.
func checkPackages(t testing.TB, pkgs []inventory.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypeNPM || p.PURL != PURL(p.Name, p.Version) {
			t.Errorf("bad package %+v", p)
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		want string // name of the extractor that wants the path, "" for none
	}{
		{"/app/node_modules/express/package.json", "language/npm/installed"},
		{"/app/node_modules/@babel/core/package.json", "language/npm/installed"},
		{"/app/node_modules/a/node_modules/b/package.json", "language/npm/installed"},
		{"/app/node_modules/.pnpm/react@18.2.0/node_modules/react/package.json", "language/npm/installed"},
		{"/app/node_modules/express/lib/package.json", ""},
		{"/app/node_modules/@babel/core/lib/package.json", ""},
		{"/app/node_modules/@babel/package.json", ""},
		{"/app/node_modules/package.json", ""},
		{"/app/node_modules/.bin/package.json", ""},
		{"/app/package.json", ""},
		{"/app/package-lock.json", "language/npm/packagelock"},
		{"/app/npm-shrinkwrap.json", "language/npm/packagelock"},
		{"/app/node_modules/.package-lock.json", ""},
		{"/app/node_modules/x/package-lock.json", ""},
		{"/app/yarn.lock", "language/npm/yarnlock"},
		{"/app/node_modules/x/yarn.lock", ""},
		{"/app/pnpm-lock.yaml", "language/npm/pnpmlock"},
		{"/app/node_modules/x/pnpm-lock.yaml", ""},
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
		{"@babel/core", "7.1.0", "pkg:npm/%40babel/core@7.1.0"},
		{"express", "4.17.1", "pkg:npm/express@4.17.1"},
		{"JSONStream", "1.3.5", "pkg:npm/jsonstream@1.3.5"},
		{"x", "1.0.0-rc.1+build", "pkg:npm/x@1.0.0-rc.1%2Bbuild"},
	}
	for _, tt := range tests {
		if got := PURL(tt.name, tt.version); got != tt.want {
			t.Errorf("PURL(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

func TestLockfiles(t *testing.T) {
	tests := []struct {
		file string
		ex   inventory.Extractor
		path string
		want []string
	}{
		{"package-lock-v1.json", NewLockfile(), "/app/package-lock.json", []string{
			"debug@2.6.9", "ms@2.0.0", "ms@2.1.3", "send@0.17.1", "string-width@4.2.3 dev",
		}},
		{"package-lock-v3.json", NewLockfile(), "/app/npm-shrinkwrap.json", []string{
			"@babel/core@7.20.12 [MIT]", "maybe@1.0.0", "old-style@1.0.0 [MIT Apache-2.0]",
			"semver@6.3.1 dev [ISC]", "semver@7.5.4 [ISC]", "string-width@4.2.3 dev [MIT]",
		}},
		{"yarn-v1.lock", NewYarnLock(), "/app/yarn.lock", []string{
			"@babel/helper-plugin-utils@7.20.2", "debug@4.3.4", "left-pad@1.3.0", "ms@2.1.2", "string-width@4.2.3",
		}},
		{"yarn-berry.lock", NewYarnLock(), "/app/yarn.lock", []string{
			"@types/node@20.11.5", "resolve@1.22.8", "string-width@4.2.3", "undici-types@5.26.5", "version-one@1.10",
		}},
		{"pnpm-v5.yaml", NewPnpmLock(), "/app/pnpm-lock.yaml", []string{
			"@babel/runtime@7.20.13", "js-tokens@4.0.0", "loose-envify@1.4.0", "react-dom@18.2.0",
			"react@18.2.0", "regenerator-runtime@0.13.11", "tool@2.0.0", "typescript@4.9.5 dev",
		}},
		{"pnpm-v6.yaml", NewPnpmLock(), "/app/pnpm-lock.yaml", []string{
			"@emotion/react@11.11.1", "loose-envify@1.4.0", "react@18.2.0", "vitest@1.2.1 dev",
		}},
		{"pnpm-v9.yaml", NewPnpmLock(), "/app/pnpm-lock.yaml", []string{
			"@emotion/react@11.11.1", "js-tokens@4.0.0", "loose-envify@1.4.0", "react@18.2.0",
			"string-width@4.2.3", "tinypool@0.8.2 dev", "vitest@1.2.1 dev",
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
		{"package.json not JSON", NewInstalled(), "/a/node_modules/x/package.json", "{", "parsing package.json"},
		{"package.json name not a string", NewInstalled(), "/a/node_modules/x/package.json", `{"name": 1, "version": "1.0.0"}`, `"name" is not a string`},
		{"package lock not JSON", NewLockfile(), "/a/package-lock.json", "[1,", "parsing package lock"},
		{"package lock wrong type", NewLockfile(), "/a/package-lock.json", `{"packages": []}`, "parsing package lock"},
		{"yarn header without colon", NewYarnLock(), "/a/yarn.lock", "left-pad@^1.0.0\n  version \"1.0.0\"\n", "line 1"},
		{"yarn entry without version", NewYarnLock(), "/a/yarn.lock", "a@^1.0.0:\n  resolved \"x\"\n", "entry on line 1 has no version"},
		{"yarn field outside entry", NewYarnLock(), "/a/yarn.lock", "  version \"1.0.0\"\n", "field outside an entry"},
		{"yarn berry bad YAML", NewYarnLock(), "/a/yarn.lock", "__metadata:\n  version: 6\n\"a@npm:1\": [", "parsing yarn.lock"},
		{"yarn berry no version", NewYarnLock(), "/a/yarn.lock", "__metadata:\n  version: 6\n\"a@npm:1\":\n  resolution: \"a@npm:1.0.0\"\n", "has no version"},
		{"pnpm bad YAML", NewPnpmLock(), "/a/pnpm-lock.yaml", "lockfileVersion: [", "parsing pnpm-lock.yaml"},
		{"pnpm no version", NewPnpmLock(), "/a/pnpm-lock.yaml", "packages:\n  /a@1.0.0: {}\n", "no lockfileVersion"},
		{"pnpm bad key", NewPnpmLock(), "/a/pnpm-lock.yaml", "lockfileVersion: '6.0'\npackages:\n  /nonsense: {}\n", `package key "/nonsense"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extracttest.CheckError(t, tt.ex, tt.path, tt.data, tt.wantErr)
		})
	}
}

func TestPackageJSON(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"string license", `{"name": "express", "version": "4.17.1", "license": "MIT"}`, []string{"express@4.17.1 [MIT]"}},
		{"object license", `{"name": "@scope/x", "version": "1.0.0", "license": {"type": "ISC", "url": "u"}}`, []string{"@scope/x@1.0.0 [ISC]"}},
		{"legacy licenses", `{"name": "x", "version": "1.0.0", "licenses": [{"type": "MIT"}, "BSD-2-Clause"]}`, []string{"x@1.0.0 [MIT BSD-2-Clause]"}},
		{"odd license", `{"name": "x", "version": "1.0.0", "license": 5}`, []string{"x@1.0.0"}},
		{"no version", `{"name": "x"}`, nil},
		{"no name", `{"version": "1.0.0"}`, nil},
		{"null name", `{"name": null, "version": "1.0.0"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extracttest.Run(t, NewInstalled(), "/usr/lib/node_modules/x/package.json", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			checkPackages(t, res.Packages)
			if got := summary(res.Packages); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNPMClient installs real packages with npm for every lockfile version
// and checks that the lock file extractor finds exactly the packages the
// installed-package extractor finds in node_modules.
func TestNPMClient(t *testing.T) {
	npm := testenv.NeedCommand(t, "npm")
	manifest := `{
  "name": "mamori-npm-test",
  "version": "1.0.0",
  "private": true,
  "dependencies": {"express": "4.17.1", "@babel/core": "7.20.12"},
  "devDependencies": {"is-number": "7.0.0", "sw": "npm:string-width@4.2.3"}
}`
	for _, lockVersion := range []string{"1", "2", "3"} {
		t.Run("lockfileVersion"+lockVersion, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--lockfile-version", lockVersion)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("npm install: %v\n%s", err, out)
			}

			installed := extractTree(t, dir, NewInstalled())
			lockData, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
			if err != nil {
				t.Fatal(err)
			}
			var head struct{ LockfileVersion json.Number }
			if err := json.Unmarshal(lockData, &head); err != nil || head.LockfileVersion.String() != lockVersion {
				t.Fatalf("npm wrote lockfileVersion %s (%v), want %s", head.LockfileVersion, err, lockVersion)
			}
			res, err := extracttest.Run(t, NewLockfile(), "/app/package-lock.json", lockData)
			if err != nil {
				t.Fatal(err)
			}
			checkPackages(t, res.Packages)
			if len(installed) < 50 {
				t.Fatalf("only %d installed packages found", len(installed))
			}
			got := map[string]inventory.Package{}
			for _, p := range res.Packages {
				got[p.Name+"@"+p.Version] = p
			}
			for key := range installed {
				if _, ok := got[key]; !ok {
					t.Errorf("installed %s is not in the lock file result", key)
				}
			}
			for key := range got {
				if _, ok := installed[key]; !ok {
					t.Errorf("lock file result %s is not installed", key)
				}
			}
			for key, dev := range map[string]bool{"express@4.17.1": false, "@babel/core@7.20.12": false, "is-number@7.0.0": true, "string-width@4.2.3": true} {
				if p, ok := got[key]; !ok || p.Dev != dev {
					t.Errorf("lock file result %s = %+v, want present with Dev %v", key, p, dev)
				}
			}
			if p := installed["@babel/core@7.20.12"]; p.PURL != "pkg:npm/%40babel/core@7.20.12" || !slices.Equal(p.Licenses, []string{"MIT"}) {
				t.Errorf("installed @babel/core = %+v", p)
			}
		})
	}
}

// extractTree runs an extractor on every file of a directory that it
// requires, keyed by "name@version".
func extractTree(t *testing.T, dir string, ex inventory.Extractor) map[string]inventory.Package {
	t.Helper()
	out := map[string]inventory.Package{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel := "/app/" + filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		fi := inventory.FileInfo{Path: rel}
		if !ex.Required(fi) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		res, err := extracttest.Run(t, ex, rel, data)
		if err != nil {
			return err
		}
		checkPackages(t, res.Packages)
		for _, pkg := range res.Packages {
			out[pkg.Name+"@"+pkg.Version] = pkg
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzPackageLock(f *testing.F) {
	extracttest.Seeds(f, "package-lock-v1.json", "package-lock-v3.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePackageLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzPackageJSON(f *testing.F) {
	f.Add([]byte(`{"name": "x", "version": "1.0.0", "license": {"type": "MIT"}, "licenses": ["ISC"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePackageJSON(data)
		if err == nil && p != nil {
			checkPackages(t, []inventory.Package{*p})
		}
	})
}

func FuzzYarnLock(f *testing.F) {
	extracttest.Seeds(f, "yarn-v1.lock", "yarn-berry.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseYarnLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzPnpmLock(f *testing.F) {
	extracttest.Seeds(f, "pnpm-v5.yaml", "pnpm-v6.yaml", "pnpm-v9.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePnpmLock(data)
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}
