package scanner

import (
	"context"
	"os"
	"testing"
)

// BenchmarkInventory profiles a whole inventory run on a real image:
// MAMORI_BENCH_IMAGE=docker-archive:img.tar go test -bench Inventory -cpuprofile cpu.out ./internal/scanner
func BenchmarkInventory(b *testing.B) {
	ref := os.Getenv("MAMORI_BENCH_IMAGE")
	if ref == "" {
		b.Skip("set MAMORI_BENCH_IMAGE to an image reference")
	}
	for b.Loop() {
		if _, err := Inventory(context.Background(), ref, Options{NoCache: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRescan measures a scan whose layers are all in the cache.
func BenchmarkRescan(b *testing.B) {
	ref := os.Getenv("MAMORI_BENCH_IMAGE")
	if ref == "" {
		b.Skip("set MAMORI_BENCH_IMAGE to an image reference")
	}
	opts := Options{CacheDir: b.TempDir()}
	if _, err := Inventory(context.Background(), ref, opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Inventory(context.Background(), ref, opts); err != nil {
			b.Fatal(err)
		}
	}
}
