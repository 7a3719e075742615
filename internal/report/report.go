// Package report defines the scan report and writes it as a table, JSON,
// SARIF 2.1.0, CycloneDX 1.6 with vulnerabilities, SPDX 2.3 and a
// single-file HTML page.
package report

import (
	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/vuln"
)

// SchemaVersion is the version of the JSON scan report. It changes only
// when a field is removed or changes meaning; see docs/scan-json.md.
const SchemaVersion = 1

// Scan is the result of scanning one image.
type Scan struct {
	SchemaVersion int `json:"schemaVersion"`
	// Inventory is the image and its packages.
	Inventory *inventory.Report `json:"inventory"`
	// DB describes the vulnerability database used.
	DB *vuln.DBInfo `json:"db,omitempty"`
	// Vulnerabilities are sorted by package (type, name, version, path),
	// then by descending severity and ID. Suppressed findings are kept.
	Vulnerabilities []vuln.Finding `json:"vulnerabilities"`
	// Secrets are credentials found in files of any layer and in the image
	// configuration, their values redacted. Sorted by path and line.
	Secrets []inventory.Finding `json:"secrets,omitempty"`
	// Malware is what the malware engines found, and packages that OSV
	// MAL- records name as malicious.
	Malware []inventory.Finding `json:"malware,omitempty"`
	// Misconfigurations are weaknesses of how the image was built, from its
	// configuration, its history, its files and, with --dockerfile, its
	// Dockerfile.
	Misconfigurations []inventory.Finding `json:"misconfigurations,omitempty"`
	// Licenses is the license analysis: every package's SPDX expression and
	// category, license files outside packages and per-image counts.
	Licenses *license.Report `json:"licenses,omitempty"`
	// Scanners lists the analyses that ran and the engines that could not
	// run, so that a report never claims a check it did not make.
	Scanners []ScannerRun `json:"scanners,omitempty"`
	// Verdicts are the verdicts of every policy when a scan is judged by
	// several (the console's); Assurance is then the first failing one.
	Verdicts []assurance.Verdict `json:"verdicts,omitempty"`
	// Assurance is the verdict of the assurance policy, when one was given.
	Assurance *assurance.Verdict `json:"assurance,omitempty"`
	// Warnings are conditions the user should know about, such as a stale
	// database or an OS release the database has no data for.
	Warnings []string `json:"warnings,omitempty"`
}

// ScannerRun is one analysis of a scan and what became of it.
type ScannerRun struct {
	// Name is the analysis: "vuln", "secret", "malware", "license" or
	// "misconfig".
	Name string `json:"name"`
	// Engines are the engines that ran ("builtin", "clamav 1.4.6/27000").
	Engines []string `json:"engines,omitempty"`
	// Problems say what did not run or did not finish (an engine that was
	// down, files it skipped).
	Problems []string `json:"problems,omitempty"`
}
