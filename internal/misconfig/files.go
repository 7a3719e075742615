package misconfig

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Files is the inventory.Extractor that reports file-level facts: setuid
// and setgid regular files, world-writable regular files, files in
// package-manager cache directories and sudo binaries. It decides from the
// path, size and mode alone and never reads the content. The walk only
// offers regular files (and hard links), so world-writable directories are
// not checked.
//
// Its per-file findings are raw material for CheckImage, which folds them
// into the image-level list.
type Files struct{}

// Name implements inventory.Extractor.
func (Files) Name() string { return "misconfig/files" }

// Version implements inventory.Extractor.
func (Files) Version() int { return 1 }

// Required implements inventory.Extractor: it selects files by mode and
// path only.
func (Files) Required(fi inventory.FileInfo) bool {
	if fi.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 || fi.Mode.Perm()&0o002 != 0 || sudoPaths[fi.Path] {
		return true
	}
	if fi.Size == 0 {
		return false // lock files and markers hold no cache data
	}
	_, _, ok := cacheDir(fi.Path)
	return ok
}

// Extract implements inventory.Extractor. It does not read in.Reader.
func (Files) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	return inventory.Result{Findings: fileFindings(in.FileInfo)}, nil
}

// sudoPaths are where distributions and manual installs put sudo.
var sudoPaths = map[string]bool{
	"/usr/bin/sudo": true, "/bin/sudo": true, "/usr/sbin/sudo": true,
	"/sbin/sudo": true, "/usr/local/bin/sudo": true,
}

func fileFindings(fi inventory.FileInfo) []inventory.Finding {
	var out []inventory.Finding
	mode := modeString(fi.Mode)
	if fi.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		f := newFinding(SetuidAdded, inventory.SourceFile, map[string]string{"mode": mode})
		f.Path = fi.Path
		f.Match = fi.Path + " mode " + mode
		out = append(out, f)
	}
	if fi.Mode.Perm()&0o002 != 0 {
		f := newFinding(WorldWritable, inventory.SourceFile, map[string]string{"mode": mode})
		f.Path = fi.Path
		f.Match = fi.Path + " mode " + mode
		out = append(out, f)
	}
	if sudoPaths[fi.Path] {
		f := newFinding(SudoInstalled, inventory.SourceFile, nil)
		f.Path = fi.Path
		out = append(out, f)
	}
	if dir, manager, ok := cacheDir(fi.Path); ok && fi.Size > 0 {
		f := newFinding(PackageCache, inventory.SourceFile, map[string]string{
			"cacheDir": dir, "manager": manager, "bytes": strconv.FormatInt(fi.Size, 10),
		})
		f.Path = fi.Path
		out = append(out, f)
	}
	return out
}

// modeString formats permission bits in octal with setuid (4000), setgid
// (2000) and sticky (1000), as chmod takes them.
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// systemCaches are package-manager cache directories at fixed places.
var systemCaches = []struct{ dir, manager string }{
	{"/var/lib/apt/lists", "apt"},
	{"/var/cache/apt", "apt"},
	{"/var/cache/apk", "apk"},
	{"/var/cache/dnf", "dnf/yum"},
	{"/var/cache/libdnf5", "dnf/yum"},
	{"/var/cache/yum", "dnf/yum"},
	{"/usr/local/share/.cache/yarn", "yarn"},
}

// homeCaches are cache directories below a home directory.
var homeCaches = []struct{ sub, manager string }{
	{".cache/pip", "pip"},
	{".npm/_cacache", "npm"},
	{".cache/yarn", "yarn"},
}

// cacheDir returns the package-manager cache directory that holds p and
// the manager's name.
func cacheDir(p string) (dir, manager string, ok bool) {
	for _, c := range systemCaches {
		if strings.HasPrefix(p, c.dir+"/") {
			return c.dir, c.manager, true
		}
	}
	var home, rest string
	switch {
	case strings.HasPrefix(p, "/root/"):
		home, rest = "/root", p[len("/root/"):]
	case strings.HasPrefix(p, "/home/"):
		user, r, found := strings.Cut(p[len("/home/"):], "/")
		if !found || user == "" {
			return "", "", false
		}
		home, rest = "/home/"+user, r
	default:
		return "", "", false
	}
	for _, c := range homeCaches {
		if strings.HasPrefix(rest, c.sub+"/") {
			return home + "/" + c.sub, c.manager, true
		}
	}
	return "", "", false
}
