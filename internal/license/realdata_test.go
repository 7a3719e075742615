package license_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/github/go-spdx/v2/spdxexp"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/dpkg"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/testenv"
)

// TestNormalizeDebianCopyrights normalizes the licenses of every Debian
// copyright file on this machine, as the dpkg extractor reports them: each
// result must be valid SPDX, and most names must be recognized.
func TestNormalizeDebianCopyrights(t *testing.T) {
	files, _ := filepath.Glob("/usr/share/doc/*/copyright")
	if len(files) < 20 {
		testenv.Missing(t, "Debian copyright files in /usr/share/doc (a Debian system)")
	}
	var names, recognized int
	unknown := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // dangling symlink
		}
		ls := dpkg.ParseCopyright(b)
		n := license.Normalize(inventory.TypeDeb, ls)
		if n.Expression == "" {
			continue
		}
		if valid, invalid := spdxexp.ValidateLicenses([]string{n.Expression}); !valid {
			t.Errorf("%s: %q -> %q: invalid %v", f, ls, n.Expression, invalid)
		}
		names += len(ls)
		recognized += len(ls) - len(n.Unrecognized)
		for _, u := range n.Unrecognized {
			unknown[u]++
		}
	}
	t.Logf("%d copyright files, %d license names, %d recognized", len(files), names, recognized)
	if recognized*100 < names*75 {
		t.Errorf("only %d of %d license names recognized; unrecognized: %v", recognized, names, unknown)
	}
}
