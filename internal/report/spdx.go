package report

import (
	"io"
	"strings"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/mamorisec/mamori/internal/sbom"
	"github.com/mamorisec/mamori/internal/vuln"
)

// writeSPDX writes the scan as an SPDX 2.3 JSON document: the SBOM of
// package sbom with, on each affected package, one external reference of
// category SECURITY and type advisory (SPDX 2.3 annex F) per finding that
// counts, and the license analysis' SPDX expression as the concluded
// license. Suppressed and not affected findings are left out: SPDX 2.3 has
// no way to say that a package is not affected by an advisory.
func writeSPDX(w io.Writer, s *Scan, opts Options) error {
	doc, pkgs := sbom.SPDXDocument(s.Inventory, sbomOptions(s, opts))
	if s.Licenses != nil {
		// The analysis' expression is the concluded license, when it names
		// SPDX licenses only (a LicenseRef would need its text declared).
		for i := range s.Licenses.Packages {
			pl := &s.Licenses.Packages[i]
			if p, ok := pkgs[pl.Key]; ok && pl.Expression != "" && !strings.Contains(pl.Expression, "LicenseRef-") {
				p.PackageLicenseConcluded = pl.Expression
			}
		}
	}
	seen := make(map[*spdx.Package]map[string]bool)
	for _, f := range sortedFindings(s) {
		if !f.Counts() {
			continue
		}
		locator := advisoryURL(f)
		if locator == "" {
			continue
		}
		p, ok := pkgs[packageKey(&f.Package)]
		if !ok {
			continue
		}
		if seen[p] == nil {
			seen[p] = make(map[string]bool)
		}
		if seen[p][locator] {
			continue
		}
		seen[p][locator] = true
		p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{
			Category:           common.CategorySecurity,
			RefType:            common.TypeSecurityAdvisory,
			Locator:            locator,
			ExternalRefComment: spdxComment(f),
		})
	}
	return sbom.WriteSPDX(w, doc)
}

// spdxComment summarizes a finding for its advisory reference.
func spdxComment(f *vuln.Finding) string {
	c := f.ID + " (" + f.Severity.String() + ", "
	if len(f.FixedVersions) > 0 {
		c += "fixed in " + strings.Join(f.FixedVersions, ", ") + ")"
	} else {
		c += string(f.Status) + ")"
	}
	if f.Summary != "" {
		c += ": " + f.Summary
	}
	return c
}
