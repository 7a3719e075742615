package vulndb

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

func build(t testing.TB, paths ...string) (*DB, *Info) {
	t.Helper()
	b := NewBuilder()
	for _, p := range paths {
		if _, err := b.AddPath(filepath.Base(p), p, p); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "mamori.db")
	info, err := b.Write(out, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, info
}

func TestBuildRealData(t *testing.T) {
	db, info := build(t, testenv.SharedData(t, "osv/go"), testenv.SharedData(t, "osv/pypi"), testenv.SharedData(t, "osv/debian"), testenv.SharedData(t, "alpine-secdb"))
	for _, s := range info.Sources {
		t.Logf("%s: %d records, %d withdrawn, %d skipped %q", s.Name, s.Records, s.Withdrawn, s.Skipped, s.Problems)
	}
	if info.Records < 9000 {
		t.Errorf("only %d records", info.Records)
	}
	tests := []struct {
		base, name, id, eco string
	}{
		{"Go", "stdlib", "GO-2023-1840", "Go"},
		{"Debian", "ruby3.1", "DEBIAN-CVE-2023-28755", "Debian:12"},
		{"PyPI", "Apache_SkyWalking", "PYSEC-2020-342", "PyPI"}, // PEP 503 lookup
		{"Alpine", "ansible", "ALPINE-CVE-2019-14904", "Alpine:v3.11"},
	}
	for _, tt := range tests {
		es, err := db.Affected(tt.base, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			if e.ID == tt.id && e.Ecosystem == tt.eco {
				found = true
			}
		}
		if !found {
			t.Errorf("Affected(%s, %s): no %s in %s among %d entries", tt.base, tt.name, tt.id, tt.eco, len(es))
		}
		r, err := db.Record(tt.id)
		if err != nil || r == nil {
			t.Errorf("Record(%s) = %v, %v", tt.id, r, err)
		}
	}
	r, _ := db.Record("GO-2023-1840")
	if !strings.Contains(strings.Join(r.Aliases, ","), "CVE-2023-29403") {
		t.Errorf("GO-2023-1840 aliases = %v", r.Aliases)
	}
	es, _ := db.Affected("Go", "stdlib")
	for _, e := range es {
		if e.ID == "GO-2023-1840" && (len(e.Imports) == 0 || e.Imports[0].Path != "runtime") {
			t.Errorf("GO-2023-1840 imports = %+v", e.Imports)
		}
	}
}
