package fetch

import (
	"os"
	"path/filepath"
	"testing"
)

func checkBytes(t testing.TB, format string, b []byte) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return checkFormat(format, f, int64(len(b)))
}

func TestCheckFormat(t *testing.T) {
	rec, err := os.ReadFile("testdata/osv-record.json")
	if err != nil {
		t.Fatal(err)
	}
	secdb, err := os.ReadFile("testdata/secdb-main.yaml")
	if err != nil {
		t.Fatal(err)
	}
	zipped := osvZip(t, "MAMORI-TEST-1")
	html := []byte("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n")
	tests := []struct {
		name   string
		format string
		data   []byte
		ok     bool
	}{
		{"zip", FormatOSVZip, zipped, true},
		{"zip html", FormatOSVZip, html, false},
		{"zip truncated", FormatOSVZip, zipped[:len(zipped)/2], false},
		{"zip empty", FormatOSVZip, nil, false},
		{"json record", FormatOSVJSON, rec, true},
		{"json array", FormatOSVJSON, []byte(`[` + string(rec) + `,` + string(rec) + `]`), true},
		{"json truncated", FormatOSVJSON, rec[:len(rec)/2], false},
		{"json html", FormatOSVJSON, html, false},
		{"json scalar", FormatOSVJSON, []byte(`"x"`), false},
		{"json trailing", FormatOSVJSON, []byte(`{} {}`), false},
		{"json empty", FormatOSVJSON, nil, false},
		{"secdb", FormatAlpineSecDB, secdb, true},
		{"secdb as json", FormatAlpineSecDB, []byte(`{"distroversion":"v3.20","packages":[{"pkg":{"name":"a","secfixes":{"1-r0":["CVE-1"]}}}]}`), true},
		{"secdb html", FormatAlpineSecDB, html, false},
		{"secdb truncated", FormatAlpineSecDB, secdb[:len(secdb)/2], false},
		{"secdb no packages", FormatAlpineSecDB, []byte("distroversion: v3.20\nreponame: main\n"), false},
		{"secdb no version", FormatAlpineSecDB, []byte("packages: []\n"), false},
		{"secdb empty", FormatAlpineSecDB, nil, false},
		{"unknown", "tar", zipped, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBytes(t, tt.format, tt.data)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok = %v", err, tt.ok)
			}
		})
	}
}

func FuzzCheckFormat(f *testing.F) {
	for _, name := range []string{"testdata/osv-record.json", "testdata/secdb-main.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(1), b)
		f.Add(uint8(2), b)
	}
	f.Add(uint8(0), osvZip(f, "MAMORI-TEST-1"))
	f.Add(uint8(1), []byte(`[[[{"a":[1,2,{"b":null}]}]]]`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		formats := []string{FormatOSVZip, FormatOSVJSON, FormatAlpineSecDB}
		checkBytes(t, formats[int(which)%len(formats)], data)
	})
}
