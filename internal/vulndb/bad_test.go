package vulndb

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
	bolt "go.etcd.io/bbolt"
)

func TestParseOSVErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "empty file"},
		{"not json", "{", "not an OSV record in JSON"},
		{"no id", `{"affected":[]}`, "has no id"},
		{"bad id", `{"id":"../x"}`, "not a valid identifier"},
		{"bad time", `{"id":"X-1","modified":"yesterday"}`, "field modified"},
		{"no package", `{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI"}}]}`, "no package ecosystem or name"},
		{"two kinds in one event", `{"id":"X-1","affected":[{"package":{"ecosystem":"PyPI","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}`, "exactly one of"},
		{"yaml alias", "id: X-1\nsummary: &a x\ndetails: *a\n", "aliases are not allowed"},
		{"yaml garbage", "id: [", "not an OSV record in YAML"},
	}
	for _, tt := range tests {
		_, err := ParseOSV("rec.json", []byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rec.json") {
			t.Errorf("%s: err = %v, want one naming rec.json and containing %q", tt.name, err, tt.want)
		}
	}
}

func TestYAMLKeepsVersionStrings(t *testing.T) {
	r, err := ParseOSV("r.yaml", []byte("id: PYSEC-1\naffected:\n- package: {ecosystem: PyPI, name: a}\n  versions:\n  - 1.0\n  - 2.10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Affected[0].Versions; len(got) != 2 || got[0] != "1.0" || got[1] != "2.10" {
		t.Errorf("versions = %q, want [1.0 2.10]", got)
	}
}

// TestSkipsAreCounted checks that bad records, unknown ecosystems and
// unparsable versions are skipped, counted and named, and that the good
// records of the same source are kept.
func TestSkipsAreCounted(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"good.json":      `{"id":"GHSA-good","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`,
		"broken.json":    `{"id":`,
		"unknown.json":   `{"id":"X-1","affected":[{"package":{"ecosystem":"Hackage","name":"a"},"versions":["1"]}]}`,
		"badver.json":    `{"id":"X-2","affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"not a version"}]}]}]}`,
		"withdrawn.json": `{"id":"X-3","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"versions":["1.0.0"]}]}`,
		"notes.txt":      "ignored",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logged []string
	b := NewBuilder()
	b.Log = func(m string) { logged = append(logged, m) }
	src, err := b.AddPath("test", dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Records != 1 || src.Skipped != 3 || src.Withdrawn != 1 || len(logged) != 3 {
		t.Errorf("records %d skipped %d withdrawn %d logged %d: %q", src.Records, src.Skipped, src.Withdrawn, len(logged), src.Problems)
	}
	for _, want := range []string{"broken.json", "unknown ecosystem \"Hackage\"", "not a version"} {
		if !strings.Contains(strings.Join(src.Problems, "\n"), want) {
			t.Errorf("problems %q do not mention %q", src.Problems, want)
		}
	}
}

func TestZipSource(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("GHSA-z.json")
	w.Write([]byte(`{"id":"GHSA-z","affected":[{"package":{"ecosystem":"npm","name":"z"},"versions":["1.0.0"]}]}`))
	zw.Close()
	p := filepath.Join(t.TempDir(), "all.zip")
	os.WriteFile(p, buf.Bytes(), 0o644)
	db, info := build(t, p)
	if info.Records != 1 {
		t.Fatalf("records = %d", info.Records)
	}
	es, _ := db.Affected("npm", "z")
	if len(es) != 1 {
		t.Errorf("entries = %+v", es)
	}
	// A truncated zip is an error naming the file, not a silent empty DB.
	os.WriteFile(p, buf.Bytes()[:buf.Len()/2], 0o644)
	if _, err := NewBuilder().AddPath("z", p, p); err == nil || !strings.Contains(err.Error(), "all.zip") {
		t.Errorf("truncated zip: err = %v", err)
	}
}

func TestCorruptDatabase(t *testing.T) {
	_, _ = build(t, testenv.SharedData(t, "osv/go"))
	b := NewBuilder()
	if _, err := b.AddPath("go", "go", testenv.SharedData(t, "osv/go")); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "good.db")
	if _, err := b.Write(good, time.Now()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	gdb, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	var hwm int64
	gdb.bolt.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil })
	gdb.Close()
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty":       nil,
		"text":        []byte("not a database"),
		"truncated1":  data[:len(data)/2],
		"truncated2":  data[:4096*3],
		"truncated3":  data[:hwm-4096], // the last page in use is missing
		"zeroed meta": append(make([]byte, 8192), data[8192:]...),
	}
	flipped := bytes.Clone(data)
	for i := 16384; i < len(flipped); i += 4096 {
		flipped[i+100] ^= 0xff
	}
	cases["flipped"] = flipped
	for name, c := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := Open(p)
		if err == nil {
			// Damage Open cannot see must show up in Verify or lookups as
			// ErrCorrupt, never as a panic or a silently empty answer.
			err = db.Verify()
			db.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrCorrupt naming the file", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.db")); err == nil || !strings.Contains(err.Error(), "mamori db update") {
		t.Errorf("missing: err = %v", err)
	}
}

func FuzzParseOSV(f *testing.F) {
	f.Add([]byte(`{"id":"GHSA-good","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`))
	f.Add([]byte("id: PYSEC-1\naffected:\n- package: {ecosystem: PyPI, name: a}\n  versions: [1.0]\n"))
	f.Add([]byte("distroversion: v3.18\npackages:\n- pkg:\n    name: a\n    secfixes:\n      1.0-r0: [CVE-1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := NewBuilder()
		src := &SourceInfo{Name: "fuzz"}
		b.addData(src, "fuzz", data)
		if src.Records+src.Skipped+src.Withdrawn == 0 && len(bytes.TrimSpace(data)) > 0 && !isSecDB(data) {
			if _, err := ParseOSV("fuzz", data); err != nil {
				t.Fatalf("ParseOSV failed (%v) but nothing was counted", err)
			}
		}
	})
}
