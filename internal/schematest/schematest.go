// Package schematest gives tests the official JSON schemas of the formats
// mamori writes, read from local files only: CycloneDX 1.6 from the
// cyclonedx-go module, SPDX 2.3 from .cache/schemas (scripts/fetch-schemas.sh)
// and SARIF 2.1.0 from the SARIF SDK (scripts/fetch-sarif-tools.sh).
package schematest

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

	"github.com/mamorisec/mamori/internal/testenv"
)

// Schema URLs and the files that are not in the module cache, relative to
// the module root.
const (
	cdxURL    = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	spdxURL   = "http://spdx.org/rdf/terms/2.3"
	sarifURL  = "https://json.schemastore.org/sarif-2.1.0.json"
	SPDXFile  = ".cache/schemas/spdx-schema-2.3.json"
	SARIFTool = ".cache/sarif-multitool/node_modules/@microsoft/sarif-multitool-linux"
)

var (
	cdx = sync.OnceValues(func() (*jsonschema.Schema, error) {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
		if err != nil {
			return nil, fmt.Errorf("finding the cyclonedx-go module: %w", err)
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
		return compile(cdxURL, map[string]string{
			cdxURL: filepath.Join(dir, "bom-1.6.schema.json"),
			"http://cyclonedx.org/schema/spdx.schema.json": filepath.Join(dir, "spdx.schema.json"),
			// The module ships the JSF schema under this (sic) name.
			"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(dir, "jsf-0.82.schemax.json"),
		})
	})
	spdx  = sync.OnceValues(func() (*jsonschema.Schema, error) { return local(spdxURL, SPDXFile) })
	sarif = sync.OnceValues(func() (*jsonschema.Schema, error) {
		return local(sarifURL, filepath.Join(SARIFTool, "sarif-2.1.0.json"))
	})
)

// CycloneDX returns the CycloneDX 1.6 schema.
func CycloneDX(t testing.TB) *jsonschema.Schema {
	t.Helper()
	s, err := cdx()
	if err != nil {
		t.Fatalf("CycloneDX schema: %v", err)
	}
	return s
}

// SPDX returns the SPDX 2.3 schema, or reports it missing.
func SPDX(t testing.TB) *jsonschema.Schema {
	t.Helper()
	return need(t, spdx, SPDXFile, "scripts/fetch-schemas.sh")
}

// SARIF returns the SARIF 2.1.0 schema, or reports it missing.
func SARIF(t testing.TB) *jsonschema.Schema {
	t.Helper()
	return need(t, sarif, SARIFTool, "scripts/fetch-sarif-tools.sh")
}

func need(t testing.TB, load func() (*jsonschema.Schema, error), file, script string) *jsonschema.Schema {
	t.Helper()
	s, err := load()
	if errors.Is(err, os.ErrNotExist) {
		testenv.Missing(t, "schema %s (run %s)", file, script)
	}
	if err != nil {
		t.Fatalf("schema %s: %v", file, err)
	}
	return s
}

// local compiles a schema kept in one file under the module root; the error
// wraps os.ErrNotExist when the file has not been fetched.
func local(url, rel string) (*jsonschema.Schema, error) {
	file := filepath.Join(ModuleRoot(), rel)
	if _, err := os.Stat(file); err != nil {
		return nil, err
	}
	return compile(url, map[string]string{url: file})
}

// compile compiles the schema at url from local files only: resources maps
// each schema URL to its file, and any other URL fails to load, so nothing
// is fetched from the network.
func compile(url string, resources map[string]string) (*jsonschema.Schema, error) {
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

// ModuleRoot is the directory holding go.mod, found from the test's working
// directory (the package directory).
func ModuleRoot() string {
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

// Validate validates the JSON document b against s.
func Validate(s *jsonschema.Schema, b []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

// SPDXIfPresent returns the SPDX 2.3 schema, or nil when it has not been
// fetched (for fuzz targets, which validate what they can).
func SPDXIfPresent() *jsonschema.Schema {
	s, _ := spdx()
	return s
}
