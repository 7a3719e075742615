package apk

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/extracttest"
)

func extract(t testing.TB, path string, content []byte) (inventory.Result, error) {
	t.Helper()
	return extracttest.Run(t, New(), path, content)
}

func TestExtract(t *testing.T) {
	b, err := os.ReadFile("testdata/installed")
	if err != nil {
		t.Fatal(err)
	}
	res, err := extract(t, "/lib/apk/db/installed", b)
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.Package{
		{Name: "musl", Version: "1.2.5-r0", Type: "apk", Arch: "x86_64", Licenses: []string{"MIT"}, SourceName: "musl", SourceVersion: "1.2.5-r0",
			Metadata: map[string]string{"buildTime": "2024-04-03T20:50:40Z", "commit": "6ed7b9a4c1d6e8e2c0b9f6a3fd5ab46f2f6a5b3c"},
			Files:    []string{"/lib", "/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"}},
		{Name: "libcrypto3", Version: "3.3.2-r0", Type: "apk", Arch: "x86_64", Licenses: []string{"Apache-2.0"}, SourceName: "openssl", SourceVersion: "3.3.2-r0",
			Metadata: map[string]string{"buildTime": "2024-09-03T09:50:25Z", "commit": "0fdb6d7b9a6bd8a1a1b91e1d3e1c3c0b0a9d4b2a"},
			Files:    []string{"/etc", "/etc/ssl", "/etc/ssl/openssl.cnf.dist", "/usr", "/usr/lib", "/usr/lib/libcrypto.so.3"}},
		{Name: "busybox", Version: "1.36.1-r29", Type: "apk", Arch: "x86_64", Licenses: []string{"GPL-2.0-only"}, SourceName: "busybox", SourceVersion: "1.36.1-r29",
			Metadata: map[string]string{"buildTime": "2024-06-25T18:00:30Z"}, Files: []string{"/bin", "/bin/busybox"}},
		{Name: "ca-certificates-bundle", Version: "20240705-r0", Type: "apk", Arch: "x86_64", Licenses: []string{"MIT", "MPL-2.0"}, SourceName: "ca-certificates", SourceVersion: "20240705-r0",
			Metadata: map[string]string{"buildTime": "2024-07-08T19:46:40Z"}},
		{Name: "scanelf", Version: "1.3.7-r2", Type: "apk", Arch: "x86_64", SourceName: "pax-utils", SourceVersion: "1.3.7-r2",
			Licenses: []string{"Apache-2.0", "GPL-2.0-only", "GPL-2.0-or-later WITH Linux-syscall-note", "MIT"}},
		{Name: "old-license-list", Version: "1.0-r0", Type: "apk", Arch: "noarch", Licenses: []string{"GPL2", "MIT"}, SourceName: "old-license-list", SourceVersion: "1.0-r0",
			Files: []string{"/top-level-file"}},
	}
	if !reflect.DeepEqual(res.Packages, want) {
		for i := range max(len(want), len(res.Packages)) {
			var g, w inventory.Package
			if i < len(res.Packages) {
				g = res.Packages[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("package %d:\ngot  %+v\nwant %+v", i, g, w)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ name, content, wantErr string }{
		{"not a field", "P:musl\ngarbage\n", `line 2: expected "X:value"`},
		{"long key", "Package: musl\n", `line 1: expected "X:value"`},
		{"no version", "P:musl\nA:x86_64\n\nP:b\nV:1\n", "package at line 1 has no name (P:) or version (V:)"},
		{"no name", "V:1\n", "package at line 1 has no name"},
		{"binary", "\x00\x01\x02", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extract(t, "/lib/apk/db/installed", []byte(tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "/lib/apk/db/installed: ") {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	res, err := extract(t, "/usr/lib/apk/db/installed", nil)
	if err != nil || len(res.Packages) != 0 {
		t.Errorf("empty database: %v, %v", res.Packages, err)
	}
}

func TestRequired(t *testing.T) {
	for p, want := range map[string]bool{
		"/lib/apk/db/installed":     true,
		"/usr/lib/apk/db/installed": true,
		"/lib/apk/db/triggers":      false,
		"/x/lib/apk/db/installed":   false,
	} {
		if got := New().Required(inventory.FileInfo{Path: p}); got != want {
			t.Errorf("Required(%s) = %v, want %v", p, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/installed")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("P:a\nV:1\nR:x\nF:/\nR:y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := Parse(b)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" {
				t.Fatalf("incomplete package %+v", p)
			}
			for _, f := range p.Files {
				if !strings.HasPrefix(f, "/") {
					t.Fatalf("relative file %q", f)
				}
			}
		}
	})
}
