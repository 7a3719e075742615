// Package parity checks mamori's vulnerability matcher against its peers,
// govulncheck and osv-scanner, on the same artifacts and the same OSV
// records.
//
// The package turns directories of OSV records into the databases each peer
// reads offline (WriteGoVulnDB, WriteOSVScannerDB), parses each tool's JSON
// output into normalised findings (ParseMamori, ParseGovulncheck,
// ParseOSVScanner), and compares them by alias group (Compare). The parity
// test builds the artifacts, runs the three tools and asserts that every
// difference between them is one the test lists with its reason;
// docs/parity.md explains the list.
package parity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"gopkg.in/yaml.v3"
)

// maxRecordSize bounds the size of one OSV record file.
const maxRecordSize = 16 << 20

// Record is one OSV record read from a database directory.
type Record struct {
	// ID is the record's own identifier, for example "GO-2021-0113".
	ID string
	// Aliases are the other identifiers the record names (aliases and
	// upstream).
	Aliases []string
	// Modified is when the record last changed.
	Modified time.Time
	// Withdrawn is set when the record has been withdrawn.
	Withdrawn bool
	// Ecosystems are the base ecosystems of the affected packages
	// ("Go", "PyPI", "npm", "Debian"), without any ":release" suffix.
	Ecosystems []string
	// Modules are the affected package names.
	Modules []string
	// Affected is the record's affected list, as decoded from JSON.
	Affected []Affected
	// JSON is the record as JSON (YAML records are converted).
	JSON []byte
	// Path is the file the record came from.
	Path string
}

// Affected is the part of an OSV affected entry the databases need.
type Affected struct {
	Package struct {
		Name      string `json:"name"`
		Ecosystem string `json:"ecosystem"`
	} `json:"package"`
	Ranges []struct {
		Type   string `json:"type"`
		Events []struct {
			Introduced   string `json:"introduced,omitempty"`
			Fixed        string `json:"fixed,omitempty"`
			LastAffected string `json:"last_affected,omitempty"`
		} `json:"events"`
	} `json:"ranges"`
}

type recordHead struct {
	ID        string     `json:"id"`
	Aliases   []string   `json:"aliases"`
	Upstream  []string   `json:"upstream"`
	Modified  time.Time  `json:"modified"`
	Withdrawn *time.Time `json:"withdrawn"`
	Affected  []Affected `json:"affected"`
}

// ReadRecords reads every OSV record (*.json, *.yaml, *.yml) under dir,
// recursively, sorted by ID. Two records with the same ID are an error.
func ReadRecords(dir string) ([]Record, error) {
	var recs []Record
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json", ".yaml", ".yml":
		default:
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		data, err := inventory.ReadAllLimited(f, maxRecordSize)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading OSV record %s: %w", path, err)
		}
		rec, err := ParseRecord(path, data)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading OSV records from %s: %w", dir, err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	for i := 1; i < len(recs); i++ {
		if recs[i].ID == recs[i-1].ID {
			return nil, fmt.Errorf("OSV record %s is in both %s and %s", recs[i].ID, recs[i-1].Path, recs[i].Path)
		}
	}
	return recs, nil
}

// ParseRecord parses one OSV record; a name ending in .yaml or .yml is read
// as YAML, anything else as JSON. The name is used in errors only.
func ParseRecord(name string, data []byte) (Record, error) {
	js := data
	if ext := strings.ToLower(filepath.Ext(name)); ext == ".yaml" || ext == ".yml" {
		var err error
		if js, err = yamlToJSON(data); err != nil {
			return Record{}, fmt.Errorf("OSV record %s: %w", name, err)
		}
	}
	var h recordHead
	if err := json.Unmarshal(js, &h); err != nil {
		return Record{}, fmt.Errorf("OSV record %s: not an OSV record: %w", name, err)
	}
	if h.ID == "" || strings.ContainsAny(h.ID, `/\`) || h.ID == "." || h.ID == ".." {
		return Record{}, fmt.Errorf("OSV record %s: id %q is empty or not a file name", name, h.ID)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, js); err != nil {
		return Record{}, fmt.Errorf("OSV record %s: %w", name, err)
	}
	rec := Record{
		ID:        h.ID,
		Aliases:   append(h.Aliases, h.Upstream...),
		Modified:  h.Modified,
		Withdrawn: h.Withdrawn != nil,
		Affected:  h.Affected,
		JSON:      compact.Bytes(),
		Path:      name,
	}
	for _, a := range h.Affected {
		eco, _, _ := strings.Cut(a.Package.Ecosystem, ":")
		rec.Ecosystems = appendUnique(rec.Ecosystems, eco)
		rec.Modules = appendUnique(rec.Modules, a.Package.Name)
	}
	return rec, nil
}

// yamlToJSON converts a YAML document to JSON. Timestamps become RFC 3339
// strings, the form OSV JSON uses.
func yamlToJSON(data []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	v, err := jsonValue(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// jsonValue rewrites a decoded YAML value into one encoding/json accepts.
func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case map[string]any:
		for k, e := range x {
			var err error
			if x[k], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			j, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = j
		}
		return m, nil
	case []any:
		for i, e := range x {
			var err error
			if x[i], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("number %v has no JSON form", x)
		}
	}
	return v, nil
}

func appendUnique(list []string, s string) []string {
	for _, e := range list {
		if e == s {
			return list
		}
	}
	return append(list, s)
}
