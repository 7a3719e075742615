package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// importInto runs Import on data with the database installed at
// <tmp>/db/mamori.db and checks that nothing was written anywhere else and
// no temporary file was left behind.
func importInto(t *testing.T, data []byte) {
	root := t.TempDir()
	dest := filepath.Join(root, "db", DBName)
	m, err := Import(bytes.NewReader(data), dest, func(p string) error {
		if filepath.Dir(p) != filepath.Dir(dest) {
			t.Fatalf("temporary database %s outside %s", p, filepath.Dir(dest))
		}
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("temporary database %s is not a regular file: %v", p, err)
		}
		return nil
	})
	checkOnly(t, root, "db")
	if err != nil {
		checkOnly(t, filepath.Dir(dest))
		return
	}
	checkOnly(t, filepath.Dir(dest), DBName)
	st, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 1 || st.Size() != m.Files[0].Size {
		t.Fatalf("installed %d bytes, manifest %+v", st.Size(), m.Files)
	}
}

// seeds returns small valid and damaged bundles as uncompressed tar
// archives (small, so that the fuzzer minimizes inputs quickly).
func seeds(t testing.TB) [][]byte {
	small := []byte("tiny database")
	man := manifestJSON(t, small, nil)
	return [][]byte{
		tarBytes(t, []entry{{name: ManifestName, body: man}, {name: DBName, body: small}}),
		tarBytes(t, []entry{{name: ManifestName, body: man}, {name: "../x", body: small}}),
		tarBytes(t, []entry{{name: ManifestName, body: man}, {name: DBName, typ: '2', linkname: "/etc/passwd"}}),
		tarBytes(t, []entry{{name: ManifestName, body: man}, {name: DBName, body: small}, {name: DBName, body: small}}),
	}
}

func FuzzImport(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(compress(f, s))
	}
	f.Add(exportBytes(f, makeDB(f, f.TempDir(), "EXPORT"), manifest()))
	f.Fuzz(importInto)
}

// FuzzImportTar fuzzes the tar archive and manifest inside a valid zstd
// stream, which FuzzImport's mutations rarely reach.
func FuzzImportTar(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		importInto(t, compress(t, data))
	})
}
