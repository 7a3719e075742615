package sbom

import (
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// BenchmarkEncode measures the encoders on a real report in native JSON:
// MAMORI_BENCH_REPORT=report.json go test -bench Encode ./internal/sbom
func BenchmarkEncode(b *testing.B) {
	p := os.Getenv("MAMORI_BENCH_REPORT")
	if p == "" {
		b.Skip("set MAMORI_BENCH_REPORT to a native JSON report")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	var rep inventory.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		b.Fatal(err)
	}
	for _, f := range Formats() {
		b.Run(f, func(b *testing.B) {
			for b.Loop() {
				if err := Encode(io.Discard, &rep, f, Options{Now: time.Now}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
