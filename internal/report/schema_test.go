package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/mamorisec/mamori/internal/testenv"
)

// The CycloneDX schemas are read in place from the cyclonedx-go module; the
// SPDX schema is put under .cache/schemas by scripts/fetch-schemas.sh, as
// for package sbom's tests. No Go module in the module cache ships the SARIF
// 2.1.0 schema, so SARIF output is checked by checkSARIF instead.
const (
	cdxSchemaURL   = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	spdxSchemaFile = ".cache/schemas/spdx-schema-2.3.json"
	spdxSchemaURL  = "http://spdx.org/rdf/terms/2.3"
)

var (
	cdxSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
		if err != nil {
			return nil, fmt.Errorf("finding the cyclonedx-go module: %w", err)
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
		return compileSchema(cdxSchemaURL, map[string]string{
			cdxSchemaURL: filepath.Join(dir, "bom-1.6.schema.json"),
			"http://cyclonedx.org/schema/spdx.schema.json": filepath.Join(dir, "spdx.schema.json"),
			// The module ships the JSF schema under this (sic) name.
			"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(dir, "jsf-0.82.schemax.json"),
		})
	})
	spdxSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
		file := filepath.Join(moduleRoot(), spdxSchemaFile)
		if _, err := os.Stat(file); err != nil {
			return nil, err
		}
		return compileSchema(spdxSchemaURL, map[string]string{spdxSchemaURL: file})
	})
)

// compileSchema compiles the schema at url from local files only: resources
// maps each schema URL to its file, and any other URL fails to load.
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

// moduleRoot is the directory holding go.mod, found from the test's working
// directory.
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

func validateJSON(s *jsonschema.Schema, b []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

// checkCycloneDX validates b against the CycloneDX 1.6 schema.
func checkCycloneDX(t testing.TB, b []byte) {
	t.Helper()
	s, err := cdxSchema()
	if err != nil {
		t.Fatalf("CycloneDX schema: %v", err)
	}
	if err := validateJSON(s, b); err != nil {
		t.Errorf("CycloneDX output does not validate: %v", err)
	}
}

// checkSPDX validates b against the SPDX 2.3 schema and checks that
// tools-golang reads it back as a valid document.
func checkSPDX(t testing.TB, b []byte) {
	t.Helper()
	s, err := spdxSchema()
	if errors.Is(err, os.ErrNotExist) {
		testenv.Missing(t, "SPDX 2.3 JSON schema %s (run scripts/fetch-schemas.sh)", spdxSchemaFile)
	}
	if err != nil {
		t.Fatalf("SPDX schema: %v", err)
	}
	if err := validateJSON(s, b); err != nil {
		t.Errorf("SPDX output does not validate: %v", err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("tools-golang cannot read the SPDX output back: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("SPDX output is not a valid document: %v", err)
	}
}

// checkSARIF checks a SARIF log for what the SARIF 2.1.0 schema and GitHub
// code scanning require of the parts mamori writes: the version, a driver
// name, rules with unique IDs that results point to by ID and index, a
// level from the schema's enumeration, a message, a relative URI location,
// a numeric security-severity and suppression kinds from the enumeration.
func checkSARIF(b []byte) error {
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID               string `json:"id"`
						ShortDescription struct {
							Text *string `json:"text"`
						} `json:"shortDescription"`
						HelpURI    string `json:"helpUri"`
						Properties struct {
							SecuritySeverity string `json:"security-severity"`
						} `json:"properties"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string                 `json:"ruleId"`
				RuleIndex *int                   `json:"ruleIndex"`
				Level     string                 `json:"level"`
				Message   struct{ Text *string } `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				Suppressions []struct {
					Kind          string `json:"kind"`
					Status        string `json:"status"`
					Justification string `json:"justification"`
				} `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&log); err != nil {
		return fmt.Errorf("not a SARIF log: %w", err)
	}
	if log.Version != "2.1.0" || log.Schema == "" {
		return fmt.Errorf("version %q, $schema %q", log.Version, log.Schema)
	}
	if len(log.Runs) != 1 {
		return fmt.Errorf("%d runs, want 1", len(log.Runs))
	}
	run := log.Runs[0]
	if run.Tool.Driver.Name == "" {
		return errors.New("no tool.driver.name")
	}
	rules := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		if r.ID == "" {
			return fmt.Errorf("rule %d has no id", i)
		}
		if _, dup := rules[r.ID]; dup {
			return fmt.Errorf("rule %q is defined twice", r.ID)
		}
		rules[r.ID] = i
		if r.ShortDescription.Text == nil {
			return fmt.Errorf("rule %q has no shortDescription.text", r.ID)
		}
		if r.HelpURI != "" {
			if u, err := url.Parse(r.HelpURI); err != nil || !u.IsAbs() {
				return fmt.Errorf("rule %q: helpUri %q is not an absolute URI", r.ID, r.HelpURI)
			}
		}
		if s := r.Properties.SecuritySeverity; s != "" {
			if f, err := strconv.ParseFloat(s, 64); err != nil || f < 0 || f > 10 {
				return fmt.Errorf("rule %q: security-severity %q is not a score from 0 to 10", r.ID, s)
			}
		}
	}
	for i, r := range run.Results {
		idx, ok := rules[r.RuleID]
		if !ok || r.RuleIndex == nil || *r.RuleIndex != idx {
			return fmt.Errorf("result %d: ruleId %q and ruleIndex do not name a rule", i, r.RuleID)
		}
		switch r.Level {
		case "none", "note", "warning", "error":
		default:
			return fmt.Errorf("result %d: level %q", i, r.Level)
		}
		if r.Message.Text == nil || *r.Message.Text == "" {
			return fmt.Errorf("result %d has no message", i)
		}
		if len(r.Locations) == 0 {
			return fmt.Errorf("result %d has no location", i)
		}
		for _, l := range r.Locations {
			uri := l.PhysicalLocation.ArtifactLocation.URI
			u, err := url.Parse(uri)
			if err != nil || u.IsAbs() || strings.HasPrefix(uri, "/") || uri == "" {
				return fmt.Errorf("result %d: location %q is not a relative URI reference", i, uri)
			}
			if l.PhysicalLocation.Region.StartLine < 1 {
				return fmt.Errorf("result %d: region.startLine %d", i, l.PhysicalLocation.Region.StartLine)
			}
		}
		for _, s := range r.Suppressions {
			if s.Kind != "inSource" && s.Kind != "external" {
				return fmt.Errorf("result %d: suppression kind %q", i, s.Kind)
			}
			switch s.Status {
			case "", "accepted", "underReview", "rejected":
			default:
				return fmt.Errorf("result %d: suppression status %q", i, s.Status)
			}
		}
	}
	return nil
}
