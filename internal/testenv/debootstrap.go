package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// DebianMirror is the mirror Debootstrap uses: $MAMORI_DEBIAN_MIRROR, else
// Debian's CDN (the mirror apt is configured with here).
func DebianMirror() string {
	if m := os.Getenv("MAMORI_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

var debootstrapMu sync.Mutex

// DebootstrapInclude are the packages Debootstrap adds to minbase: the set
// the Debian records in shared/data were checked against ("rootfs-a").
const DebootstrapInclude = "openssl,curl,python3,ca-certificates"

// Debootstrap returns a Debian 12 (bookworm) minbase root filesystem with
// DebootstrapInclude, made by the real debootstrap from the Debian mirror.
// It is built once per machine into the user cache directory (about 120
// packages, 2–3 minutes) and reused; a failed build leaves no half-made
// tree behind. Needs root.
func Debootstrap(t testing.TB) string {
	t.Helper()
	bin := NeedCommand(t, "debootstrap")
	if os.Geteuid() != 0 {
		Missing(t, "debootstrap needs root")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "mamori-test", "debootstrap-bookworm-minbase-a")
	debootstrapMu.Lock()
	defer debootstrapMu.Unlock()
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return root
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--variant=minbase", "--include="+DebootstrapInclude, "bookworm", tmp, DebianMirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		Missing(t, "debootstrap bookworm from %s failed: %v\n%s", DebianMirror(), err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	return root
}
