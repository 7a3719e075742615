package parity

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goRecordJSON = `{
  "schema_version": "1.3.1",
  "id": "GO-2099-0001",
  "modified": "2099-01-02T03:04:05Z",
  "aliases": ["CVE-2099-1111", "GHSA-aaaa-bbbb-cccc"],
  "affected": [
    {"package": {"name": "example.com/mod", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]}]},
    {"package": {"name": "example.com/mod", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"fixed": "2.0.5"}]}]},
    {"package": {"name": "example.com/other", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}
  ]
}`

const pypiRecordYAML = `id: PYSEC-2099-7
modified: 2099-05-06T07:08:09.5Z
published: '2099-01-01T00:00:00Z'
aliases:
- CVE-2099-2222
affected:
- package:
    name: example-pkg
    ecosystem: PyPI
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: '0'
    - fixed: 1.0.1
  versions:
  - '1.0'
`

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name, file, data string
		wantID           string
		wantAliases      []string
		wantEcosystems   []string
		wantModified     time.Time
		wantErr          string
	}{
		{
			name: "json", file: "GO-2099-0001.json", data: goRecordJSON,
			wantID: "GO-2099-0001", wantAliases: []string{"CVE-2099-1111", "GHSA-aaaa-bbbb-cccc"},
			wantEcosystems: []string{"Go"}, wantModified: time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC),
		},
		{
			name: "yaml with an unquoted timestamp", file: "PYSEC-2099-7.yaml", data: pypiRecordYAML,
			wantID: "PYSEC-2099-7", wantAliases: []string{"CVE-2099-2222"},
			wantEcosystems: []string{"PyPI"}, wantModified: time.Date(2099, 5, 6, 7, 8, 9, 5e8, time.UTC),
		},
		{
			name: "ecosystem release suffix", file: "D.json",
			data:   `{"id":"DEBIAN-CVE-2099-1","upstream":["CVE-2099-1"],"affected":[{"package":{"name":"expat","ecosystem":"Debian:12"}}]}`,
			wantID: "DEBIAN-CVE-2099-1", wantAliases: []string{"CVE-2099-1"}, wantEcosystems: []string{"Debian"},
		},
		{name: "no id", file: "x.json", data: `{"aliases":["CVE-1"]}`, wantErr: "is empty or not a file name"},
		{name: "id with a slash", file: "x.json", data: `{"id":"../x"}`, wantErr: "is empty or not a file name"},
		{name: "not json", file: "x.json", data: `{"id":`, wantErr: "not an OSV record"},
		{name: "wrong type", file: "x.json", data: `{"id":"A","aliases":"CVE-1"}`, wantErr: "not an OSV record"},
		{name: "bad yaml", file: "x.yaml", data: "id: [", wantErr: "invalid YAML"},
		{name: "yaml NaN", file: "x.yml", data: "id: A\nscore: .nan\n", wantErr: "no JSON form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord(tt.file, []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.file) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, tt.file, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != tt.wantID || !reflect.DeepEqual(r.Aliases, tt.wantAliases) ||
				!reflect.DeepEqual(r.Ecosystems, tt.wantEcosystems) || !r.Modified.Equal(tt.wantModified) {
				t.Errorf("got id %s aliases %v ecosystems %v modified %v", r.ID, r.Aliases, r.Ecosystems, r.Modified)
			}
			if !json.Valid(r.JSON) {
				t.Errorf("record JSON is not valid: %s", r.JSON)
			}
		})
	}
}

func TestReadRecords(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go/GO-2099-0001.json":       goRecordJSON,
		"pypi/pkg/PYSEC-2099-7.yaml": pypiRecordYAML,
		"README.md":                  "not a record",
	}
	for name, data := range files {
		if err := writeFile(filepath.Join(dir, name), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if want := []string{"GO-2099-0001", "PYSEC-2099-7"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}

	if err := writeFile(filepath.Join(dir, "copy", "GO-2099-0001.json"), []byte(goRecordJSON)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecords(dir); err == nil || !strings.Contains(err.Error(), "GO-2099-0001 is in both") {
		t.Errorf("duplicate id: err = %v", err)
	}
	if _, err := ReadRecords(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: err = %v", err)
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add(true, goRecordJSON)
	f.Add(false, pypiRecordYAML)
	f.Add(true, `{"id":"A","affected":[{"package":{"ecosystem":"npm:x"}}]}`)
	f.Add(false, "id: A\nmodified: 0001-01-01T00:00:00Z\n? [a]\n: b\n")
	f.Fuzz(func(t *testing.T, isJSON bool, data string) {
		name := "r.yaml"
		if isJSON {
			name = "r.json"
		}
		r, err := ParseRecord(name, []byte(data))
		if err != nil {
			return
		}
		if r.ID == "" || strings.ContainsAny(r.ID, `/\`) {
			t.Errorf("accepted id %q", r.ID)
		}
		if !json.Valid(r.JSON) {
			t.Errorf("record JSON is not valid: %q", r.JSON)
		}
	})
}
