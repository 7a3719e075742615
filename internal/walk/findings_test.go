package walk

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

// wordExtractor reports every line "SECRET x" or "LICENSE x" of *.txt files
// as a finding of that kind, and fails with ErrUncacheable on "FLAKY".
type wordExtractor struct{ digest string }

func (wordExtractor) Name() string { return "test/words" }
func (wordExtractor) Version() int { return 1 }
func (wordExtractor) Required(fi inventory.FileInfo) bool {
	return strings.HasSuffix(fi.Path, ".txt")
}
func (w wordExtractor) ConfigDigest() string { return w.digest }
func (wordExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := io.ReadAll(in.Reader)
	if err != nil {
		return inventory.Result{}, err
	}
	var res inventory.Result
	for i, line := range strings.Split(string(b), "\n") {
		kind, rule, ok := strings.Cut(line, " ")
		switch {
		case line == "FLAKY":
			return res, fmt.Errorf("engine went away: %w", inventory.ErrUncacheable)
		case ok && kind == "SECRET":
			res.Findings = append(res.Findings, inventory.Finding{Kind: inventory.KindSecret, RuleID: rule, StartLine: i + 1})
		case ok && kind == "LICENSE":
			res.Findings = append(res.Findings, inventory.Finding{Kind: inventory.KindLicense, RuleID: rule})
		}
	}
	return res, nil
}

func findingNames(r *inventory.Report) []string {
	var out []string
	for _, f := range r.Findings {
		s := fmt.Sprintf("%s:%s:%s#%d", f.Kind, f.RuleID, f.Path, f.Layer.Index)
		if f.Removed {
			s += " removed"
		}
		out = append(out, s)
	}
	return out
}

func TestFindingsSurviveRemoval(t *testing.T) {
	l0 := makeTar(t,
		file("app/key.txt", "SECRET aws\n"),
		file("app/COPYING.txt", "LICENSE MIT\n"),
		file("etc/conf.txt", "SECRET db\n"),
		file("keep.txt", "SECRET token\n"))
	l1 := makeTar(t,
		file("app/.wh.key.txt", ""),
		file("app/.wh.COPYING.txt", ""),
		file("etc/conf.txt", "nothing here\n"))
	img := testImage(l0, l1)
	m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{wordExtractor{}}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(findingNames(m.Report), "\n")
	want := strings.Join([]string{
		"secret:aws:/app/key.txt#0 removed",
		"secret:db:/etc/conf.txt#0 removed",
		"secret:token:/keep.txt#0",
	}, "\n")
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	for _, f := range m.Report.Findings {
		if f.Source != inventory.SourceFile || f.Layer.DiffID == "" {
			t.Errorf("finding %+v: want source file and a layer diffID", f)
		}
	}
}

func TestFindingsCache(t *testing.T) {
	img := testImage(makeTar(t, file("a.txt", "SECRET one\n")))
	cache := &Cache{Dir: t.TempDir()}
	scan := func(ext inventory.Extractor) []string {
		t.Helper()
		m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{ext}, Cache: cache, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return findingNames(m.Report)
	}
	first := scan(wordExtractor{digest: "a"})
	if again := scan(wordExtractor{digest: "a"}); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Errorf("cached findings %q, first scan %q", again, first)
	}
	if key1, key2 := cacheKey("sha256:00", []inventory.Extractor{wordExtractor{digest: "a"}}), cacheKey("sha256:00", []inventory.Extractor{wordExtractor{digest: "b"}}); key1 == key2 {
		t.Errorf("cache key ignores the extractor's configuration digest")
	}

	flaky := testImage(makeTar(t, file("b.txt", "FLAKY\n")))
	if _, err := Image(context.Background(), flaky, Options{Extractors: []inventory.Extractor{wordExtractor{}}, Cache: cache, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	key := cacheKey(flaky.Layers[0].DiffID(), []inventory.Extractor{wordExtractor{}})
	if _, ok := cache.get(key); ok {
		t.Errorf("a layer with an uncacheable failure was cached")
	}
}

// driftExtractor changes its configuration digest while it extracts, as a
// malware engine does when its daemon goes away mid-scan.
type driftExtractor struct {
	wordExtractor
	digest *string
}

func (d driftExtractor) ConfigDigest() string { return *d.digest }
func (d driftExtractor) Extract(ctx context.Context, in *inventory.Input) (inventory.Result, error) {
	*d.digest = "engine down"
	return d.wordExtractor.Extract(ctx, in)
}

func TestConfigDriftNotCached(t *testing.T) {
	img := testImage(makeTar(t, file("a.txt", "SECRET one\n")))
	cache := &Cache{Dir: t.TempDir()}
	digest := "engine up"
	ext := driftExtractor{digest: &digest}
	if _, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{ext}, Cache: cache, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"engine up", "engine down"} {
		digest = d
		if _, ok := cache.get(cacheKey(img.Layers[0].DiffID(), []inventory.Extractor{ext})); ok {
			t.Errorf("layer cached under digest %q after the configuration changed mid-scan", d)
		}
	}
}

// modeExtractor reports the mode the walk gives each *.bin file.
type modeExtractor struct{}

func (modeExtractor) Name() string { return "test/mode" }
func (modeExtractor) Version() int { return 1 }
func (modeExtractor) Required(fi inventory.FileInfo) bool {
	return strings.HasSuffix(fi.Path, ".bin") || strings.HasSuffix(fi.Path, ".txt")
}
func (modeExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	return inventory.Result{Findings: []inventory.Finding{{Kind: inventory.KindMisconfig, RuleID: in.Mode.String()}}}, nil
}

// TestHardLinkKeepsSetuid checks that a hard link read in the second pass
// keeps its target's setuid bit.
func TestHardLinkKeepsSetuid(t *testing.T) {
	target := tarEntry{name: "usr/bin/tool.txt", body: "x", typ: tar.TypeReg, mode: 0o4755}
	img := testImage(makeTar(t, target, hardlink("usr/bin/alias.bin", "usr/bin/tool.txt")))
	m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{modeExtractor{}}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Report.Findings {
		if f.Path == "/usr/bin/alias.bin" && !strings.Contains(f.RuleID, "u") {
			t.Errorf("hard link mode %s lost the setuid bit", f.RuleID)
		}
	}
	if len(m.Report.Findings) != 2 {
		t.Errorf("findings %v, want the file and its link", findingNames(m.Report))
	}
}

// bytesExtractor reports whether Input.Bytes gave the whole file.
type bytesExtractor struct{}

func (bytesExtractor) Name() string                        { return "test/bytes" }
func (bytesExtractor) Version() int                        { return 1 }
func (bytesExtractor) Required(fi inventory.FileInfo) bool { return true }
func (bytesExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	rule := "no-bytes"
	if b := in.Bytes(); b != nil && int64(len(b)) == in.Size && strings.HasPrefix(string(b), "data") {
		rule = "bytes"
	}
	return inventory.Result{Findings: []inventory.Finding{{Kind: inventory.KindSecret, RuleID: rule}}}, nil
}

// TestInputBytes checks that content analyzers see whole files without a
// copy, both when the walk holds a file in memory and when it spooled it.
func TestInputBytes(t *testing.T) {
	img := testImage(makeTar(t, file("small", "data"), file("large", "data"+strings.Repeat("x", 4<<10))))
	m, err := Image(context.Background(), img, Options{Extractors: []inventory.Extractor{bytesExtractor{}}, TempDir: t.TempDir(),
		Limits: Limits{MemFile: 1 << 10, MemBudget: 1 << 20, MaxFile: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(findingNames(m.Report), ","); got != "secret:bytes:/large#0,secret:bytes:/small#0" {
		t.Errorf("findings %s", got)
	}
}
