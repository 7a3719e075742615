package suppress

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mamorisec/mamori/internal/report"
)

func seed(f *testing.F, glob string) {
	names, err := filepath.Glob(glob)
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds for %s: %v", glob, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseIgnore(f *testing.F) {
	seed(f, "testdata/*.yaml")
	f.Add([]byte("- id: CVE-1\n  reason: r\n  path: /a/**/b/*\n  expires: 2025-01-01T00:00:00+02:00\n"))
	f.Add([]byte("- id: CVE-1\n  id: CVE-2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := ParseIgnore("fuzz.yaml", data)
		if err != nil {
			if fl != nil {
				t.Fatal("file returned with an error")
			}
			return
		}
		for _, r := range fl.rules {
			if r.id == "" || r.reason == "" {
				t.Fatalf("accepted rule without id or reason: %+v", r)
			}
		}
		// Accepted rules must apply without panicking.
		s := testScan()
		Apply(s, Rules{Now: now, Ignore: []*IgnoreFile{fl}})
	})
}

func FuzzParseVEX(f *testing.F) {
	seed(f, "testdata/vex/*.json")
	f.Add([]byte(vexHead + `{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:oci/a?tag=x", "subcomponents": [{"identifiers": {"purl": "pkg:npm/a"}}]}], "status": "fixed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVEX("fuzz.json", data)
		if err != nil {
			if v != nil {
				t.Fatal("document returned with an error")
			}
			return
		}
		for _, st := range v.statements {
			if len(st.vulns) == 0 || st.time.IsZero() {
				t.Fatalf("accepted statement without vulnerability or time: %+v", st)
			}
		}
		s := testScan()
		Apply(s, Rules{Now: now, VEX: []*VEX{v}})
		Apply(&report.Scan{}, Rules{Now: now, VEX: []*VEX{v}})
	})
}
