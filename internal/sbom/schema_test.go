package sbom

import (
	"bytes"
	"fmt"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
)

// checkSPDX checks an SPDX document beyond its schema: tools-golang reads it
// back, every relationship names an element of the document, SPDX IDs are
// unique, every LicenseRef used is declared, and the document describes
// exactly the image.
func checkSPDX(b []byte) error {
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("tools-golang cannot read it back: %w", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		return fmt.Errorf("spdxVersion %q", doc.SPDXVersion)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		return err
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil {
		return err
	}
	if len(described) != 1 || described[0] != imageSPDXID {
		return fmt.Errorf("document describes %v, want the image only", described)
	}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		id := string(p.PackageSPDXIdentifier)
		if ids[id] {
			return fmt.Errorf("duplicate SPDXID %q", id)
		}
		ids[id] = true
		if _, ok := idString(id, len(id)); !ok {
			return fmt.Errorf("SPDXID %q has characters SPDX does not allow", id)
		}
	}
	declared := map[string]bool{}
	for _, l := range doc.OtherLicenses {
		declared[l.LicenseIdentifier] = true
		if l.ExtractedText == "" {
			return fmt.Errorf("extracted license %s has no text", l.LicenseIdentifier)
		}
	}
	for _, p := range doc.Packages {
		if p.PackageLicenseDeclared == "" {
			return fmt.Errorf("package %s has no licenseDeclared", p.PackageSPDXIdentifier)
		}
		if p.PackageLicenseDeclared != noAssertion {
			if l := classifyLicense(p.PackageLicenseDeclared); l.kind == licenseName {
				return fmt.Errorf("package %s: licenseDeclared %q is not an SPDX expression", p.PackageSPDXIdentifier, p.PackageLicenseDeclared)
			}
		}
		for _, ref := range licenseRefs(p.PackageLicenseDeclared) {
			if !declared[ref] {
				return fmt.Errorf("package %s uses %s, which hasExtractedLicensingInfos does not declare", p.PackageSPDXIdentifier, ref)
			}
		}
	}
	return nil
}
