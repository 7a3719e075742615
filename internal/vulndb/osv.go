package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// OSV is the subset of an OSV record (https://ossf.github.io/osv-schema/)
// that mamori uses.
type OSV struct {
	SchemaVersion    string          `json:"schema_version"`
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Upstream         []string        `json:"upstream"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []OSVSeverity   `json:"severity"`
	Affected         []OSVAffected   `json:"affected"`
	References       []OSVReference  `json:"references"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

// OSVSeverity is one entry of an OSV severity list: a CVSS vector or a
// vendor rating (type "Ubuntu", "Debian").
type OSVSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// OSVAffected is one affected package of an OSV record.
type OSVAffected struct {
	Package           OSVPackage      `json:"package"`
	Severity          []OSVSeverity   `json:"severity"`
	Ranges            []OSVRange      `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

// OSVPackage names an affected package.
type OSVPackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl"`
}

// OSVRange is a range of affected versions given as events.
type OSVRange struct {
	Type   string     `json:"type"`
	Events []OSVEvent `json:"events"`
}

// OSVEvent is one event of a range; exactly one field is set.
type OSVEvent struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// OSVReference is a link with its type (ADVISORY, WEB, FIX, ...).
type OSVReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// maxRecordSize bounds one OSV record; the largest real ones are a few
// hundred KiB.
const maxRecordSize = 16 << 20

// ParseOSV parses one OSV record in JSON or YAML (told apart by the first
// non-space byte) and checks the fields matching relies on. name is the
// file name used in errors.
func ParseOSV(name string, data []byte) (*OSV, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%s: OSV record is %d bytes, over the %d byte limit", name, len(data), maxRecordSize)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	if trimmed[0] != '{' {
		j, err := yamlToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: not an OSV record in YAML: %w", name, err)
		}
		data = j
	}
	var r OSV
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: not an OSV record in JSON: %w", name, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &r, nil
}

func (r *OSV) validate() error {
	if strings.TrimSpace(r.ID) == "" {
		return errors.New("OSV record has no id")
	}
	if len(r.ID) > 200 || strings.ContainsAny(r.ID, "\x00\n/") {
		return fmt.Errorf("OSV record id %q is not a valid identifier", r.ID)
	}
	for _, t := range []struct{ field, v string }{{"modified", r.Modified}, {"published", r.Published}, {"withdrawn", r.Withdrawn}} {
		if t.v == "" {
			continue
		}
		if _, err := parseTime(t.v); err != nil {
			return fmt.Errorf("OSV record %s: field %s: %w", r.ID, t.field, err)
		}
	}
	for i, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			return fmt.Errorf("OSV record %s: affected[%d] has no package ecosystem or name", r.ID, i)
		}
		for j, rg := range a.Ranges {
			for k, e := range rg.Events {
				n := 0
				for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if v != "" {
						n++
					}
				}
				if n != 1 {
					return fmt.Errorf("OSV record %s: affected[%d].ranges[%d].events[%d] must set exactly one of introduced, fixed, last_affected, limit", r.ID, i, j, k)
				}
			}
		}
	}
	return nil
}

// parseTime parses an RFC 3339 time as OSV records write it.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", s)
	}
	return t, nil
}

// yamlToJSON converts a YAML document to JSON keeping every scalar as a
// string, so that versions such as 1.0 are not turned into numbers.
func yamlToJSON(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("empty YAML document")
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, doc.Content[0], 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxYAMLDepth bounds nesting, which also stops alias bombs early.
const maxYAMLDepth = 32

func writeJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxYAMLDepth {
		return errors.New("YAML nested too deeply")
	}
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			buf.WriteString("null")
			return nil
		}
		v, _ := json.Marshal(n.Value)
		buf.Write(v)
	case yaml.AliasNode:
		return errors.New("YAML aliases are not allowed in OSV records")
	default:
		return fmt.Errorf("unexpected YAML node kind %d", n.Kind)
	}
	return nil
}
