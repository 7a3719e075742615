package sbom

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/mamorisec/mamori/internal/testenv"
)

// The CycloneDX schemas are read in place from the cyclonedx-go module; the
// SPDX schema is put under .cache/schemas by scripts/fetch-schemas.sh.
const (
	cdxSchemaURL   = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	spdxSchemaFile = ".cache/schemas/spdx-schema-2.3.json"
	spdxSchemaURL  = "http://spdx.org/rdf/terms/2.3"
)

var (
	cdxSchemaOnce sync.Once
	cdxSchema     *jsonschema.Schema
	cdxSchemaErr  error

	spdxSchemaOnce sync.Once
	spdxSchema     *jsonschema.Schema
	spdxSchemaErr  error
)

// compileSchema compiles the schema at url from local files only: resources
// maps each schema URL to its file. Any other URL fails to load, so nothing
// is fetched from the network.
func compileSchema(url string, resources map[string]string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	for u, file := range resources {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading schema %s: %w", file, err)
		}
		if err := c.AddResource(u, doc); err != nil {
			return nil, fmt.Errorf("adding schema %s: %w", file, err)
		}
	}
	return c.Compile(url)
}

// cycloneDXSchema returns the CycloneDX 1.6 JSON schema with the schemas it
// references, read from the cyclonedx-go module directory.
func cycloneDXSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	cdxSchemaOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
		if err != nil {
			cdxSchemaErr = fmt.Errorf("finding the cyclonedx-go module: %w", err)
			return
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
		cdxSchema, cdxSchemaErr = compileSchema(cdxSchemaURL, map[string]string{
			cdxSchemaURL: filepath.Join(dir, "bom-1.6.schema.json"),
			"http://cyclonedx.org/schema/spdx.schema.json": filepath.Join(dir, "spdx.schema.json"),
			// The module ships the JSF schema under this (sic) name.
			"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(dir, "jsf-0.82.schemax.json"),
		})
	})
	if cdxSchemaErr != nil {
		t.Fatalf("CycloneDX schema: %v", cdxSchemaErr)
	}
	return cdxSchema
}

// spdx23Schema returns the official SPDX 2.3 JSON schema, or reports it
// missing (scripts/fetch-schemas.sh puts it in place).
func spdx23Schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	s, err := loadSPDXSchema()
	if errors.Is(err, os.ErrNotExist) {
		testenv.Missing(t, "SPDX 2.3 JSON schema %s (run scripts/fetch-schemas.sh)", spdxSchemaFile)
	}
	if err != nil {
		t.Fatalf("SPDX schema: %v", err)
	}
	return s
}

// loadSPDXSchema compiles the SPDX 2.3 schema once; the error wraps
// os.ErrNotExist when the schema has not been fetched.
func loadSPDXSchema() (*jsonschema.Schema, error) {
	spdxSchemaOnce.Do(func() {
		file := filepath.Join(moduleRoot(), spdxSchemaFile)
		if _, err := os.Stat(file); err != nil {
			spdxSchemaErr = err
			return
		}
		spdxSchema, spdxSchemaErr = compileSchema(spdxSchemaURL, map[string]string{spdxSchemaURL: file})
	})
	return spdxSchema, spdxSchemaErr
}

// moduleRoot is the directory holding go.mod, found from the test's working
// directory (the package directory).
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// validateJSON validates the JSON document b against s.
func validateJSON(s *jsonschema.Schema, b []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

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
