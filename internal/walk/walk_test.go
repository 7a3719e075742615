package walk

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
)

// listExtractor reads "name version" lines from files named *.pkgs; a line
// "PANIC" makes it panic and "ERR" makes it fail, to test containment.
type listExtractor struct{}

func (listExtractor) Name() string { return "test/list" }
func (listExtractor) Version() int { return 1 }
func (listExtractor) Required(fi inventory.FileInfo) bool {
	return strings.HasSuffix(fi.Path, ".pkgs")
}
func (listExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	var res inventory.Result
	sc := bufio.NewScanner(in.Reader)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "PANIC":
			panic("boom")
		case len(f) == 1 && f[0] == "ERR":
			return res, fmt.Errorf("bad list")
		case len(f) == 2:
			res.Packages = append(res.Packages, inventory.Package{Name: f[0], Version: f[1], Type: "test"})
		}
	}
	return res, sc.Err()
}

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) tarEntry { return tarEntry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) tarEntry        { return tarEntry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, link: target, typ: tar.TypeSymlink}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, link: target, typ: tar.TypeLink}
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// memLayer is an image.Layer over an in-memory tar.
type memLayer struct {
	data []byte
}

func (m memLayer) DiffID() string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(m.data))
}
func (m memLayer) Digest() string    { return m.DiffID() }
func (m memLayer) Size() int64       { return int64(len(m.data)) }
func (m memLayer) CreatedBy() string { return "test" }
func (m memLayer) Open(context.Context) (image.Stream, error) {
	return tarStream{tar.NewReader(bytes.NewReader(m.data))}, nil
}

type tarStream struct{ *tar.Reader }

func (tarStream) Close() error { return nil }

func testImage(layers ...[]byte) *image.Image {
	img := &image.Image{Ref: "test-image", Source: "test"}
	for _, l := range layers {
		img.Layers = append(img.Layers, memLayer{l})
	}
	return img
}

func names(r *inventory.Report) []string {
	var out []string
	for _, p := range r.Packages {
		out = append(out, fmt.Sprintf("%s@%s:%s#%d", p.Name, p.Version, p.Path, p.Layer.Index))
	}
	return out
}

func run(t *testing.T, img *image.Image, cache *Cache) *Merged {
	t.Helper()
	m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{listExtractor{}}, Cache: cache, TempDir: t.TempDir(), Merge: MergeOptions{KeepFS: true}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]byte
		want   []string
	}{
		{
			name:   "single",
			layers: [][]byte{makeTar(t, dir("a/"), file("a/x.pkgs", "foo 1\nbar 2\n"))},
			want:   []string{"bar@2:/a/x.pkgs#0", "foo@1:/a/x.pkgs#0"},
		},
		{
			name: "whiteout removes lower file",
			layers: [][]byte{
				makeTar(t, file("a/x.pkgs", "foo 1\n"), file("b/y.pkgs", "keep 1\n")),
				makeTar(t, file("a/.wh.x.pkgs", "")),
			},
			want: []string{"keep@1:/b/y.pkgs#0"},
		},
		{
			name: "whiteout of a directory removes its subtree",
			layers: [][]byte{
				makeTar(t, file("a/b/x.pkgs", "foo 1\n"), file("ab/y.pkgs", "keep 1\n")),
				makeTar(t, file(".wh.a", "")),
			},
			want: []string{"keep@1:/ab/y.pkgs#0"},
		},
		{
			name: "opaque directory hides lower contents but keeps its own",
			layers: [][]byte{
				makeTar(t, file("a/x.pkgs", "old 1\n"), file("a/sub/z.pkgs", "old2 1\n")),
				makeTar(t, dir("a/"), file("a/.wh..wh..opq", ""), file("a/new.pkgs", "new 1\n")),
			},
			want: []string{"new@1:/a/new.pkgs#1"},
		},
		{
			name: "upper layer rewrites a database: unchanged packages keep their layer",
			layers: [][]byte{
				makeTar(t, file("db.pkgs", "base 1\nold 1\n")),
				makeTar(t, file("other", "x")),
				makeTar(t, file("db.pkgs", "base 1\nold 2\nadded 1\n")),
			},
			want: []string{"added@1:/db.pkgs#2", "base@1:/db.pkgs#0", "old@2:/db.pkgs#2"},
		},
		{
			name: "upper layer replaces a database with a broken one",
			layers: [][]byte{
				makeTar(t, file("db.pkgs", "base 1\n")),
				makeTar(t, file("db.pkgs", "ERR\n")),
			},
			want: nil,
		},
		{
			name: "file replaced by a symlink",
			layers: [][]byte{
				makeTar(t, file("db.pkgs", "base 1\n")),
				makeTar(t, symlink("db.pkgs", "/elsewhere")),
			},
			want: nil,
		},
		{
			name: "directory replaced by a file",
			layers: [][]byte{
				makeTar(t, file("d/db.pkgs", "base 1\n")),
				makeTar(t, file("d", "now a file")),
			},
			want: nil,
		},
		{
			name: "hard link to a file no extractor needed",
			layers: [][]byte{
				makeTar(t, file("target", "foo 1\n"), hardlink("copy.pkgs", "target")),
			},
			want: []string{"foo@1:/copy.pkgs#0"},
		},
		{
			name: "hard link to a file an extractor also needed",
			layers: [][]byte{
				makeTar(t, file("a.pkgs", "foo 1\n"), hardlink("b.pkgs", "a.pkgs")),
			},
			want: []string{"foo@1:/a.pkgs#0", "foo@1:/b.pkgs#0"},
		},
		{
			name: "absolute and dot-slash names are relative to the root",
			layers: [][]byte{
				makeTar(t, file("/abs.pkgs", "a 1\n"), file("./dot.pkgs", "b 1\n")),
			},
			want: []string{"a@1:/abs.pkgs#0", "b@1:/dot.pkgs#0"},
		},
		{
			name: "entries escaping the root are ignored",
			layers: [][]byte{
				makeTar(t, file("../../evil.pkgs", "evil 1\n"), file("ok.pkgs", "ok 1\n")),
			},
			want: []string{"ok@1:/ok.pkgs#0"},
		},
		{
			name: "whiteout in the same layer does not hide the layer's own file",
			layers: [][]byte{
				makeTar(t, file("a.pkgs", "lower 1\n")),
				makeTar(t, file(".wh.a.pkgs", ""), file("a.pkgs", "upper 1\n")),
			},
			want: []string{"upper@1:/a.pkgs#1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, keepFS := range []bool{false, true} {
				m, err := Image(context.Background(), testImage(tc.layers...), Options{
					Extractors: []inventory.Extractor{listExtractor{}}, TempDir: t.TempDir(), Merge: MergeOptions{KeepFS: keepFS},
				})
				if err != nil {
					t.Fatal(err)
				}
				got := names(m.Report)
				if !slices.Equal(got, tc.want) {
					t.Errorf("KeepFS=%v: packages = %q, want %q", keepFS, got, tc.want)
				}
			}
		})
	}
}

func TestProblemsAreReported(t *testing.T) {
	img := testImage(makeTar(t, file("bad.pkgs", "ERR\n"), file("panic.pkgs", "PANIC\n"), file("../x", "y"), file("good.pkgs", "g 1\n")))
	m := run(t, img, nil)
	if got := names(m.Report); !slices.Equal(got, []string{"g@1:/good.pkgs#0"}) {
		t.Errorf("packages = %q", got)
	}
	var msgs []string
	for _, p := range m.Report.Problems {
		msgs = append(msgs, p.Path+": "+p.Message)
	}
	want := []string{"../x: tar entry name escapes the image root; entry ignored", "/bad.pkgs: bad list", "/panic.pkgs: extractor test/list failed: boom"}
	if !slices.Equal(msgs, want) {
		t.Errorf("problems = %q, want %q", msgs, want)
	}
}

func TestTruncatedLayer(t *testing.T) {
	data := makeTar(t, file("a.pkgs", strings.Repeat("foo 1\n", 1000)))
	img := testImage(data[:1500])
	_, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{listExtractor{}}, TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "test-image") || !strings.Contains(err.Error(), "/a.pkgs") {
		t.Fatalf("err = %v, want an error naming the image and file", err)
	}
}

func TestSpoolLargeFiles(t *testing.T) {
	body := strings.Repeat("pkg 1\n", 100)
	img := testImage(makeTar(t, file("big.pkgs", body)))
	m, err := Image(context.Background(), img, Options{
		Extractors: []inventory.Extractor{listExtractor{}},
		Limits:     Limits{MemFile: 10, MaxFile: 1 << 20},
		TempDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Report.Packages) != 100 {
		t.Errorf("got %d packages, want 100", len(m.Report.Packages))
	}
	m, err = Image(context.Background(), img, Options{
		Extractors: []inventory.Extractor{listExtractor{}},
		Limits:     Limits{MemFile: 10, MaxFile: 20},
		TempDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Report.Packages) != 0 || len(m.Report.Problems) != 1 {
		t.Errorf("oversize file: packages %d problems %v", len(m.Report.Packages), m.Report.Problems)
	}
}

func TestCache(t *testing.T) {
	cache := &Cache{Dir: t.TempDir()}
	img := testImage(makeTar(t, file("a.pkgs", "foo 1\n")), makeTar(t, file("b.pkgs", "bar 1\n")))
	first := run(t, img, cache)
	second := run(t, img, cache)
	if !slices.Equal(names(first.Report), names(second.Report)) {
		t.Errorf("cached result differs: %q vs %q", names(first.Report), names(second.Report))
	}
	// A corrupt cache entry is a miss, not an error.
	key := cacheKey(img.Layers[0].DiffID(), []inventory.Extractor{listExtractor{}})
	if err := writeFile(cache.path(key), "garbage"); err != nil {
		t.Fatal(err)
	}
	third := run(t, img, cache)
	if !slices.Equal(names(first.Report), names(third.Report)) {
		t.Errorf("after corrupt cache: %q", names(third.Report))
	}
}

func TestResolve(t *testing.T) {
	img := testImage(makeTar(t,
		dir("usr/"), dir("usr/lib/"), file("usr/lib/os-release", "x"),
		dir("etc/"), symlink("etc/os-release", "../usr/lib/os-release"),
		symlink("lib", "usr/lib"),
		symlink("escape", "../../../../usr/lib/os-release"),
		symlink("abs", "/usr/lib"),
		symlink("loop1", "loop2"), symlink("loop2", "loop1"),
		symlink("dangling", "nowhere"),
	))
	m := run(t, img, nil)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/etc/os-release", "/usr/lib/os-release", true},
		{"/lib/os-release", "/usr/lib/os-release", true},
		{"/escape", "/usr/lib/os-release", true},
		{"/abs/os-release", "/usr/lib/os-release", true},
		{"/loop1", "", false},
		{"/dangling", "", false},
	}
	for _, tc := range tests {
		got, ok := m.FS.Resolve(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzScanLayer(f *testing.F) {
	f.Add(makeTar(f, file("a.pkgs", "foo 1\n"), hardlink("b.pkgs", "a.pkgs"), file(".wh.c", "")))
	f.Add(makeTar(f, symlink("x", "../.."), file("../y.pkgs", "z 1")))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := testImage(data)
		m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{listExtractor{}}, TempDir: t.TempDir(), Limits: Limits{MemFile: 1 << 10, MaxFile: 1 << 20}, Merge: MergeOptions{KeepFS: true}})
		if err != nil {
			return
		}
		for p := range m.FS.Nodes {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") {
				t.Fatalf("unsafe path in index: %q", p)
			}
		}
		_, _ = io.Discard.Write(nil)
	})
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

func TestDropLockedDuplicates(t *testing.T) {
	pkgs := []inventory.Package{
		{Type: "npm", Name: "a", Version: "1", Path: "/app/node_modules/a/package.json"},
		{Type: "npm", Name: "a", Version: "1", Path: "/app/package-lock.json"},
		{Type: "npm", Name: "dev", Version: "1", Path: "/app/package-lock.json", Dev: true},
		{Type: "npm", Name: "fsevents", Version: "2", Path: "/app/package-lock.json"},
		{Type: "npm", Name: "b", Version: "2", Path: "/other/package-lock.json"},
		{Type: "npm", Name: "b", Version: "2", Path: "/app/node_modules/b/package.json"},
		{Type: "pypi", Name: "PyYAML", Version: "6.0", Path: "/usr/lib/python3/site-packages/PyYAML-6.0.dist-info/METADATA"},
		{Type: "pypi", Name: "pyyaml", Version: "6.0", Path: "/requirements.txt"},
		{Type: "npm", Name: "shipped", Version: "1", Path: "/usr/lib/ruby/gems/3.1.0/gems/typeprof-0.21.2/vscode/package-lock.json"},
		{Type: "gem", Name: "owned", Version: "1", Path: "/usr/share/x/Gemfile.lock", OwnedBy: "deb:x"},
		{Type: "gem", Name: "app", Version: "1", Path: "/srv/gems/Gemfile.lock"},
	}
	got := dropLockedDuplicates(slices.Clone(pkgs))
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Name+" "+p.Path)
	}
	want := []string{
		"a /app/node_modules/a/package.json",
		"b /other/package-lock.json",
		"b /app/node_modules/b/package.json",
		"PyYAML /usr/lib/python3/site-packages/PyYAML-6.0.dist-info/METADATA",
		"app /srv/gems/Gemfile.lock",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("got %q\nwant %q", paths, want)
	}
}

func TestEntriesEncoding(t *testing.T) {
	in := Entries{
		{Path: "/a", Type: TypeFile, Mode: 0o755 | fs.ModeSetuid, Size: 12},
		{Path: "/b", Type: TypeSymlink, Link: "../a"},
		{Path: "/d", Type: TypeDir, Mode: 0o700},
	}
	b, err := in.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	var out Entries
	if err := out.GobDecode(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, out) {
		t.Errorf("round trip: %+v", out)
	}
	for i := range len(b) {
		var cut Entries
		if err := cut.GobDecode(b[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
}

func FuzzEntriesDecode(f *testing.F) {
	b, _ := Entries{{Path: "/a", Type: TypeFile, Size: 3}, {Path: "/l", Type: TypeSymlink, Link: "a"}}.GobEncode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var es Entries
		if err := es.GobDecode(data); err != nil {
			return
		}
		again, err := es.GobEncode()
		if err != nil {
			t.Fatal(err)
		}
		var es2 Entries
		if err := es2.GobDecode(again); err != nil || !slices.Equal(es, es2) {
			t.Fatalf("re-encoding changed the entries: %v", err)
		}
	})
}

func TestFileListsEncoding(t *testing.T) {
	in := FileLists{"bash": {"/bin/bash", "/usr/share/doc/bash"}, "empty": {}}
	b, err := in.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	var out FileLists
	if err := out.GobDecode(b); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !slices.Equal(out["bash"], in["bash"]) || len(out["empty"]) != 0 {
		t.Errorf("round trip: %v", out)
	}
	for i := range len(b) {
		var cut FileLists
		if err := cut.GobDecode(b[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
}
