package report

import (
	"encoding/json"
	"io"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// writeJSON writes the scan itself, indented (docs/scan-json.md), with
// schemaVersion set to SchemaVersion. Field order follows the Go structs;
// findings are written in report order (sorted on a copy when the scan is
// not in order), and empty lists that the document always has are written
// as [] rather than null. Suppressed findings are kept with their
// suppressed object.
func writeJSON(w io.Writer, s *Scan) error {
	out := *s
	out.SchemaVersion = SchemaVersion
	inv := *s.Inventory
	if inv.Layers == nil {
		inv.Layers = []inventory.Layer{}
	}
	if inv.Packages == nil {
		inv.Packages = []inventory.Package{}
	}
	out.Inventory = &inv
	fs := sortedFindings(s)
	out.Vulnerabilities = make([]vuln.Finding, len(fs))
	for i, f := range fs {
		out.Vulnerabilities[i] = *f
		if f.Records == nil {
			out.Vulnerabilities[i].Records = []string{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(&out)
}
