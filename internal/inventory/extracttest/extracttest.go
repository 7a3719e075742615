// Package extracttest holds helpers shared by the extractors' tests.
package extracttest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Run checks that ex requires path and extracts data as the contents of that
// file (regular, mode 0644).
func Run(t testing.TB, ex inventory.Extractor, path string, data []byte) (inventory.Result, error) {
	t.Helper()
	fi := inventory.FileInfo{Path: path, Size: int64(len(data)), Mode: 0o644}
	if !ex.Required(fi) {
		t.Fatalf("%s does not require %s", ex.Name(), path)
	}
	return ex.Extract(context.Background(), inventory.NewInput(fi, bytes.NewReader(data), nil))
}

// Seeds adds the named files under testdata/ to a fuzz corpus.
func Seeds(f *testing.F, files ...string) {
	f.Helper()
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// RequiredBy lists the names of the extractors in exts that require the
// regular file at path.
func RequiredBy(exts []inventory.Extractor, path string) []string {
	var names []string
	for _, ex := range exts {
		if ex.Required(inventory.FileInfo{Path: path, Mode: 0o644}) {
			names = append(names, ex.Name())
		}
	}
	return names
}

// File extracts the file testdata/name as if it were at path, failing the
// test on an error.
func File(t testing.TB, ex inventory.Extractor, path, name string) []inventory.Package {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(t, ex, path, data)
	if err != nil {
		t.Fatal(err)
	}
	return res.Packages
}

// CheckError extracts data as the file at path and requires an error that
// names the file and contains wantErr.
func CheckError(t testing.TB, ex inventory.Extractor, path, data, wantErr string) {
	t.Helper()
	_, err := Run(t, ex, path, []byte(data))
	if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want one naming %s and containing %q", err, path, wantErr)
	}
}
