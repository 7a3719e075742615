package sbom

import (
	"encoding/json"
	"io"
	"slices"

	"github.com/mamorisec/mamori/internal/inventory"
)

// encodeJSON writes the report itself, indented (docs/native-json.md). Field
// order follows the Go structs and metadata keys are sorted, so the output is
// stable. Packages are written in Report order (type, name, version, path);
// a report that is not in that order is sorted on a copy. Empty lists are
// written as [] rather than null.
func encodeJSON(w io.Writer, r *inventory.Report) error {
	out := *r
	if out.Layers == nil {
		out.Layers = []inventory.Layer{}
	}
	if out.Packages == nil {
		out.Packages = []inventory.Package{}
	}
	cmpValues := func(a, b inventory.Package) int { return comparePackages(&a, &b) }
	if !slices.IsSortedFunc(out.Packages, cmpValues) {
		out.Packages = slices.Clone(out.Packages)
		slices.SortStableFunc(out.Packages, cmpValues)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(&out)
}
