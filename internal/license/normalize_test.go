package license

import (
	"strings"
	"testing"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"

	"github.com/mamorisec/mamori/internal/inventory"
)

// normalizeCases are real declared license strings, collected from Debian
// copyright files (/usr/share/doc/*/copyright on Debian 12), PyPI METADATA
// files, npm package.json files, Maven POMs, RubyGems, Composer and Cargo
// metadata and Fedora RPM headers, with the SPDX expression each should
// give. ok is false where the string should stay unrecognized.
var normalizeCases = []struct {
	in   string
	want string
	ok   bool
}{
	// SPDX identifiers and expressions (npm, Cargo, gems, PyPI License-Expression).
	{"MIT", "MIT", true},
	{"mit", "MIT", true},
	{"Apache-2.0", "Apache-2.0", true},
	{"BSD-3-Clause", "BSD-3-Clause", true},
	{"0BSD", "0BSD", true},
	{"CC-BY-4.0", "CC-BY-4.0", true},
	{"(MIT OR Apache-2.0)", "MIT OR Apache-2.0", true},
	{"MIT OR Apache-2.0", "MIT OR Apache-2.0", true},
	{"(MIT AND Zlib)", "MIT AND Zlib", true},
	{"Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception", true},
	{"(BSD-2-Clause OR MIT OR Apache-2.0)", "BSD-2-Clause OR MIT OR Apache-2.0", true},
	{"MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)", "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)", true},
	{"Unlicense OR MIT", "Unlicense OR MIT", true},
	{"LicenseRef-scancode-public-domain", "LicenseRef-scancode-public-domain", true},
	// Deprecated SPDX identifiers (old npm and Cargo metadata).
	{"GPL-2.0", "GPL-2.0-only", true},
	{"GPL-2.0+", "GPL-2.0-or-later", true},
	{"LGPL-2.1", "LGPL-2.1-only", true},
	{"AGPL-3.0", "AGPL-3.0-only", true},
	{"GPL-3.0-only+", "GPL-3.0-or-later", true},
	{"Apache-2.0+", "Apache-2.0+", true},
	{"GPL-2.0-with-classpath-exception", "GPL-2.0-only WITH Classpath-exception-2.0", true},
	// Cargo's legacy slash.
	{"MIT/Apache-2.0", "MIT OR Apache-2.0", true},
	{"Apache-2.0/MIT", "Apache-2.0 OR MIT", true},
	// Debian DEP-5 short names.
	{"GPL-2+", "GPL-2.0-or-later", true},
	{"GPL-2", "GPL-2.0-only", true},
	{"LGPL-2.1+", "LGPL-2.1-or-later", true},
	{"LGPL-2+", "LGPL-2.0-or-later", true},
	{"GPL-3+", "GPL-3.0-or-later", true},
	{"BSD-3-clause", "BSD-3-Clause", true},
	{"BSD-2", "BSD-2-Clause", true},
	{"Expat", "MIT", true},
	{"public-domain", "LicenseRef-public-domain", true},
	{"Public-domain", "LicenseRef-public-domain", true},
	{"PublicDomain", "LicenseRef-public-domain", true},
	{"permissive", "LicenseRef-permissive", true},
	{"X/MIT", "MIT", true},
	{"Expat~Ghostgum", "", false},
	{"none", "LicenseRef-none", false},
	{"Artistic", "Artistic-1.0-Perl", true},
	{"GPL-1+ or Artistic", "GPL-1.0-or-later OR Artistic-1.0-Perl", true},
	{"Artistic or GPL-1+", "Artistic-1.0-Perl OR GPL-1.0-or-later", true},
	{"LGPL-3+ or GPL-2+", "LGPL-3.0-or-later OR GPL-2.0-or-later", true},
	{"MPL-1.1 or GPL-2+ or LGPL-2.1+", "MPL-1.1 OR GPL-2.0-or-later OR LGPL-2.1-or-later", true},
	{"BSL-1.0 and MIT", "BSL-1.0 AND MIT", true},
	{"BSD-3-clause or GPL-2", "BSD-3-Clause OR GPL-2.0-only", true},
	{"GPL-2+ with OpenSSL exception", "GPL-2.0-or-later", true},
	{"GPL-2+ with Autoconf exception", "GPL-2.0-or-later WITH Autoconf-exception-generic", true},
	{"GPL-3+ with GCC-exception-3.1", "GPL-3.0-or-later WITH GCC-exception-3.1", true},
	{"ZLIB", "Zlib", true},
	{"curl", "curl", true},
	{"OpenLDAP-2.8", "OLDAP-2.8", true},
	{"MIT/X11", "X11", true},
	{"GPL", "LicenseRef-GPL", true},
	{"LGPL", "LicenseRef-LGPL", true},
	{"Apache-2.0-Expat", "LicenseRef-Apache-2.0-Expat", false},
	{"LGPLv3+_or_GPLv2+", "", false},
	{"Permission to use, copy, modify, and distribute this software and its", "", false},
	// Fedora RPM short names.
	{"GPLv2+", "GPL-2.0-or-later", true},
	{"GPLv3+", "GPL-3.0-or-later", true},
	{"LGPLv2.1+", "LGPL-2.1-or-later", true},
	{"ASL 2.0", "Apache-2.0", true},
	{"GPLv2+ and LGPLv2+ and BSD", "GPL-2.0-or-later AND LGPL-2.0-or-later AND LicenseRef-BSD", true},
	{"GPLv2+ with exceptions", "GPL-2.0-or-later", true},
	{"GPL+ or Artistic", "GPL-1.0-or-later OR Artistic-1.0-Perl", true},
	{"Public Domain", "LicenseRef-public-domain", true},
	{"MPLv2.0", "MPL-2.0", true},
	// Maven POM and OSGi names.
	{"The Apache Software License, Version 2.0", "Apache-2.0", true},
	{"Apache License, Version 2.0", "Apache-2.0", true},
	{"Apache License 2.0", "Apache-2.0", true},
	{"Apache 2.0", "Apache-2.0", true},
	{"Eclipse Public License - v 1.0", "EPL-1.0", true},
	{"Eclipse Public License v2.0", "EPL-2.0", true},
	{"GNU Lesser General Public License, version 2.1", "LGPL-2.1-only", true},
	{"GNU General Public License v3 or later", "GPL-3.0-or-later", true},
	{"CDDL + GPLv2 with classpath exception", "CDDL-1.0 OR GPL-2.0-only WITH Classpath-exception-2.0", true},
	{"GPL2 w/ CPE", "GPL-2.0-only WITH Classpath-exception-2.0", true},
	{"The MIT License", "MIT", true},
	{"The MIT License (MIT)", "MIT", true},
	{"New BSD License", "BSD-3-Clause", true},
	{"http://www.apache.org/licenses/LICENSE-2.0.txt", "Apache-2.0", true},
	{"https://opensource.org/licenses/MIT", "MIT", true},
	{"http://www.opensource.org/licenses/mit-license.php", "MIT", true},
	{"https://www.eclipse.org/legal/epl-2.0/", "EPL-2.0", true},
	// PyPI License headers and classifier leftovers.
	{"BSD", "LicenseRef-BSD", true},
	{"BSD License", "LicenseRef-BSD", true},
	{"Apache 2", "Apache-2.0", true},
	{"PSF", "PSF-2.0", true},
	{"Python Software Foundation License", "PSF-2.0", true},
	{"GNU Library or Lesser General Public License (LGPL)", "LicenseRef-LGPL", true},
	{"MIT License", "MIT", true},
	// npm legacy and special values.
	{"UNLICENSED", "LicenseRef-UNLICENSED", true},
	{"SEE LICENSE IN LICENSE.md", "", false},
	{"WTFPL", "WTFPL", true},
	{"Apache-2.0 WITH Commons-Clause", "Apache-2.0 AND LicenseRef-Commons-Clause", true},
	{"BSD-3-Clause AND (MIT OR", "", false},
}

func TestNormalizeString(t *testing.T) {
	for _, c := range normalizeCases {
		e, _, ok := NormalizeString(c.in)
		got := e.String()
		if ok != c.ok {
			t.Errorf("NormalizeString(%q) ok = %v, want %v (got %q)", c.in, ok, c.ok, got)
		}
		if c.want != "" && got != c.want {
			t.Errorf("NormalizeString(%q) = %q, want %q", c.in, got, c.want)
		}
		if !c.ok && !strings.HasPrefix(got, "LicenseRef-") {
			t.Errorf("NormalizeString(%q) = %q, want a LicenseRef", c.in, got)
		}
		if valid, invalid := spdxexp.ValidateLicenses([]string{got}); !valid {
			t.Errorf("NormalizeString(%q) = %q, not valid SPDX: %v", c.in, got, invalid)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		typ          string
		in           []string
		want         string
		unrecognized []string
		dropped      []string
	}{
		{inventory.TypeNPM, nil, "", nil, nil},
		{inventory.TypePyPI, []string{"UNKNOWN"}, "", nil, nil},
		{inventory.TypeDeb, []string{"GPL-2.0-or-later", "LGPL-2.1-or-later", "GPL-2.0-or-later"}, "GPL-2.0-or-later AND LGPL-2.1-or-later", nil, nil},
		{inventory.TypeGem, []string{"MIT", "Ruby"}, "MIT AND Ruby", nil, nil},
		{inventory.TypeComposer, []string{"LGPL-2.1-only", "GPL-3.0-or-later"}, "LGPL-2.1-only OR GPL-3.0-or-later", nil, nil},
		{inventory.TypeComposer, []string{"MIT AND BSD-3-Clause", "GPL-3.0-only"}, "(MIT AND BSD-3-Clause) OR GPL-3.0-only", nil, nil},
		{inventory.TypeNPM, []string{"MIT OR Apache-2.0", "ISC"}, "(MIT OR Apache-2.0) AND ISC", nil, nil},
		{inventory.TypeRPM, []string{"GPLv2+ with OpenSSL exception and LGPLv2+"}, "GPL-2.0-or-later AND LGPL-2.0-or-later", nil, []string{"OpenSSL exception"}},
		{inventory.TypeMaven, []string{"Some Corp EULA", "MIT"}, "LicenseRef-Some-Corp-EULA-a9bee8e6 AND MIT", []string{"Some Corp EULA"}, nil},
	} {
		n := Normalize(c.typ, c.in)
		if n.Expression != c.want || strings.Join(n.Unrecognized, "|") != strings.Join(c.unrecognized, "|") ||
			strings.Join(n.Dropped, "|") != strings.Join(c.dropped, "|") {
			t.Errorf("Normalize(%s, %q) = %q unrecognized %q dropped %q, want %q %q %q",
				c.typ, c.in, n.Expression, n.Unrecognized, n.Dropped, c.want, c.unrecognized, c.dropped)
		}
	}
}

func TestRef(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"public-domain", "LicenseRef-public-domain"},
		{"Apache-2.0-Expat", "LicenseRef-Apache-2.0-Expat"},
		{"Some Corp EULA", "LicenseRef-Some-Corp-EULA-a9bee8e6"},
		{"!!!", "LicenseRef-"},
		{strings.Repeat("a", 100), "LicenseRef-" + strings.Repeat("a", 48) + "-"},
	} {
		got := Ref(c.in)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("Ref(%q) = %q, want prefix %q", c.in, got, c.want)
		}
		if !validIDString(strings.TrimPrefix(got, "LicenseRef-")) {
			t.Errorf("Ref(%q) = %q: not a valid idstring", c.in, got)
		}
	}
	if Ref("a b") == Ref("a-b") {
		t.Errorf("Ref gives %q for both \"a b\" and \"a-b\"", Ref("a b"))
	}
}

// TestAliases checks that every alias value is a valid SPDX expression.
func TestAliases(t *testing.T) {
	for name, v := range aliasNames {
		if valid, invalid := spdxexp.ValidateLicenses([]string{v}); !valid {
			t.Errorf("alias %q -> %q: invalid %v", name, v, invalid)
		}
	}
	for k, v := range exceptionAliases {
		if _, ok := exceptionID(v); !ok {
			t.Errorf("exception alias %q -> %q: not an SPDX exception", k, v)
		}
	}
	for id, e := range deprecatedWith {
		if ok, _ := spdxlicenses.IsDeprecatedLicense(id); !ok {
			t.Errorf("deprecatedWith: %q is not a deprecated SPDX identifier", id)
		}
		if _, ok := spdxID(e[0]); !ok {
			t.Errorf("deprecatedWith: %q is not an SPDX identifier", e[0])
		}
		if _, ok := exceptionID(e[1]); !ok {
			t.Errorf("deprecatedWith: %q is not an SPDX exception", e[1])
		}
	}
	for u, v := range urlAliases {
		if valid, invalid := spdxexp.ValidateLicenses([]string{v}); !valid {
			t.Errorf("URL alias %q -> %q: invalid %v", u, v, invalid)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, c := range normalizeCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(inventory.TypeNPM, []string{s, "MIT"})
		if valid, invalid := spdxexp.ValidateLicenses([]string{n.Expression}); !valid {
			t.Fatalf("Normalize(%q) = %q: invalid SPDX %v", s, n.Expression, invalid)
		}
		back, err := ParseExpression(n.Expression)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q does not parse: %v", s, n.Expression, err)
		}
		if back.String() != n.Expression {
			t.Fatalf("Normalize(%q) = %q, reparsed %q", s, n.Expression, back.String())
		}
	})
}
