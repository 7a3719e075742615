// Package license turns the licenses that packages declare and the license
// files that images carry into SPDX license expressions, sorts licenses
// into categories (permissive, weak copyleft, strong copyleft, forbidden)
// and checks them against a policy.
//
// Normalize maps declared license strings (SPDX identifiers, Debian DEP-5
// short names, Fedora short names, Maven and PyPI license names, license
// URLs) to a valid SPDX expression. NewFileExtractor classifies license
// files with github.com/google/licensecheck. Analyze joins both per package
// and per image, and Policy.Check applies allow and deny lists.
package license

import "strings"

// Category is the broad kind of obligation a license brings.
type Category string

// Categories, from the least to the most restrictive (see Rank).
const (
	// Permissive licenses ask for attribution at most (MIT, BSD, Apache-2.0).
	Permissive Category = "permissive"
	// WeakCopyleft licenses require changes to the licensed files
	// themselves to be shared (LGPL, MPL, EPL, CDDL).
	WeakCopyleft Category = "weak-copyleft"
	// StrongCopyleft licenses extend to the whole combined work (GPL), or
	// to network use (AGPL).
	StrongCopyleft Category = "strong-copyleft"
	// Unknown is a license mamori cannot place, or no license at all.
	Unknown Category = "unknown"
	// Forbidden licenses restrict use itself (non-commercial, field of use,
	// "don't be evil"), are not legally meaningful (WTFPL) or are source
	// available rather than open source (SSPL, BUSL).
	Forbidden Category = "forbidden"
)

// Categories lists every category, least restrictive first.
var Categories = []Category{Permissive, WeakCopyleft, StrongCopyleft, Unknown, Forbidden}

// Rank orders categories by restrictiveness: permissive 0, weak copyleft
// 1, strong copyleft 2, unknown 3, forbidden 4. Unknown sits above strong
// copyleft because an unidentified license may hold any obligation short
// of an outright ban. Unrecognized strings rank as unknown.
func Rank(c Category) int {
	switch c {
	case Permissive:
		return 0
	case WeakCopyleft:
		return 1
	case StrongCopyleft:
		return 2
	case Forbidden:
		return 4
	}
	return 3
}

// categoryByID maps SPDX license identifiers (and mamori's known
// LicenseRefs) without "-only", "-or-later" or "+" to their category.
var categoryByID = map[string]Category{}

// categoryPrefixes assigns categories to license families by identifier
// prefix, checked in order after categoryByID.
var categoryPrefixes = []struct {
	prefix string
	cat    Category
}{
	{"CC-BY-NC", Forbidden},
	{"CC-BY-ND", Forbidden},
	{"CC-BY-SA-", WeakCopyleft},
	{"CC-BY-", Permissive},
	{"AGPL-", StrongCopyleft},
	{"LGPL-", WeakCopyleft},
	{"GPL-", StrongCopyleft},
	{"GFDL-", StrongCopyleft},
	{"EUPL-", StrongCopyleft},
	{"OSL-", StrongCopyleft},
	{"RPL-", StrongCopyleft},
	{"MPL-", WeakCopyleft},
	{"EPL-", WeakCopyleft},
	{"CDDL-", WeakCopyleft},
	{"APSL-", WeakCopyleft},
	{"Artistic-1.0", WeakCopyleft},
	{"OFL-", WeakCopyleft},
	{"BSD-", Permissive},
	{"MIT", Permissive},
	{"Apache-", Permissive},
	{"AFL-", Permissive},
	{"Python-", Permissive},
	{"Unicode-", Permissive},
	{"W3C", Permissive},
	{"HPND", Permissive},
	{"X11", Permissive},
	{"libpng", Permissive},
	{"zlib", Permissive},
	{"Zlib", Permissive},
	{"curl", Permissive},
}

func init() {
	for cat, ids := range map[Category][]string{
		Permissive: {
			"0BSD", "ISC", "BSL-1.0", "PSF-2.0", "CNRI-Python", "Unlicense", "CC0-1.0",
			"OpenSSL", "SSLeay-standalone", "PostgreSQL", "NCSA", "UPL-1.0", "FTL", "ICU",
			"Ruby", "BlueOak-1.0.0", "Artistic-2.0", "Info-ZIP", "TCL", "Spencer-86",
			"Spencer-94", "Spencer-99", "bzip2-1.0.6", "ImageMagick", "IJG", "Libpng",
			"NTP", "PHP-3.0", "PHP-3.01", "Vim", "X11", "Zlib",
			"LicenseRef-public-domain", "LicenseRef-BSD", "LicenseRef-permissive",
			"Python-2.0", "Xnet", "AAL", "Intel", "MirOS",
			"Naumen", "EFL-2.0", "Fair", "MS-PL", "OLDAP-2.8", "Sendmail", "SGI-B-2.0",
			"Unicode-DFS-2016", "Unicode-3.0", "ECL-2.0",
			"Plexus", "JasPer-2.0", "GD", "Glulxe", "ISC-Veillard", "HPND-sell-variant",
			"CC-PDDC", "PDDL-1.0", "blessing", "OFL-1.1-RFN",
		},
		WeakCopyleft: {
			"CPL-1.0", "IPL-1.0", "Ms-RL", "ErlPL-1.1", "CECILL-C", "CECILL-B",
			"LicenseRef-LGPL", "Artistic-1.0-Perl", "Artistic-1.0-cl8", "NPL-1.1",
			"SPL-1.0", "MPL-2.0-no-copyleft-exception", "LGPLLR", "Nokia",
		},
		StrongCopyleft: {
			"Sleepycat", "QPL-1.0", "CPAL-1.0", "CECILL-2.0", "CECILL-2.1",
			"CECILL-1.0", "CECILL-1.1", "LicenseRef-GPL", "NGPL", "RPSL-1.0",
			"SimPL-2.0", "Parity-6.0.0", "Parity-7.0.0", "OSL-3.0",
		},
		Forbidden: {
			"WTFPL", "Beerware", "SSPL-1.0", "BUSL-1.1", "Elastic-2.0", "JSON",
			"Hippocratic-2.1", "LicenseRef-Commons-Clause", "CPOL-1.02",
			"LicenseRef-non-commercial",
		},
		Unknown: {"LicenseRef-proprietary", "LicenseRef-UNLICENSED"},
	} {
		for _, id := range ids {
			categoryByID[id] = cat
		}
	}
}

// relaxingExceptions are SPDX exceptions that lift a GNU license's
// copyleft from the combined work (linking, compiler output), leaving it
// weak copyleft.
var relaxingExceptions = map[string]bool{
	"Classpath-exception-2.0": true, "GCC-exception-2.0": true, "GCC-exception-3.1": true,
	"LLVM-exception": true, "Autoconf-exception-2.0": true, "Autoconf-exception-3.0": true,
	"Autoconf-exception-generic": true, "Bison-exception-2.2": true, "Font-exception-2.0": true,
	"Libtool-exception": true, "LGPL-3.0-linking-exception": true, "GPL-3.0-linking-exception": true,
	"Universal-FOSS-exception-1.0": true, "WxWindows-exception-3.1": true,
	"openvpn-openssl-exception": true, "Qt-LGPL-exception-1.1": true,
	"eCos-exception-2.0": true, "FLTK-exception": true, "u-boot-exception-2.0": true,
	"Linux-syscall-note": true, "freertos-exception-2.0": true, "Bison-exception-1.24": true,
}

// CategoryOf returns the category of one license identifier, as it
// appears in a normalized expression ("MIT", "GPL-2.0-or-later",
// "LicenseRef-public-domain"). Identifiers it does not know are Unknown.
func CategoryOf(id string) Category {
	id = baseID(id)
	if c, ok := categoryByID[id]; ok {
		return c
	}
	for _, p := range categoryPrefixes {
		if strings.HasPrefix(id, p.prefix) {
			return p.cat
		}
	}
	return Unknown
}

// baseID strips the "+", "-only" and "-or-later" suffixes.
func baseID(id string) string {
	id = strings.TrimSuffix(id, "+")
	id = strings.TrimSuffix(id, "-only")
	return strings.TrimSuffix(id, "-or-later")
}

// leafCategory returns the category of a license with an optional
// exception. Exceptions that relax a copyleft license make it weak
// copyleft; Commons Clause style additions make it forbidden.
func leafCategory(id, exception string) Category {
	c := CategoryOf(id)
	switch {
	case exception == "":
	case strings.Contains(strings.ToLower(exception), "commons-clause"):
		return Forbidden
	case relaxingExceptions[exception] && c == StrongCopyleft:
		return WeakCopyleft
	}
	return c
}

// ExpressionCategory returns the category of a license expression: the
// most restrictive part of an AND (every part applies), the least
// restrictive choice of an OR (the user may pick it). A nil expression is
// Unknown.
func ExpressionCategory(e *Expr) Category {
	if e == nil {
		return Unknown
	}
	switch e.Op {
	case OpAnd, OpOr:
		best := ExpressionCategory(e.Args[0])
		for _, a := range e.Args[1:] {
			c := ExpressionCategory(a)
			if (e.Op == OpAnd) == (Rank(c) > Rank(best)) {
				best = c
			}
		}
		return best
	}
	return leafCategory(e.ID, e.Exception)
}
