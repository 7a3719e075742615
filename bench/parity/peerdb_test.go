package parity

import (
	"archive/zip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

func TestLatestFix(t *testing.T) {
	tests := []struct {
		name   string
		events string
		want   string
	}{
		{"one fix", `[{"introduced":"0"},{"fixed":"1.2.3"}]`, "1.2.3"},
		{"latest of two", `[{"introduced":"0"},{"fixed":"1.2.3"},{"introduced":"2.0.0"},{"fixed":"2.0.5"}]`, "2.0.5"},
		{"reintroduced", `[{"introduced":"0"},{"fixed":"1.2.3"},{"introduced":"2.0.0"}]`, ""},
		{"never fixed", `[{"introduced":"0"}]`, ""},
		{"pseudo-version", `[{"introduced":"0"},{"fixed":"0.0.0-20200220183623-bac4c82f6975"}]`, "0.0.0-20200220183623-bac4c82f6975"},
		{"prerelease", `[{"introduced":"0"},{"fixed":"1.0.0-rc.1"},{"fixed":"0.9.0"}]`, "1.0.0-rc.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Affected
			data := `{"ranges":[{"type":"SEMVER","events":` + tt.events + `}]}`
			if err := json.Unmarshal([]byte(data), &a); err != nil {
				t.Fatal(err)
			}
			if got := latestFix(a); got != tt.want {
				t.Errorf("latestFix = %q, want %q", got, tt.want)
			}
		})
	}
}

func testRecords(t *testing.T) []Record {
	t.Helper()
	var recs []Record
	for _, in := range []struct{ name, data string }{
		{"GO-2099-0001.json", goRecordJSON},
		{"PYSEC-2099-7.yaml", pypiRecordYAML},
		// An unknown field: osv-scanner's protobuf schema rejects the record.
		{"GHSA-x.json", `{"id":"GHSA-xxxx-yyyy-zzzz","modified":"2099-01-01T00:00:00Z","bogus":1,
			"affected":[{"package":{"name":"left-pad","ecosystem":"npm"}}]}`},
	} {
		r, err := ParseRecord(in.name, []byte(in.data))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestWriteGoVulnDB(t *testing.T) {
	dir := t.TempDir()
	if err := WriteGoVulnDB(dir, testRecords(t)); err != nil {
		t.Fatal(err)
	}
	var modules []struct {
		Path  string `json:"path"`
		Vulns []struct {
			ID    string `json:"id"`
			Fixed string `json:"fixed"`
		} `json:"vulns"`
	}
	readJSON(t, filepath.Join(dir, "index", "modules.json"), &modules)
	got := map[string]string{}
	for _, m := range modules {
		for _, v := range m.Vulns {
			got[m.Path+" "+v.ID] = v.Fixed
		}
	}
	want := map[string]string{
		// Two affected entries for one module give one index entry
		// whose fix is the later one.
		"example.com/mod GO-2099-0001":   "2.0.5",
		"example.com/other GO-2099-0001": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules.json = %v, want %v", got, want)
	}
	var db struct{ Modified string }
	readJSON(t, filepath.Join(dir, "index", "db.json"), &db)
	if db.Modified != "2099-01-02T03:04:05Z" {
		t.Errorf("db.json modified = %q", db.Modified)
	}
	var vulns []struct {
		ID      string   `json:"id"`
		Aliases []string `json:"aliases"`
	}
	readJSON(t, filepath.Join(dir, "index", "vulns.json"), &vulns)
	if len(vulns) != 1 || vulns[0].ID != "GO-2099-0001" || len(vulns[0].Aliases) != 2 {
		t.Errorf("vulns.json = %+v", vulns)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "ID"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "GO-2099-0001.json" {
		t.Errorf("ID/ holds %v, want only GO-2099-0001.json", entries)
	}
}

func TestWriteOSVScannerDB(t *testing.T) {
	dir := t.TempDir()
	rejected, err := WriteOSVScannerDB(dir, testRecords(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"GHSA-xxxx-yyyy-zzzz"}; !reflect.DeepEqual(rejected, want) {
		t.Errorf("rejected = %v, want %v", rejected, want)
	}
	for eco, want := range map[string][]string{
		"Go":   {"GO-2099-0001.json"},
		"PyPI": {"PYSEC-2099-7.json"},
		"npm":  {"GHSA-xxxx-yyyy-zzzz.json"},
	} {
		zr, err := zip.OpenReader(filepath.Join(dir, "osv-scalibr", eco, "all.zip"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.NewDecoder(rc).Decode(&v); err != nil {
				t.Errorf("%s/%s: %v", eco, f.Name, err)
			}
			rc.Close()
		}
		zr.Close()
		sort.Strings(names)
		if !reflect.DeepEqual(names, want) {
			t.Errorf("%s/all.zip holds %v, want %v", eco, names, want)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
