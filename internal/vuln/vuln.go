// Package vuln defines the vulnerability finding model that the matcher
// produces and that reports, the assurance evaluator and the server consume.
//
// A Finding is one vulnerability in one installed package. Records that
// describe the same vulnerability under different identifiers (GO-, GHSA-,
// PYSEC-, DSA-, CVE-) are merged into one finding whose ID is the preferred
// identifier and whose Aliases list the rest.
package vuln

import (
	"fmt"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Severity is a qualitative severity rating, ordered from least to most
// severe so that ratings can be compared with < and >.
type Severity int

// The severity ratings. SeverityUnknown sorts lowest: a finding whose
// severity nobody rated is never hidden by a severity filter that admits
// everything, and is reported as such.
const (
	SeverityUnknown Severity = iota
	SeverityNegligible
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// String returns the rating in upper case, for example "HIGH".
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "UNKNOWN"
	}
	return severityNames[s]
}

// ParseSeverity parses a rating name in any case. Vendor spellings are
// accepted too: "moderate" and "important" (GitHub, Red Hat), "unimportant"
// (Debian) and "none" (CVSS).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "UNKNOWN", "":
		return SeverityUnknown, nil
	case "NEGLIGIBLE", "UNIMPORTANT", "NONE":
		return SeverityNegligible, nil
	case "LOW":
		return SeverityLow, nil
	case "MEDIUM", "MODERATE":
		return SeverityMedium, nil
	case "HIGH", "IMPORTANT":
		return SeverityHigh, nil
	case "CRITICAL":
		return SeverityCritical, nil
	}
	return SeverityUnknown, fmt.Errorf("unknown severity %q (want one of UNKNOWN, NEGLIGIBLE, LOW, MEDIUM, HIGH, CRITICAL)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Status is the vendor's status of a vulnerability for a package.
type Status string

// The vendor statuses.
const (
	// StatusFixed: a fixed version exists (Finding.FixedVersions).
	StatusFixed Status = "fixed"
	// StatusNotFixed: the package is affected and no fix is released yet.
	StatusNotFixed Status = "not-fixed"
	// StatusWontFix: the vendor has decided not to fix it in this release.
	StatusWontFix Status = "wont-fix"
	// StatusNotAffected: the vendor states the package is not affected.
	// Such findings are kept for the record but never count against a gate.
	StatusNotAffected Status = "not-affected"
)

// CVSS is one CVSS vector with the base score computed from it.
type CVSS struct {
	// Version is "2.0", "3.0", "3.1" or "4.0".
	Version string `json:"version"`
	// Vector is the vector string as published.
	Vector string `json:"vector"`
	// Score is the base score computed by mamori from Vector.
	Score float64 `json:"score"`
	// Severity is the qualitative rating of Score in that CVSS version.
	Severity Severity `json:"severity"`
	// Source names the record the vector came from.
	Source string `json:"source,omitempty"`
}

// VendorSeverity is a severity rating published by a vendor or database,
// for example Debian's urgency or GitHub's advisory severity.
type VendorSeverity struct {
	Source   string   `json:"source"`
	Severity Severity `json:"severity"`
}

// Reachability says whether a Go binary contains the vulnerable code.
type Reachability struct {
	// Status is ReachableYes, ReachableNo or ReachableUnknown.
	Status string `json:"status"`
	// Symbols are the vulnerable symbols found in the binary.
	Symbols []string `json:"symbols,omitempty"`
}

// Reachability statuses.
const (
	ReachableYes     = "reachable"
	ReachableNo      = "not-reachable"
	ReachableUnknown = "unknown"
)

// Suppression records why a finding is suppressed. Suppressed findings stay
// in the JSON report but no longer count for the gate.
type Suppression struct {
	// Kind is "ignore" (ignore file), "vex" (OpenVEX statement) or "policy".
	Kind string `json:"kind"`
	// Source is the file the rule or statement came from.
	Source string `json:"source,omitempty"`
	// Status is the VEX status, for example "not_affected" or "fixed".
	Status string `json:"status,omitempty"`
	// Justification explains the suppression.
	Justification string `json:"justification"`
	// Expires, when set, is when an ignore rule stops applying.
	Expires *time.Time `json:"expires,omitempty"`
}

// Package identifies the package a finding is in.
type Package struct {
	Name          string          `json:"name"`
	Version       string          `json:"version"`
	Type          string          `json:"type"`
	PURL          string          `json:"purl"`
	Path          string          `json:"path"`
	Layer         inventory.Layer `json:"layer"`
	SourceName    string          `json:"sourceName,omitempty"`
	SourceVersion string          `json:"sourceVersion,omitempty"`
	OwnedBy       string          `json:"ownedBy,omitempty"`
}

// PackageOf returns the Package reference for an inventory package.
func PackageOf(p *inventory.Package) Package {
	return Package{
		Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Path: p.Path,
		Layer: p.Layer, SourceName: p.SourceName, SourceVersion: p.SourceVersion, OwnedBy: p.OwnedBy,
	}
}

// Finding is one vulnerability in one package.
type Finding struct {
	// ID is the preferred identifier: the CVE when there is one, then a
	// GHSA, then the identifier of the first matching record.
	ID string `json:"id"`
	// Aliases are the other identifiers of the same vulnerability.
	Aliases []string `json:"aliases,omitempty"`
	// Records are the database records that matched, by their own IDs.
	Records []string `json:"records"`
	// Package is the affected package.
	Package Package `json:"package"`
	// Ecosystem is the database ecosystem the package was matched in,
	// for example "Debian:12" or "Go".
	Ecosystem string `json:"ecosystem"`
	// MatchedName and MatchedVersion are the name and version the match
	// used: the source package for distro packages.
	MatchedName    string `json:"matchedName"`
	MatchedVersion string `json:"matchedVersion"`
	// Status is the vendor status; FixedVersions are set when it is fixed.
	Status        Status   `json:"status"`
	FixedVersions []string `json:"fixedVersions,omitempty"`
	// Severity is the deciding rating and SeveritySource says where it
	// came from ("vendor:debian", "cvss:3.1", ...); see docs/vulnerabilities.md.
	Severity       Severity         `json:"severity"`
	SeveritySource string           `json:"severitySource,omitempty"`
	CVSS           []CVSS           `json:"cvss,omitempty"`
	VendorSeverity []VendorSeverity `json:"vendorSeverity,omitempty"`
	Summary        string           `json:"summary,omitempty"`
	URL            string           `json:"url,omitempty"`
	References     []string         `json:"references,omitempty"`
	Published      *time.Time       `json:"published,omitempty"`
	Modified       *time.Time       `json:"modified,omitempty"`
	// Reachability is set for Go findings in binaries.
	Reachability *Reachability `json:"reachability,omitempty"`
	// Suppressed is set when an ignore rule or VEX statement applies.
	Suppressed *Suppression `json:"suppressed,omitempty"`
}

// MaxScore returns the highest CVSS base score of the finding, or 0.
func (f *Finding) MaxScore() float64 {
	var m float64
	for _, c := range f.CVSS {
		m = max(m, c.Score)
	}
	return m
}

// Counts returns true when the finding counts against a gate: it is not
// suppressed and the vendor does not say the package is unaffected.
func (f *Finding) Counts() bool {
	return f.Suppressed == nil && f.Status != StatusNotAffected
}

// HasID reports whether id is the finding's ID or one of its aliases.
func (f *Finding) HasID(id string) bool {
	if strings.EqualFold(f.ID, id) {
		return true
	}
	for _, a := range f.Aliases {
		if strings.EqualFold(a, id) {
			return true
		}
	}
	return false
}

// DBInfo describes the vulnerability database a scan used.
type DBInfo struct {
	Path    string    `json:"path,omitempty"`
	Built   time.Time `json:"built"`
	Records int       `json:"records"`
	Sources []string  `json:"sources,omitempty"`
}
