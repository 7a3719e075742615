package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

var built = time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)

// makeDB writes a small bbolt database with one record and returns its
// path.
func makeDB(t testing.TB, dir, id string) string {
	t.Helper()
	return makeDBSize(t, dir, id, 0)
}

// makeDBSize writes a bbolt database with one record and pad bytes of
// incompressible data and returns its path.
func makeDBSize(t testing.TB, dir, id string, pad int) string {
	t.Helper()
	p := filepath.Join(dir, "src-"+id+".db")
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), []byte(`{"id":"`+id+`","summary":"test record"}`)); err != nil {
			return err
		}
		if pad == 0 {
			return nil
		}
		noise := make([]byte, pad)
		rand.NewChaCha8([32]byte{1}).Read(noise)
		return b.Put([]byte("padding"), noise)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyDB opens a database read-only and checks that it holds a record
// bucket, as the real verify function checks the schema.
func verifyDB(p string) error {
	db, err := bolt.Open(p, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("records")) == nil {
			return errors.New("no records bucket")
		}
		return nil
	})
}

func manifest() Manifest {
	return Manifest{
		DBSchemaVersion: 1,
		Built:           built,
		Sources: []SourceInfo{
			{Name: "osv-debian", URL: "https://osv.example/Debian/all.zip", SHA256: strings.Repeat("ab", 32), Records: 1},
		},
	}
}

func exportBytes(t testing.TB, dbPath string, m Manifest) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(&buf, dbPath, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := makeDB(t, dir, "MAMORI-1")
	dbBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "mamori-db"+Ext)
	if err := ExportFile(bundlePath, src, manifest()); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "installed", "mamori.db")
	var verified string
	m, err := ImportFile(bundlePath, dest, func(p string) error {
		verified = p
		if filepath.Dir(p) != filepath.Dir(dest) {
			t.Errorf("temporary database %s is not next to %s", p, dest)
		}
		return verifyDB(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if verified == "" || verified == dest {
		t.Errorf("verify called with %q", verified)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dbBytes) {
		t.Error("installed database differs from the exported one")
	}
	if err := verifyDB(dest); err != nil {
		t.Error(err)
	}
	want := manifest()
	want.SchemaVersion = SchemaVersion
	want.Created = m.Created
	want.Files = []FileInfo{{Name: DBName, Size: int64(len(dbBytes)), SHA256: hashOf(dbBytes)}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("manifest:\n%+v\nwant\n%+v", m, want)
	}
	if m.Created.IsZero() || time.Since(m.Created) > time.Minute {
		t.Errorf("created = %v", m.Created)
	}
	checkOnly(t, filepath.Dir(dest), "mamori.db")

	// A second import replaces the database.
	src2 := makeDB(t, dir, "MAMORI-2")
	m2 := manifest()
	m2.Created = built.Add(time.Hour)
	if _, err := Import(bytes.NewReader(exportBytes(t, src2, m2)), dest, verifyDB); err != nil {
		t.Fatal(err)
	}
	db2, _ := os.ReadFile(src2)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, db2) {
		t.Error("second import did not replace the database")
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := Export(&buf, filepath.Join(dir, "missing.db"), manifest()); err == nil || !strings.Contains(err.Error(), "missing.db") {
		t.Errorf("missing database: %v", err)
	}
	if err := Export(&buf, dir, manifest()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	defer func(old int64) { maxDBSize = old }(maxDBSize)
	maxDBSize = 10
	if err := Export(&buf, makeDB(t, dir, "X"), manifest()); err == nil || !strings.Contains(err.Error(), "over the bundle limit") {
		t.Errorf("too large: %v", err)
	}
}

// entry is one tar entry of a hand-made bundle.
type entry struct {
	name     string
	typ      byte
	body     []byte
	linkname string
}

func tarBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.linkname, ModTime: built}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encoder is shared by the tests: creating a zstd encoder is costly, which
// matters for the fuzz targets.
var encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

func compress(t testing.TB, b []byte) []byte {
	t.Helper()
	return encoder.EncodeAll(b, nil)
}

// manifestJSON returns a manifest for db, changed by edit.
func manifestJSON(t testing.TB, db []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	m := manifest()
	m.SchemaVersion = SchemaVersion
	m.Created = built
	m.Files = []FileInfo{{Name: DBName, Size: int64(len(db)), SHA256: hashOf(db)}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	edit(raw)
	b, err = json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setFile(key string, v any) func(map[string]any) {
	return func(m map[string]any) {
		m["files"].([]any)[0].(map[string]any)[key] = v
	}
}

// TestImportRejects checks that every damaged or malicious bundle is
// rejected with a clear error and leaves the installed database untouched.
func TestImportRejects(t *testing.T) {
	dir := t.TempDir()
	dbPath := makeDBSize(t, dir, "NEW", 256<<10)
	db, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	good := exportBytes(t, dbPath, manifest())
	man := manifestJSON(t, db, nil)
	zst := func(entries ...entry) []byte { return compress(t, tarBytes(t, entries)) }
	withManifest := func(edit func(map[string]any)) []byte {
		return zst(entry{name: ManifestName, body: manifestJSON(t, db, edit)}, entry{name: DBName, body: db})
	}
	flipped := bytes.Clone(db)
	flipped[len(flipped)/2] ^= 0x40
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(tarBytes(t, []entry{{name: ManifestName, body: man}, {name: DBName, body: db}}))
	gw.Close()

	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"empty file", nil, "empty file"},
		{"not compressed", []byte("hello, world"), "not zstd-compressed"},
		{"gzip", gz.Bytes(), "gzip-compressed"},
		{"truncated at 4", good[:4], "truncated: unexpected EOF"},
		{"truncated at 20", good[:20], "truncated: unexpected EOF"},
		{"truncated at 1/4", good[:len(good)/4], "truncated: unexpected EOF"},
		{"truncated at 1/2", good[:len(good)/2], "truncated: unexpected EOF"},
		{"truncated at 3/4", good[:len(good)*3/4], "truncated: unexpected EOF"},
		{"truncated by 10", good[:len(good)-10], "truncated: unexpected EOF"},
		{"truncated by 1", good[:len(good)-1], "truncated: unexpected EOF"},
		{"flipped byte in database", zst(entry{name: ManifestName, body: man}, entry{name: DBName, body: flipped}), "the manifest says " + hashOf(db)},
		{"wrong hash", withManifest(setFile("sha256", strings.Repeat("0", 64))), "corrupt bundle"},
		{"wrong size", withManifest(setFile("size", len(db)+1)), fmt.Sprintf("mamori.db is %d bytes, the manifest says %d", len(db), len(db)+1)},
		{"upper-case hash", withManifest(setFile("sha256", strings.ToUpper(hashOf(db)))), "not a lower-case hex SHA-256"},
		{"short hash", withManifest(setFile("sha256", "abc")), "not a lower-case hex SHA-256"},
		{"negative size", withManifest(setFile("size", -1)), "outside the limit"},
		{"unknown file in manifest", withManifest(setFile("name", "other.db")), `files lists unknown file "other.db"`},
		{"no files", withManifest(func(m map[string]any) { delete(m, "files") }), "files must list exactly mamori.db"},
		{"two files", withManifest(func(m map[string]any) { f := m["files"].([]any); m["files"] = append(f, f[0]) }), "found 2 entries"},
		{"newer schema", withManifest(func(m map[string]any) { m["schemaVersion"] = SchemaVersion + 1 }), "newer than this mamori supports"},
		{"no schema", withManifest(func(m map[string]any) { delete(m, "schemaVersion") }), "invalid schemaVersion 0"},
		{"no built", withManifest(func(m map[string]any) { delete(m, "built") }), "no built time"},
		{"unknown manifest field", withManifest(func(m map[string]any) { m["signature"] = "x" }), `unknown field "signature"`},
		{"manifest not JSON", zst(entry{name: ManifestName, body: []byte("<html>")}, entry{name: DBName, body: db}), "manifest.json: invalid character"},
		{"manifest trailing data", zst(entry{name: ManifestName, body: append(bytes.Clone(man), "{}"...)}, entry{name: DBName, body: db}), "unexpected data after the JSON object"},
		{"manifest too large", zst(entry{name: ManifestName, body: make([]byte, maxManifestSize+1)}, entry{name: DBName, body: db}), "over the limit"},
		{"path traversal", zst(entry{name: ManifestName, body: man}, entry{name: "../x", body: db}), `entry "../x": unsafe path`},
		{"absolute path", zst(entry{name: "/etc/passwd", body: db}), `entry "/etc/passwd": unsafe path`},
		{"nested traversal", zst(entry{name: "a/../../mamori.db", body: db}), "unsafe path"},
		{"directory prefix", zst(entry{name: ManifestName, body: man}, entry{name: "dir/mamori.db", body: db}), `unknown entry "dir/mamori.db"`},
		{"symlink", zst(entry{name: ManifestName, body: man}, entry{name: DBName, typ: tar.TypeSymlink, linkname: "/etc/passwd"}), `"mamori.db" is a symbolic link`},
		{"hard link", zst(entry{name: ManifestName, body: man}, entry{name: DBName, typ: tar.TypeLink, linkname: ManifestName}), "is a hard link"},
		{"directory", zst(entry{name: ManifestName, typ: tar.TypeDir}), "is a directory"},
		{"fifo", zst(entry{name: ManifestName, body: man}, entry{name: DBName, typ: tar.TypeFifo}), "is a FIFO"},
		{"extra entry", zst(entry{name: ManifestName, body: man}, entry{name: DBName, body: db}, entry{name: "README", body: []byte("hi")}), `unknown entry "README"`},
		{"duplicate database", zst(entry{name: ManifestName, body: man}, entry{name: DBName, body: db}, entry{name: DBName, body: db}), `duplicate entry "mamori.db"`},
		{"duplicate manifest", zst(entry{name: ManifestName, body: man}, entry{name: ManifestName, body: man}, entry{name: DBName, body: db}), `duplicate entry "manifest.json"`},
		{"missing manifest", zst(entry{name: DBName, body: db}), `missing manifest.json: the first entry is "mamori.db"`},
		{"manifest last", zst(entry{name: DBName, body: db}, entry{name: ManifestName, body: man}), "missing manifest.json"},
		{"missing database", zst(entry{name: ManifestName, body: man}), "missing mamori.db"},
		{"empty archive", zst(), "missing manifest.json: the archive is empty"},
		{"trailing data", compress(t, append(tarBytes(t, []entry{{name: ManifestName, body: man}, {name: DBName, body: db}}), "garbage"...)), "unexpected data after the end of the archive"},
		{"tar garbage", compress(t, []byte(strings.Repeat("not a tar header ", 64))), "reading entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "mamori.db")
			old := []byte("the installed database")
			if err := os.WriteFile(dest, old, 0o644); err != nil {
				t.Fatal(err)
			}
			called := false
			_, err := Import(bytes.NewReader(tt.bundle), dest, func(p string) error {
				called = true
				return verifyDB(p)
			})
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "invalid bundle: ") {
				t.Errorf("error %q: want invalid bundle: ...%s...", err, tt.want)
			}
			if called {
				t.Error("verify called for an invalid bundle")
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
				t.Errorf("installed database changed to %d bytes", len(got))
			}
			checkOnly(t, filepath.Dir(dest), "mamori.db")
		})
	}
}

func TestImportZeroPadding(t *testing.T) {
	dir := t.TempDir()
	dbPath := makeDB(t, dir, "NEW")
	db, _ := os.ReadFile(dbPath)
	// GNU tar pads archives to 10 KiB records.
	tb := append(tarBytes(t, []entry{{name: ManifestName, body: manifestJSON(t, db, nil)}, {name: DBName, body: db}}), make([]byte, 10<<10)...)
	dest := filepath.Join(dir, "mamori.db")
	if _, err := Import(bytes.NewReader(compress(t, tb)), dest, verifyDB); err != nil {
		t.Fatal(err)
	}
	tb = append(tb, make([]byte, maxTrailing)...)
	if _, err := Import(bytes.NewReader(compress(t, tb)), dest, verifyDB); err == nil || !strings.Contains(err.Error(), "too much padding") {
		t.Errorf("err = %v", err)
	}
}

func TestImportFlippedCompressedByte(t *testing.T) {
	dir := t.TempDir()
	good := exportBytes(t, makeDB(t, dir, "NEW"), manifest())
	dest := filepath.Join(dir, "mamori.db")
	old := []byte("the installed database")
	if err := os.WriteFile(dest, old, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{4, 10, 100, len(good) / 3, len(good) / 2, len(good) - 8, len(good) - 1} {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[off] ^= bit
			if _, err := Import(bytes.NewReader(b), dest, verifyDB); err == nil {
				t.Errorf("offset %d bit %#x: want an error", off, bit)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
				t.Fatalf("offset %d: installed database changed", off)
			}
		}
	}
	checkOnly(t, dir, "mamori.db", "src-NEW.db")
}

func TestImportVerifyFails(t *testing.T) {
	dir := t.TempDir()
	// A valid bundle whose database is not a bbolt file.
	notDB := filepath.Join(dir, "not.db")
	os.WriteFile(notDB, []byte("plain text, not a database"), 0o644)
	dest := filepath.Join(dir, "mamori.db")
	old := makeDB(t, dir, "OLD")
	if err := os.Rename(old, dest); err != nil {
		t.Fatal(err)
	}
	oldBytes, _ := os.ReadFile(dest)
	_, err := ImportFile(writeBundle(t, dir, exportBytes(t, notDB, manifest())), dest, verifyDB)
	if err == nil || !strings.Contains(err.Error(), "bundled database failed verification") || !strings.Contains(err.Error(), "bundle.tar.zst") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, oldBytes) {
		t.Error("installed database changed")
	}
	checkOnly(t, dir, "bundle.tar.zst", "mamori.db", "not.db")
}

func TestImportDBTooLarge(t *testing.T) {
	dir := t.TempDir()
	b := exportBytes(t, makeDB(t, dir, "BIG"), manifest())
	defer func(old int64) { maxDBSize = old }(maxDBSize)
	maxDBSize = 1000
	_, err := Import(bytes.NewReader(b), filepath.Join(dir, "mamori.db"), nil)
	if err == nil || !strings.Contains(err.Error(), "outside the limit of 0 to 1000 bytes") {
		t.Errorf("err = %v", err)
	}
}

func TestImportFileMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := ImportFile(filepath.Join(dir, "none.tar.zst"), filepath.Join(dir, "mamori.db"), nil); err == nil || !strings.Contains(err.Error(), "none.tar.zst") {
		t.Errorf("err = %v", err)
	}
}

func writeBundle(t testing.TB, dir string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, "bundle.tar.zst")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOnly fails unless dir holds exactly the named entries (so no
// temporary file was left behind and nothing else was written).
func checkOnly(t testing.TB, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
