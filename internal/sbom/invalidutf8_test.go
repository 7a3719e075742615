package sbom

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/schematest"
)

// TestBOMRefsUniqueAfterJSON: two packages whose paths differ only in
// invalid UTF-8 get distinct bom-refs in the written JSON, where every
// invalid byte reads as U+FFFD.
func TestBOMRefsUniqueAfterJSON(t *testing.T) {
	rep := &inventory.Report{
		Image: inventory.ImageInfo{Ref: "x", Source: "dir", Name: "x"},
		Packages: []inventory.Package{
			{Name: "a", Version: "1.0.0", Type: "npm", PURL: "pkg:npm/a@1.0.0", Path: "/app/\xff/package.json"},
			{Name: "a", Version: "1.0.0", Type: "npm", PURL: "pkg:npm/a@1.0.0", Path: "/app/\xfe/package.json"},
			{Name: "a", Version: "1.0.0", Type: "npm", PURL: "pkg:npm/a@1.0.0", Path: "/app/\ufffd/package.json"},
		},
	}
	var buf bytes.Buffer
	if err := Encode(&buf, rep, "cyclonedx", Options{Now: func() time.Time { return time.Unix(0, 0) }}); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		Components []struct {
			BOMRef string `json:"bom-ref"`
		} `json:"components"`
	}
	if err := json.Unmarshal(buf.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range bom.Components {
		if seen[c.BOMRef] {
			t.Errorf("duplicate bom-ref %q", c.BOMRef)
		}
		seen[c.BOMRef] = true
	}
	if err := schematest.Validate(schematest.CycloneDX(t), buf.Bytes()); err != nil {
		t.Error(err)
	}
}
