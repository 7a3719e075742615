package walk

import (
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
