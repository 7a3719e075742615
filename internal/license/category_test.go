package license

import (
	"strings"
	"testing"

	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

func TestCategoryOf(t *testing.T) {
	for id, want := range map[string]Category{
		"MIT": Permissive, "Apache-2.0": Permissive, "BSD-3-Clause": Permissive, "BSD-2-Clause": Permissive,
		"0BSD": Permissive, "ISC": Permissive, "Zlib": Permissive, "BSL-1.0": Permissive, "X11": Permissive,
		"CC0-1.0": Permissive, "Unlicense": Permissive, "PSF-2.0": Permissive, "CC-BY-4.0": Permissive,
		"HPND-sell-variant": Permissive, "LicenseRef-public-domain": Permissive, "LicenseRef-BSD": Permissive,
		"Apache-2.0+":   Permissive,
		"LGPL-2.1-only": WeakCopyleft, "LGPL-3.0-or-later": WeakCopyleft, "MPL-2.0": WeakCopyleft,
		"EPL-2.0": WeakCopyleft, "CDDL-1.0": WeakCopyleft, "Artistic-1.0-Perl": WeakCopyleft,
		"CC-BY-SA-4.0": WeakCopyleft, "LicenseRef-LGPL": WeakCopyleft,
		"GPL-2.0-only": StrongCopyleft, "GPL-3.0-or-later": StrongCopyleft, "AGPL-3.0-only": StrongCopyleft,
		"EUPL-1.2": StrongCopyleft, "GFDL-1.3-or-later": StrongCopyleft, "LicenseRef-GPL": StrongCopyleft,
		"OSL-3.0": StrongCopyleft, "Sleepycat": StrongCopyleft,
		"WTFPL": Forbidden, "SSPL-1.0": Forbidden, "BUSL-1.1": Forbidden, "CC-BY-NC-4.0": Forbidden,
		"CC-BY-NC-SA-4.0": Forbidden, "CC-BY-ND-4.0": Forbidden, "JSON": Forbidden, "Beerware": Forbidden,
		"LicenseRef-Commons-Clause": Forbidden, "Elastic-2.0": Forbidden,
		"LicenseRef-proprietary": Unknown, "LicenseRef-UNLICENSED": Unknown, "LicenseRef-foo": Unknown,
		"Glide": Unknown, "": Unknown,
	} {
		if got := CategoryOf(id); got != want {
			t.Errorf("CategoryOf(%q) = %s, want %s", id, got, want)
		}
	}
}

// TestCategoryTable checks that every identifier in the table is on the
// SPDX license list (or is one of mamori's LicenseRefs) and every relaxing
// exception on the SPDX exception list.
func TestCategoryTable(t *testing.T) {
	for id := range categoryByID {
		if strings.HasPrefix(id, "LicenseRef-") {
			continue
		}
		active, _ := spdxlicenses.IsActiveLicense(id)
		deprecated, _ := spdxlicenses.IsDeprecatedLicense(id)
		if !active && !deprecated {
			t.Errorf("category table: %q is not an SPDX license identifier", id)
		}
	}
	for exc := range relaxingExceptions {
		if ok, _ := spdxlicenses.IsException(exc); !ok {
			t.Errorf("relaxingExceptions: %q is not an SPDX exception", exc)
		}
	}
}

func TestExpressionCategory(t *testing.T) {
	for _, c := range []struct {
		expr string
		want Category
	}{
		{"MIT", Permissive},
		{"MIT OR GPL-2.0-only", Permissive},
		{"MIT AND GPL-2.0-only", StrongCopyleft},
		{"GPL-2.0-only OR LGPL-2.1-only", WeakCopyleft},
		{"LicenseRef-foo OR GPL-3.0-only", StrongCopyleft},
		{"LicenseRef-foo AND GPL-3.0-only", Unknown},
		{"LicenseRef-foo OR MIT", Permissive},
		{"WTFPL OR MIT", Permissive},
		{"WTFPL AND MIT", Forbidden},
		{"(MIT OR GPL-3.0-only) AND (LGPL-2.1-only OR AGPL-3.0-only)", WeakCopyleft},
		{"GPL-2.0-only WITH Classpath-exception-2.0", WeakCopyleft},
		{"GPL-3.0-or-later WITH GCC-exception-3.1", WeakCopyleft},
		{"GPL-2.0-or-later WITH Autoconf-exception-generic", WeakCopyleft},
		{"Apache-2.0 WITH LLVM-exception", Permissive},
	} {
		e, err := ParseExpression(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := ExpressionCategory(e); got != c.want {
			t.Errorf("ExpressionCategory(%s) = %s, want %s", c.expr, got, c.want)
		}
	}
	if got := ExpressionCategory(nil); got != Unknown {
		t.Errorf("ExpressionCategory(nil) = %s", got)
	}
}

func TestRank(t *testing.T) {
	for i := 1; i < len(Categories); i++ {
		if Rank(Categories[i-1]) >= Rank(Categories[i]) {
			t.Errorf("Rank(%s) >= Rank(%s)", Categories[i-1], Categories[i])
		}
	}
	if Rank("bogus") != Rank(Unknown) {
		t.Errorf("Rank(bogus) = %d", Rank("bogus"))
	}
}
