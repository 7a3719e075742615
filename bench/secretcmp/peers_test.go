// Package secretcmp compares mamori's secret scanner with trivy's on a
// labelled corpus and on a Debian root filesystem.
package secretcmp

import (
	"os"
	"path/filepath"
)

// benchDir is $BENCH_DIR, by default mamori-bench in the user cache
// directory.
func benchDir() string {
	if d := os.Getenv("BENCH_DIR"); d != "" {
		return d
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "mamori-bench"
	}
	return filepath.Join(c, "mamori-bench")
}

// peersDir is where the peer tools are: $MAMORI_PEERS, else
// $BENCH_DIR/bin.
func peersDir() string {
	if d := os.Getenv("MAMORI_PEERS"); d != "" {
		return d
	}
	return filepath.Join(benchDir(), "bin")
}
