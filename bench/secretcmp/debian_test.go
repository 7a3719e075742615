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
	root := testenv.DebianRoot(t)
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
