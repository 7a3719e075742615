package parity

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	osvschema "github.com/ossf/osv-schema/bindings/go/osvschema"
	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/encoding/protojson"
)

// WriteGoVulnDB writes the records of the Go ecosystem in recs to dir in
// the layout of the Go vulnerability database, version 1, which
// govulncheck reads with -db file:///DIR:
//
//	index/db.json       {"modified": latest modified time}
//	index/modules.json  [{"path": module, "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/<id>.json        the OSV record
//
// "fixed" is the latest fixed version of the module's SEMVER ranges, or
// empty when the vulnerability was reintroduced after it; govulncheck uses it
// to skip records that cannot affect a version.
func WriteGoVulnDB(dir string, recs []Record) error {
	type moduleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	type moduleMeta struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	type vulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
	var (
		dbMod   time.Time
		modules = map[string]*moduleMeta{}
		vulns   []vulnMeta
	)
	for _, r := range recs {
		if !hasEcosystem(r, "Go") {
			continue
		}
		if err := writeFile(filepath.Join(dir, "ID", r.ID+".json"), r.JSON); err != nil {
			return err
		}
		if r.Modified.After(dbMod) {
			dbMod = r.Modified
		}
		vulns = append(vulns, vulnMeta{ID: r.ID, Modified: r.Modified, Aliases: r.Aliases})
		for _, a := range r.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &moduleMeta{Path: a.Package.Name}
				modules[a.Package.Name] = m
			}
			fixed := latestFix(a)
			if i := len(m.Vulns) - 1; i >= 0 && m.Vulns[i].ID == r.ID {
				// Several affected entries for one module: the index
				// entry must admit every version any of them affects.
				if fixed == "" || m.Vulns[i].Fixed == "" {
					m.Vulns[i].Fixed = ""
				} else if semver.Compare("v"+fixed, "v"+m.Vulns[i].Fixed) > 0 {
					m.Vulns[i].Fixed = fixed
				}
				continue
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: r.ID, Modified: r.Modified, Fixed: fixed})
		}
	}
	mods := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	for name, v := range map[string]any{
		"db.json":      map[string]time.Time{"modified": dbMod},
		"modules.json": mods,
		"vulns.json":   vulns,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", name, err)
		}
		if err := writeFile(filepath.Join(dir, "index", name), b); err != nil {
			return err
		}
	}
	return nil
}

// latestFix returns the latest fixed version in the SEMVER ranges of a,
// or "" when a later introduced event reopens the vulnerability.
func latestFix(a Affected) string {
	var latest string
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && (latest == "" || semver.Compare("v"+latest, "v"+e.Fixed) < 0) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && semver.Compare("v"+latest, "v"+e.Introduced) < 0 {
				latest = ""
				break
			}
		}
	}
	return latest
}

// WriteOSVScannerDB writes recs as the offline databases osv-scanner v2
// reads with --offline-vulnerabilities --local-db-path DIR: one zip archive
// of <ID>.json records per ecosystem, DIR/osv-scalibr/<Ecosystem>/all.zip.
// A record affecting several ecosystems goes into each of their archives.
//
// osv-scanner silently skips a record that its OSV protobuf schema rejects;
// WriteOSVScannerDB checks every record with the same schema and returns
// the IDs it rejects, so that a caller can tell such records apart from
// matching differences.
func WriteOSVScannerDB(dir string, recs []Record) (rejected []string, err error) {
	byEco := map[string][]Record{}
	for _, r := range recs {
		if err := protojson.Unmarshal(r.JSON, &osvschema.Vulnerability{}); err != nil {
			rejected = append(rejected, r.ID)
		}
		for _, eco := range r.Ecosystems {
			byEco[eco] = append(byEco[eco], r)
		}
	}
	for eco, list := range byEco {
		if eco == "" {
			continue
		}
		if err := writeZip(filepath.Join(dir, "osv-scalibr", eco, "all.zip"), list); err != nil {
			return nil, err
		}
	}
	return rejected, nil
}

func writeZip(path string, recs []Record) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, r := range recs {
		w, err := zw.Create(r.ID + ".json")
		if err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if _, err := w.Write(r.JSON); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func hasEcosystem(r Record, eco string) bool {
	for _, e := range r.Ecosystems {
		if e == eco {
			return true
		}
	}
	return false
}
