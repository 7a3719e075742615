package image

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"testing"
)

// BenchmarkInflate compares the gzip implementations Decompress can use on a
// real layer: MAMORI_BENCH_GZ=layer.tar.gz go test -bench Inflate -benchtime 3x
func BenchmarkInflate(b *testing.B) {
	path := os.Getenv("MAMORI_BENCH_GZ")
	if path == "" {
		b.Skip("set MAMORI_BENCH_GZ to a gzip file")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, impl := range []string{"stdlib", "go", "pigz", "igzip"} {
		b.Run(impl, func(b *testing.B) {
			b.SetBytes(st.Size())
			if impl != "stdlib" {
				b.Setenv("MAMORI_GUNZIP", impl)
			}
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				var r io.Reader
				var c io.Closer = f
				if impl == "stdlib" {
					zr, err := gzip.NewReader(f)
					if err != nil {
						b.Fatal(err)
					}
					r = zr
				} else {
					rc, _, err := Decompress(context.Background(), f)
					if err != nil {
						b.Fatal(err)
					}
					r, c = rc, rc
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
