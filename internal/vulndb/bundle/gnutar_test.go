package bundle

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
)

// gnuTar runs GNU tar in dir.
func gnuTar(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(testenv.NeedCommand(t, "tar"), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestGNUTar checks that GNU tar unpacks an exported bundle and that a
// bundle packed by hand with GNU tar imports.
func TestGNUTar(t *testing.T) {
	testenv.NeedCommand(t, "zstd")
	dir := t.TempDir()
	src := makeDB(t, dir, "GNU")
	db, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "mamori-db"+Ext)
	if err := ExportFile(bundlePath, src, manifest()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	gnuTar(t, out, "--zstd", "-xf", bundlePath)
	checkOnly(t, out, DBName, ManifestName)
	if got, _ := os.ReadFile(filepath.Join(out, DBName)); !bytes.Equal(got, db) {
		t.Error("GNU tar extracted a different database")
	}

	// Repack the extracted files with GNU tar (manifest first).
	repacked := filepath.Join(dir, "repacked"+Ext)
	gnuTar(t, out, "--zstd", "--format=pax", "-cf", repacked, ManifestName, DBName)
	dest := filepath.Join(dir, "installed", DBName)
	if _, err := ImportFile(repacked, dest, verifyDB); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, db) {
		t.Error("imported database differs")
	}
}

// TestGNUTarSparse checks that a sparse entry, which GNU tar writes as a
// regular file with PAX records, is rejected.
func TestGNUTarSparse(t *testing.T) {
	testenv.NeedCommand(t, "zstd")
	dir := t.TempDir()
	sparse := make([]byte, 1<<20)
	sparse[len(sparse)/2] = 1
	// Holes, not written zeros, so that GNU tar finds them.
	f, err := os.Create(filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(len(sparse)))
	f.WriteAt([]byte{1}, int64(len(sparse)/2))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), manifestJSON(t, sparse, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	gnuTar(t, dir, "--zstd", "--format=pax", "--sparse", "-cf", "sparse"+Ext, ManifestName, DBName)
	_, err = ImportFile(filepath.Join(dir, "sparse"+Ext), filepath.Join(dir, "installed", DBName), verifyDB)
	if err == nil || !strings.Contains(err.Error(), `entry "mamori.db" is a sparse file`) {
		t.Errorf("err = %v", err)
	}
}
