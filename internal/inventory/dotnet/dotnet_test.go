package dotnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestExtract(t *testing.T) {
	depsMeta := func(typ string) map[string]string {
		return map[string]string{"libraryType": typ, "runtimeTarget": ".NETCoreApp,Version=v6.0/linux-x64"}
	}
	lockMeta := func(typ, frameworks string) map[string]string {
		return map[string]string{"dependencyType": typ, "targetFrameworks": frameworks}
	}
	type want struct {
		name, version, purl string
		meta                map[string]string
	}
	tests := []struct {
		ex      inventory.Extractor
		file    string // in testdata
		path    string // in the image
		want    []want
		wantErr string
	}{
		{ex: NewDepsJSON(), file: "MyApp.deps.json", path: "/app/MyApp.deps.json", want: []want{
			{"Newtonsoft.Json", "12.0.1", "pkg:nuget/Newtonsoft.Json@12.0.1", depsMeta("package")},
			{"System.Text.Encodings.Web", "4.5.0", "pkg:nuget/System.Text.Encodings.Web@4.5.0", depsMeta("package")},
			{"runtimepack.Microsoft.NETCore.App.Runtime.linux-x64", "6.0.5", "pkg:nuget/runtimepack.Microsoft.NETCore.App.Runtime.linux-x64@6.0.5", depsMeta("runtimepack")},
		}},
		{ex: NewDepsJSON(), file: "badkey.deps.json", path: "/app/x.deps.json", wantErr: `library "Broken" is not "Name/Version"`},
		{ex: NewDepsJSON(), file: "truncated.deps.json", path: "/app/x.deps.json", wantErr: "parsing deps.json"},
		{ex: NewDepsJSON(), file: "packages.lock.json", path: "/app/x.deps.json", wantErr: `no "libraries" object`},
		{ex: NewPackagesLock(), file: "packages.lock.json", path: "/src/packages.lock.json", want: []want{
			{"Microsoft.NETCore.Platforms", "5.0.0", "pkg:nuget/Microsoft.NETCore.Platforms@5.0.0", lockMeta("CentralTransitive", "net6.0/linux-x64")},
			{"Newtonsoft.Json", "12.0.1", "pkg:nuget/Newtonsoft.Json@12.0.1", lockMeta("Direct", "net6.0,net8.0")},
			{"Serilog", "2.10.0", "pkg:nuget/Serilog@2.10.0", lockMeta("Direct", "net6.0")},
			{"Serilog", "3.0.1", "pkg:nuget/Serilog@3.0.1", lockMeta("Direct", "net8.0")},
			{"System.Text.Encodings.Web", "4.5.0", "pkg:nuget/System.Text.Encodings.Web@4.5.0", lockMeta("Transitive", "net6.0,net6.0/linux-x64")},
		}},
		{ex: NewPackagesLock(), file: "unresolved.packages.lock.json", path: "/src/packages.lock.json", wantErr: `"X" (net6.0) has no resolved version`},
		{ex: NewPackagesLock(), file: "notobject.packages.lock.json", path: "/src/packages.lock.json", wantErr: "parsing packages.lock.json"},
		{ex: NewPackagesLock(), file: "MyApp.deps.json", path: "/src/packages.lock.json", wantErr: `no "dependencies" object`},
	}
	for _, tt := range tests {
		t.Run(tt.ex.Name()+"/"+tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			fi := inventory.FileInfo{Path: tt.path, Size: int64(len(data)), Mode: 0o644}
			if !tt.ex.Required(fi) {
				t.Fatalf("%s not required", tt.path)
			}
			res, err := tt.ex.Extract(context.Background(), inventory.NewInput(fi, bytes.NewReader(data), nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), tt.path+": ") {
					t.Fatalf("error = %v, want one naming %s and containing %q", err, tt.path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != len(tt.want) {
				t.Fatalf("got %d packages, want %d: %+v", len(res.Packages), len(tt.want), res.Packages)
			}
			for i, w := range tt.want {
				p := res.Packages[i]
				if p.Name != w.name || p.Version != w.version || p.PURL != w.purl || p.Type != inventory.TypeNuGet {
					t.Errorf("package %d = %s %s %s %s, want %s %s %s", i, p.Name, p.Version, p.PURL, p.Type, w.name, w.version, w.purl)
				}
				if len(p.Metadata) != len(w.meta) {
					t.Errorf("%s metadata = %v, want %v", p.Name, p.Metadata, w.meta)
				}
				for k, v := range w.meta {
					if p.Metadata[k] != v {
						t.Errorf("%s metadata = %v, want %v", p.Name, p.Metadata, w.meta)
					}
				}
			}
		})
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		ex   inventory.Extractor
		path string
		want bool
	}{
		{NewDepsJSON(), "/app/MyApp.deps.json", true},
		{NewDepsJSON(), "/app/.deps.json", false},
		{NewDepsJSON(), "/app/MyApp.runtimeconfig.json", false},
		{NewDepsJSON(), "/app/deps.json", false},
		{NewPackagesLock(), "/src/packages.lock.json", true},
		{NewPackagesLock(), "/src/packages.config", false},
		{NewPackagesLock(), "/src/my.packages.lock.json", false},
	}
	for _, tt := range tests {
		if got := tt.ex.Required(inventory.FileInfo{Path: tt.path, Size: 10, Mode: 0o644}); got != tt.want {
			t.Errorf("%s.Required(%s) = %v, want %v", tt.ex.Name(), tt.path, got, tt.want)
		}
	}
}

func seeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

func checkPackages(t *testing.T, pkgs []inventory.Package, err error) {
	t.Helper()
	for _, p := range pkgs {
		if err != nil || p.Name == "" || p.Version == "" || p.Type != inventory.TypeNuGet {
			t.Fatalf("bad package %+v (err %v)", p, err)
		}
	}
}

func FuzzDepsJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseDepsJSON(data)
		checkPackages(t, pkgs, err)
	})
}

func FuzzPackagesLock(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePackagesLock(data)
		checkPackages(t, pkgs, err)
	})
}
