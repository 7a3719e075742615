package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

// licenseKind classifies a declared license value.
type licenseKind int

const (
	// licenseID is a single SPDX license identifier (active or deprecated).
	licenseID licenseKind = iota
	// licenseExpression is a valid SPDX license expression that is not a
	// single identifier ("MIT AND BSD-3-Clause", "GPL-2.0-only WITH
	// Classpath-exception-2.0", "Apache-2.0+", "LicenseRef-x").
	licenseExpression
	// licenseName is anything else: a free-form license name
	// ("public-domain", "GPL-2+", "Artistic or GPL").
	licenseName
)

// license is one declared license value, classified.
type license struct {
	kind licenseKind
	// value is the normalized identifier or expression for licenseID and
	// licenseExpression, and the trimmed original text for licenseName.
	value string
}

// licenseClassifier classifies license values, remembering the results: a
// report repeats the same few license strings across thousands of packages.
type licenseClassifier map[string]license

// classify classifies the license value s (already trimmed, non-empty).
func (c licenseClassifier) classify(s string) license {
	if l, ok := c[s]; ok {
		return l
	}
	l := classifyLicense(s)
	c[s] = l
	return l
}

func classifyLicense(s string) license {
	if ok, id := spdxlicenses.IsActiveLicense(s); ok {
		return license{licenseID, id}
	}
	if ok, id := spdxlicenses.IsDeprecatedLicense(s); ok {
		return license{licenseID, id}
	}
	// Document references point into other SPDX documents, which mamori
	// never declares, so they cannot stay references.
	if hasDocumentRef(s) {
		return license{licenseName, s}
	}
	norm, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{s}, spdxexp.ValidateLicensesOptions{})
	if len(invalid) > 0 || len(norm) != 1 || !validRefs(norm[0]) {
		return license{licenseName, s}
	}
	return license{licenseExpression, norm[0]}
}

// hasDocumentRef reports whether a term of the expression e starts with
// "DocumentRef-".
func hasDocumentRef(e string) bool {
	for i := 0; ; {
		j := strings.Index(e[i:], "DocumentRef-")
		if j < 0 {
			return false
		}
		if i+j == 0 || e[i+j-1] == ' ' || e[i+j-1] == '(' {
			return true
		}
		i += j + 1
	}
}

// validRefs reports whether every LicenseRef in the expression e has a valid
// idstring ([A-Za-z0-9.-]+), as SPDX requires.
func validRefs(e string) bool {
	for {
		i := strings.Index(e, "LicenseRef-")
		if i < 0 {
			return true
		}
		e = e[i+len("LicenseRef-"):]
		n := 0
		for n < len(e) && e[n] != ' ' && e[n] != ')' {
			n++
		}
		if _, ok := idString(e[:n], len(e)); !ok || n == 0 {
			return false
		}
	}
}

// licenseRefs returns the LicenseRef-... identifiers used in the expression e.
func licenseRefs(e string) []string {
	var refs []string
	for {
		i := strings.Index(e, "LicenseRef-")
		if i < 0 {
			return refs
		}
		e = e[i:]
		n := len("LicenseRef-")
		for n < len(e) && e[n] != ' ' && e[n] != ')' {
			n++
		}
		refs = append(refs, e[:n])
		e = e[n:]
	}
}

// licenseRef returns the SPDX LicenseRef identifier mamori uses for the
// free-form license name s: "LicenseRef-" and s itself when s is a valid
// idstring, else s with the other characters replaced by '-' and a short hash
// of s appended, so distinct names never share an identifier.
func licenseRef(s string) string {
	id, ok := idString(s, 64)
	if ok {
		return "LicenseRef-" + id
	}
	sum := sha256.Sum256([]byte(s))
	return "LicenseRef-" + id + "-" + hex.EncodeToString(sum[:4])
}

// isCompound reports whether the expression e needs parentheses when joined
// with others.
func isCompound(e string) bool {
	return strings.Contains(e, " ")
}

// joinAND joins license expressions with AND, parenthesizing compound ones.
func joinAND(terms []string) string {
	if len(terms) == 1 {
		return terms[0]
	}
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" AND ")
		}
		if isCompound(t) {
			b.WriteString("(" + t + ")")
		} else {
			b.WriteString(t)
		}
	}
	return b.String()
}

// licenseListVersion is the SPDX license list version ("3.29") that license
// identifiers are checked against.
func licenseListVersion() string {
	v := spdxlicenses.LicenseListVersion()
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}
