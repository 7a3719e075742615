// Package report defines the scan report and writes it as a table, JSON,
// SARIF 2.1.0, CycloneDX 1.6 with vulnerabilities, SPDX 2.3 and a
// single-file HTML page.
package report

import (
	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
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
	// Assurance is the verdict of the assurance policy, when one was given.
	Assurance *assurance.Verdict `json:"assurance,omitempty"`
	// Warnings are conditions the user should know about, such as a stale
	// database or an OS release the database has no data for.
	Warnings []string `json:"warnings,omitempty"`
}
