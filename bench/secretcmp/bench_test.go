package secretcmp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/secret"
	"github.com/mamorisec/mamori/internal/testenv"
)

// BenchmarkDebianRoot measures the scanner over the Debian root
// filesystem, reading files as the walk would (bytes/s counts the bytes
// of the files the extractor requires).
func BenchmarkDebianRoot(b *testing.B) {
	root := testenv.DebianRoot(b)
	s, err := secret.New(secret.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for b.Loop() {
		_, n = walkTree(b, s, root)
	}
	b.SetBytes(n)
}

// TestImageLayersTime scans the files of every layer of the benchmark
// image ($BENCH_DIR/build/layers/*), single-threaded, and logs the time:
// the engine's share of `mamori scan --scanners secret` on that image.
func TestImageLayersTime(t *testing.T) {
	if testing.Short() {
		t.Skip("scans a 1.5 GB tree")
	}
	testenv.DebianRoot(t)
	layers, err := filepath.Glob(filepath.Join(testenv.BenchDir(), "build", "layers", "*"))
	if err != nil || len(layers) == 0 {
		testenv.Missing(t, "image layers in %s", filepath.Join(testenv.BenchDir(), "build", "layers"))
	}
	s, err := secret.New(secret.Config{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var total int64
	for _, l := range layers {
		if fi, err := os.Stat(l); err != nil || !fi.IsDir() {
			continue
		}
		fs, n := walkTree(t, s, l)
		total += n
		for _, f := range fs {
			t.Logf("%s: %s:%d %s %s", filepath.Base(l), f.Path, f.StartLine, f.RuleID, f.Match)
		}
	}
	d := time.Since(start)
	t.Logf("scanned %d MiB of %d layers in %v (%.0f MiB/s)", total>>20, len(layers), d, float64(total)/(1<<20)/d.Seconds())
}
