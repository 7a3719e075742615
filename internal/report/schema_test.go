package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/schematest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
)

// checkCycloneDX validates b against the CycloneDX 1.6 schema.
func checkCycloneDX(t testing.TB, b []byte) {
	t.Helper()
	if err := schematest.Validate(schematest.CycloneDX(t), b); err != nil {
		t.Errorf("CycloneDX output does not validate: %v", err)
	}
}

// checkSPDX validates b against the SPDX 2.3 schema and checks that
// tools-golang reads it back as a valid document.
func checkSPDX(t testing.TB, b []byte) {
	t.Helper()
	if err := schematest.Validate(schematest.SPDX(t), b); err != nil {
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
