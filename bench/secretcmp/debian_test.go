package secretcmp

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/secret"
	"github.com/mamorisec/mamori/internal/testenv"
)

// debianRoot is the Debian 12 root filesystem the benchmark build leaves
// in $BENCH_DIR/build/layers/base.
func debianRoot(t testing.TB) string {
	t.Helper()
	d := filepath.Join(benchDir(), "build", "layers", "base")
	if _, err := os.Stat(filepath.Join(d, "var", "lib", "dpkg", "status")); err != nil {
		testenv.Missing(t, "Debian root filesystem %s (run bench/build-image.sh)", d)
	}
	return d
}

// walkTree scans every file of root the extractor requires, as the image
// walk would, and returns the findings and the bytes scanned. The tree is
// only read.
func walkTree(t testing.TB, s *secret.Scanner, root string) ([]inventory.Finding, int64) {
	t.Helper()
	ex := s.Extractor()
	var out []inventory.Finding
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		fi := inventory.FileInfo{Path: "/" + filepath.ToSlash(rel), Size: info.Size(), Mode: info.Mode()}
		if !ex.Required(fi) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		n += int64(len(data))
		out = append(out, s.ScanBytes(fi.Path, data)...)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return out, n
}

func TestDebianRootNoFalsePositives(t *testing.T) {
	root := debianRoot(t)
	s, err := secret.New(secret.Config{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fs, n := walkTree(t, s, root)
	t.Logf("scanned %d MiB in %v", n>>20, time.Since(start))
	for _, f := range fs {
		t.Errorf("false positive: %s:%d %s %s", f.Path, f.StartLine, f.RuleID, f.Match)
	}
}
