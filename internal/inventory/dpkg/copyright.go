package dpkg

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
)

const docDir = "/usr/share/doc/"

// maxCopyright bounds a copyright file; the largest in Debian are a few MiB.
const maxCopyright = 16 << 20

type copyrightExtractor struct{}

// NewCopyright returns the extractor for /usr/share/doc/NAME/copyright. It
// reports Result.Licenses[NAME] with LicenseType "deb".
//
// Machine-readable (DEP-5) files give their "License:" short names, split
// on "and", "or" and commas, with exceptions ("GPL-2+ with OpenSSL
// exception") reduced to the license, and common Debian names normalized to
// SPDX identifiers (GPL-2+ becomes GPL-2.0-or-later, Expat MIT,
// BSD-3-clause BSD-3-Clause). Other files give the licenses they refer to
// in /usr/share/common-licenses/.
func NewCopyright() inventory.Extractor { return copyrightExtractor{} }

func (copyrightExtractor) Name() string { return "os/dpkg/copyright" }

func (copyrightExtractor) Version() int { return 2 }

func (copyrightExtractor) Required(fi inventory.FileInfo) bool {
	rest, ok := strings.CutPrefix(fi.Path, docDir)
	if !ok {
		return false
	}
	name, file, ok := strings.Cut(rest, "/")
	return ok && name != "" && file == "copyright"
}

func (copyrightExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, maxCopyright)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	l := ParseCopyright(b)
	if len(l) == 0 {
		// An old free-text copyright file that quotes its license instead of
		// naming it: classify the text.
		for _, f := range license.Classify(b) {
			l = append(l, f.RuleID)
		}
		slices.Sort(l)
		l = slices.Compact(l)
	}
	if len(l) == 0 {
		return inventory.Result{}, nil
	}
	name := strings.TrimSuffix(strings.TrimPrefix(in.Path, docDir), "/copyright")
	return inventory.Result{Licenses: map[string][]string{name: l}, LicenseType: inventory.TypeDeb}, nil
}

const commonLicenses = "/usr/share/common-licenses/"

var (
	// gplRE matches Debian's GPL family short names.
	gplRE = regexp.MustCompile(`(?i)^(A|L)?GPL-?(\d(?:\.\d)?)(\.0)?(\+|-or-later|-only)?$`)
	// gfdlRE matches GFDL short names.
	gfdlRE = regexp.MustCompile(`(?i)^GFDL-(1\.[123])(\+|-or-later|-only)?$`)
)

// ParseCopyright returns the sorted, deduplicated licenses a Debian
// copyright file declares.
func ParseCopyright(b []byte) []string {
	var (
		out  []string
		dep5 bool
	)
	lines := strings.Split(string(b), "\n")
	for _, l := range lines {
		if hasPrefixFold(l, "Format:") || hasPrefixFold(l, "Format-Specification:") {
			dep5 = true
			break
		}
	}
	if dep5 {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "License:"); ok {
				out = append(out, splitExpression(v)...)
			}
		}
	} else {
		for s := string(b); ; {
			i := strings.Index(s, commonLicenses)
			if i < 0 {
				break
			}
			s = s[i+len(commonLicenses):]
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.+-", r))
			})
			if end < 0 {
				end = len(s)
			}
			name := strings.TrimRight(strings.TrimSuffix(s[:end], ".txt"), ".")
			if name != "" {
				out = append(out, NormalizeLicense(name))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// splitExpression splits a DEP-5 license expression ("GPL-2+ or Artistic,
// and Expat", "GPL-2 with OpenSSL exception") into normalized names.
// Alternatives that are not a single short name (free text written in the
// License field by mistake) are dropped.
func splitExpression(expr string) []string {
	var out, group []string
	flush := func() {
		if len(group) > 0 && (len(group) == 1 || strings.EqualFold(group[1], "with")) {
			if name := strings.Trim(group[0], "()"); name != "" {
				out = append(out, NormalizeLicense(name))
			}
		}
		group = group[:0]
	}
	for _, tok := range strings.Fields(strings.ReplaceAll(expr, ",", " ")) {
		if strings.EqualFold(tok, "and") || strings.EqualFold(tok, "or") {
			flush()
			continue
		}
		group = append(group, tok)
	}
	flush()
	return out
}

// spdxNames maps Debian short license names (lower case) to SPDX
// identifiers, for names the GPL and GFDL patterns do not cover.
var spdxNames = map[string]string{
	"apache-2":         "Apache-2.0",
	"apache-2.0":       "Apache-2.0",
	"apache-1.1":       "Apache-1.1",
	"artistic":         "Artistic-1.0",
	"artistic-1":       "Artistic-1.0",
	"artistic-1.0":     "Artistic-1.0",
	"artistic-2":       "Artistic-2.0",
	"artistic-2.0":     "Artistic-2.0",
	"bsd":              "BSD-3-Clause", // /usr/share/common-licenses/BSD
	"bsd-2-clause":     "BSD-2-Clause",
	"bsd-3-clause":     "BSD-3-Clause",
	"bsd-4-clause":     "BSD-4-Clause",
	"cc0":              "CC0-1.0",
	"cc0-1.0":          "CC0-1.0",
	"expat":            "MIT",
	"mit":              "MIT",
	"isc":              "ISC",
	"zlib":             "Zlib",
	"mpl-1.1":          "MPL-1.1",
	"mpl-2":            "MPL-2.0",
	"mpl-2.0":          "MPL-2.0",
	"psf-2":            "PSF-2.0",
	"python":           "Python-2.0",
	"python-2.0":       "Python-2.0",
	"openssl":          "OpenSSL",
	"curl":             "curl",
	"x11":              "X11",
	"unicode-dfs-2016": "Unicode-DFS-2016",
	"bsl-1.0":          "BSL-1.0",
	"boost-1.0":        "BSL-1.0",
	"ftl":              "FTL",
	"ofl-1.1":          "OFL-1.1",
	"wtfpl":            "WTFPL",
	"unlicense":        "Unlicense",
	"cc-by-4.0":        "CC-BY-4.0",
	"cc-by-sa-4.0":     "CC-BY-SA-4.0",
	"cc-by-sa-3.0":     "CC-BY-SA-3.0",
	"epl-1.0":          "EPL-1.0",
	"epl-2.0":          "EPL-2.0",
	"cddl-1.0":         "CDDL-1.0",
	"sleepycat":        "Sleepycat",
}

// NormalizeLicense turns a Debian short license name into its SPDX
// identifier where one is known, and returns other names unchanged
// ("public-domain", "GPL").
func NormalizeLicense(name string) string {
	if m := gplRE.FindStringSubmatch(name); m != nil {
		prefix := strings.ToUpper(m[1]) + "GPL-"
		v := m[2]
		if !strings.Contains(v, ".") {
			v += ".0"
		}
		if m[4] == "+" || strings.EqualFold(m[4], "-or-later") {
			return prefix + v + "-or-later"
		}
		return prefix + v + "-only"
	}
	if m := gfdlRE.FindStringSubmatch(name); m != nil {
		if m[2] == "+" || strings.EqualFold(m[2], "-or-later") {
			return "GFDL-" + m[1] + "-or-later"
		}
		return "GFDL-" + m[1] + "-only"
	}
	if s, ok := spdxNames[strings.ToLower(name)]; ok {
		return s
	}
	return name
}
