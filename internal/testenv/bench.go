package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchDir is the benchmark cache that bench/build-image.sh and
// bench/build-peers.sh fill: $BENCH_DIR, else mamori-bench in the user
// cache directory.
func BenchDir() string {
	if d := os.Getenv("BENCH_DIR"); d != "" {
		return d
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "mamori-bench"
	}
	return filepath.Join(c, "mamori-bench")
}

// PeersDir is where the peer scanners are: $MAMORI_PEERS, else
// BenchDir()/bin.
func PeersDir() string {
	if d := os.Getenv("MAMORI_PEERS"); d != "" {
		return d
	}
	return filepath.Join(BenchDir(), "bin")
}

// DebianRoot returns the benchmark's Debian 12 root filesystem with 500+
// packages (BenchDir()/build/layers/base, made by `bench/build-image.sh
// base`). Tests must only read it. It is Missing when absent.
func DebianRoot(t testing.TB) string {
	t.Helper()
	root := filepath.Join(BenchDir(), "build", "layers", "base")
	if _, err := os.Stat(filepath.Join(root, "var", "lib", "dpkg", "status")); err != nil {
		Missing(t, "Debian root filesystem %s (run bench/build-image.sh base, or set BENCH_DIR)", root)
	}
	return root
}
