package report

import (
	"io"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/mamorisec/mamori/internal/sbom"
	"github.com/mamorisec/mamori/internal/vuln"
)

// propertyPrefix starts the names of the CycloneDX properties mamori writes.
const propertyPrefix = "mamori:"

// sbomOptions are the options of the SBOM a report embeds. The seed makes
// its serial number and namespace differ from those of the plain SBOM of the
// same image made at the same time.
func sbomOptions(s *Scan, opts Options) sbom.Options {
	im := s.Inventory.Image
	return sbom.Options{
		Now:         opts.now,
		ToolVersion: opts.ToolVersion,
		Seed:        strings.Join([]string{"mamori-scan", im.Digest, im.ID, im.Name, im.Ref}, "\x00"),
	}
}

// writeCycloneDX writes the scan as a CycloneDX 1.6 JSON BOM: the SBOM of
// package sbom with one vulnerability per finding that affects the
// finding's component.
func writeCycloneDX(w io.Writer, s *Scan, opts Options) error {
	bom, refs := sbom.CycloneDXBOM(s.Inventory, sbomOptions(s, opts))
	imageRef := bom.Metadata.Component.BOMRef
	cdxApplyLicenses(bom, refs, s.Licenses)

	var vulns []cdx.Vulnerability
	seen := make(map[string]bool)
	for _, f := range sortedFindings(s) {
		// A package the inventory does not list: the image is affected.
		affected := []string{imageRef}
		if ref, ok := refs[packageKey(&f.Package)]; ok {
			affected = []string{ref}
		}
		// The key is the ID as written, invalid UTF-8 replaced.
		key := strings.ToValidUTF8(f.ID, "\uFFFD") + "\x00" + strings.Join(affected, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		vulns = append(vulns, cdxVulnerability(f, affected))
	}
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}
	if anns := cdxAnnotations(s, imageRef, bom.Metadata.Timestamp, opts.toolVersion()); len(anns) > 0 {
		bom.Annotations = &anns
	}
	return sbom.WriteCycloneDX(w, bom)
}

// cdxVulnerability describes one finding. Its source is the database that
// assigned its ID; the finding's own URL and references are advisories.
func cdxVulnerability(f *vuln.Finding, affected []string) cdx.Vulnerability {
	v := cdx.Vulnerability{
		ID:          f.ID,
		Source:      &cdx.Source{Name: sourceName(f.ID), URL: idURL(f.ID)},
		Description: f.Summary,
		Published:   cdxTime(f.Published),
		Updated:     cdxTime(f.Modified),
	}
	var refs []cdx.VulnerabilityReference
	seen := map[string]bool{f.ID: true}
	for _, ids := range [][]string{f.Aliases, f.Records} {
		for _, id := range ids {
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			refs = append(refs, cdx.VulnerabilityReference{ID: id, Source: &cdx.Source{Name: sourceName(id), URL: idURL(id)}})
		}
	}
	if len(refs) > 0 {
		v.References = &refs
	}
	var advisories []cdx.Advisory
	for _, u := range append([]string{f.URL}, f.References...) {
		if webURL(u) && !slices.ContainsFunc(advisories, func(a cdx.Advisory) bool { return a.URL == u }) {
			advisories = append(advisories, cdx.Advisory{URL: u})
		}
	}
	if len(advisories) > 0 {
		v.Advisories = &advisories
	}
	if ratings := cdxRatings(f); len(ratings) > 0 {
		v.Ratings = &ratings
	}
	if len(f.FixedVersions) > 0 {
		v.Recommendation = "Upgrade " + f.Package.Name + " to " + strings.Join(f.FixedVersions, " or ") + " or later."
	}
	v.Analysis = cdxAnalysis(f)
	affects := make([]cdx.Affects, len(affected))
	for i, ref := range affected {
		affects[i] = cdx.Affects{Ref: ref}
	}
	v.Affects = &affects

	var props []cdx.Property
	add := func(name, value string) {
		if value != "" {
			props = append(props, cdx.Property{Name: propertyPrefix + name, Value: value})
		}
	}
	add("status", string(f.Status))
	add("ecosystem", f.Ecosystem)
	add("severity", f.Severity.String())
	add("severitySource", f.SeveritySource)
	if r := f.Reachability; r != nil {
		add("reachability", r.Status)
		for _, sym := range r.Symbols {
			add("reachability:symbol", sym)
		}
	}
	if len(props) > 0 {
		v.Properties = &props
	}
	return v
}

// cdxRatings lists the CVSS ratings, then the vendors' severities (method
// "other"). A finding with neither is rated by its own severity, if known.
func cdxRatings(f *vuln.Finding) []cdx.VulnerabilityRating {
	var out []cdx.VulnerabilityRating
	type key struct {
		method      cdx.ScoringMethod
		vector, src string
		score       float64
		severity    cdx.Severity
	}
	seen := map[key]bool{}
	add := func(r cdx.VulnerabilityRating) {
		k := key{method: r.Method, vector: r.Vector, severity: r.Severity}
		if r.Source != nil {
			k.src = r.Source.Name
		}
		if r.Score != nil {
			k.score = *r.Score
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	for _, c := range f.CVSS {
		score := c.Score
		add(cdx.VulnerabilityRating{
			Source:   cdxSource(c.Source),
			Score:    &score,
			Severity: cdxSeverity(c.Severity),
			Method:   cvssMethod(c.Version),
			Vector:   c.Vector,
		})
	}
	for _, vs := range f.VendorSeverity {
		add(cdx.VulnerabilityRating{Source: cdxSource(vs.Source), Severity: cdxSeverity(vs.Severity), Method: cdx.ScoringMethodOther})
	}
	if len(out) == 0 && f.Severity != vuln.SeverityUnknown {
		add(cdx.VulnerabilityRating{Source: cdxSource(f.SeveritySource), Severity: cdxSeverity(f.Severity), Method: cdx.ScoringMethodOther})
	}
	return out
}

func cdxSource(name string) *cdx.Source {
	if name == "" {
		return nil
	}
	return &cdx.Source{Name: name}
}

func cvssMethod(version string) cdx.ScoringMethod {
	switch version {
	case "2.0", "2":
		return cdx.ScoringMethodCVSSv2
	case "3.0", "3":
		return cdx.ScoringMethodCVSSv3
	case "3.1":
		return cdx.ScoringMethodCVSSv31
	case "4.0", "4":
		return cdx.ScoringMethodCVSSv4
	}
	return cdx.ScoringMethodOther
}

func cdxSeverity(s vuln.Severity) cdx.Severity {
	switch s {
	case vuln.SeverityCritical:
		return cdx.SeverityCritical
	case vuln.SeverityHigh:
		return cdx.SeverityHigh
	case vuln.SeverityMedium:
		return cdx.SeverityMedium
	case vuln.SeverityLow:
		return cdx.SeverityLow
	case vuln.SeverityNegligible:
		return cdx.SeverityInfo
	}
	return cdx.SeverityUnknown
}

// vexStates maps OpenVEX statuses to CycloneDX analysis states.
var vexStates = map[string]cdx.ImpactAnalysisState{
	"not_affected":        cdx.IASNotAffected,
	"fixed":               cdx.IASResolved,
	"affected":            cdx.IASExploitable,
	"under_investigation": cdx.IASInTriage,
}

// vexJustifications maps OpenVEX justifications to CycloneDX ones.
var vexJustifications = map[string]cdx.ImpactAnalysisJustification{
	"component_not_present":                             cdx.IAJCodeNotPresent,
	"vulnerable_code_not_present":                       cdx.IAJCodeNotPresent,
	"vulnerable_code_not_in_execute_path":               cdx.IAJCodeNotReachable,
	"vulnerable_code_cannot_be_controlled_by_adversary": cdx.IAJRequiresEnvironment,
	"inline_mitigations_already_exist":                  cdx.IAJProtectedByMitigatingControl,
}

// cdxAnalysis records why a finding does not count: its suppression (the
// VEX status and justification where there is one) or the vendor's not
// affected status. It is nil for findings that count.
func cdxAnalysis(f *vuln.Finding) *cdx.VulnerabilityAnalysis {
	if sp := f.Suppressed; sp != nil {
		a := &cdx.VulnerabilityAnalysis{
			State:         vexStates[sp.Status],
			Justification: vexJustifications[sp.Justification],
		}
		detail := "Suppressed by " + sp.Kind
		if sp.Source != "" {
			detail += " (" + sp.Source + ")"
		}
		if sp.Justification != "" {
			detail += ": " + sp.Justification
		}
		if sp.Expires != nil {
			detail += "; expires " + sp.Expires.UTC().Format(time.RFC3339)
		}
		a.Detail = detail
		return a
	}
	if f.Status == vuln.StatusNotAffected {
		return &cdx.VulnerabilityAnalysis{
			State:  cdx.IASNotAffected,
			Detail: "The vendor states that the package is not affected (" + f.Ecosystem + ").",
		}
	}
	return nil
}

func cdxTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
