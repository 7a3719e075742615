package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/mamorisec/mamori/internal/sbom"
	"github.com/mamorisec/mamori/internal/vuln"
)

// writeSPDX writes the scan as an SPDX 2.3 JSON document: the SBOM of
// package sbom with, on each affected package, one external reference of
// category SECURITY and type advisory (SPDX 2.3 annex F) per finding that
// counts. Suppressed and not affected findings are left out: SPDX 2.3 has
// no way to say that a package is not affected by an advisory.
func writeSPDX(w io.Writer, s *Scan, opts Options) error {
	// Package sbom builds the document but only exports the encoded text,
	// so it is read back to add the advisories.
	var buf bytes.Buffer
	if err := sbom.Encode(&buf, s.Inventory, sbom.FormatSPDX, sbomOptions(s, opts)); err != nil {
		return err
	}
	doc, err := spdxjson.Read(&buf)
	if err != nil {
		return fmt.Errorf("reading back the SPDX SBOM: %w", err)
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
		for _, p := range spdxPackages(doc, &f.Package) {
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
	}
	return spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false))
}

// spdxPackages finds the packages of p in doc: package sbom writes a
// package's name, version and purl, and its sourceInfo starts with "found
// in <path> in layer ".
func spdxPackages(doc *spdx.Document, p *vuln.Package) []*spdx.Package {
	prefix := "found in " + p.Path + " in layer "
	var out []*spdx.Package
	for _, sp := range doc.Packages {
		if sp.PackageName != p.Name || sp.PackageVersion != p.Version || !strings.HasPrefix(sp.PackageSourceInfo, prefix) {
			continue
		}
		if p.PURL != "" && !hasPURL(sp, p.PURL) {
			continue
		}
		out = append(out, sp)
	}
	return out
}

func hasPURL(sp *spdx.Package, purl string) bool {
	for _, r := range sp.PackageExternalReferences {
		if r.RefType == common.TypePackageManagerPURL && r.Locator == purl {
			return true
		}
	}
	return false
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
