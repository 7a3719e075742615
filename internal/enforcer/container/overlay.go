package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds the symlinks followed while resolving one path, as
// the kernel does (ELOOP).
const maxSymlinks = 40

// FromImage reports whether the file at pathInContainer (an absolute path as
// the container sees it) is served by one of the container's image layers
// (true), or by its writable upper layer (false): copied in (docker cp),
// written, or modified in place (copied up) — drift. Symlinks are followed
// inside the container's root and can never lead out of it; whiteouts and
// opaque directories hide lower layers as overlayfs does. A directory counts
// as from the image when an image layer provides it and the upper layer
// did not replace it (opaque). Docker's init layer (the "-init" lower
// directory with the /etc/hosts and /etc/resolv.conf placeholders) counts
// as an image layer; overlayfs redirect_dir renames are not followed. A
// path that does not exist in the container gives an error wrapping
// fs.ErrNotExist.
func FromImage(c *Container, pathInContainer string) (bool, error) {
	if c == nil || c.UpperDir == "" {
		return false, errors.New("container has no overlay upper directory (not an overlay2/overlayfs container, or not inspected)")
	}
	layers := append([]string{c.UpperDir}, c.LowerDirs...)
	comps, err := resolveInLayers(layers, pathInContainer)
	if err != nil {
		return false, fmt.Errorf("container %s: %w", c.ShortID(), err)
	}
	idx, fi, opaque, err := lookupLayered(layers, comps)
	if err != nil {
		return false, fmt.Errorf("container %s: %s: %w", c.ShortID(), pathInContainer, err)
	}
	if idx > 0 {
		return true, nil
	}
	if fi.IsDir() && !opaque {
		// A directory in the upper layer may be a mere copy-up of an image
		// directory; it is from the image when a lower layer has it.
		if _, _, _, err := lookupLayered(layers[1:], comps); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// resolveInLayers resolves every symlink of p against the merged view of
// layers (upper first) and returns its components, never leaving the root.
func resolveInLayers(layers []string, p string) ([]string, error) {
	if !path.IsAbs(p) {
		return nil, fmt.Errorf("path %q is not absolute", p)
	}
	todo := splitPath(p)
	var done []string
	hops := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cand := append(done[:len(done):len(done)], name)
		idx, fi, _, err := lookupLayered(layers, cand)
		if err != nil {
			return nil, fmt.Errorf("%s: /%s: %w", p, strings.Join(cand, "/"), err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > maxSymlinks {
				return nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := os.Readlink(filepath.Join(layers[idx], filepath.Join(cand...)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if path.IsAbs(target) {
				done = nil
			}
			todo = append(splitPath(target), todo...)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return nil, fmt.Errorf("%s: /%s is not a directory", p, strings.Join(cand, "/"))
		}
		done = cand
	}
	return done, nil
}

// splitPath splits a slash-separated path into its components.
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// lookupLayered finds the layer (index into layers, upper first) that
// serves comps in the merged view: a whiteout in a higher layer deletes the
// entry, and an opaque directory hides everything below it in lower layers.
// opaque reports whether the entry itself is an opaque directory. comps
// must hold no symlinks but the last component, and no "." or "..".
func lookupLayered(layers []string, comps []string) (idx int, fi fs.FileInfo, opaque bool, err error) {
	if len(comps) == 0 {
		fi, err := os.Lstat(layers[0])
		return 0, fi, false, err
	}
	for i, l := range layers {
		stop, present := false, true
		for j := 1; j < len(comps); j++ {
			dir := filepath.Join(l, filepath.Join(comps[:j]...))
			afi, err := os.Lstat(dir)
			if err != nil {
				present = false
				break
			}
			if isWhiteout(afi) || !afi.IsDir() {
				return 0, nil, false, fs.ErrNotExist
			}
			if isOpaque(dir) {
				stop = true
			}
		}
		if present {
			full := filepath.Join(l, filepath.Join(comps...))
			fi, err := os.Lstat(full)
			switch {
			case err == nil && isWhiteout(fi):
				return 0, nil, false, fs.ErrNotExist
			case err == nil:
				return i, fi, fi.IsDir() && isOpaque(full), nil
			case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
				return 0, nil, false, err
			}
		}
		if stop {
			break
		}
	}
	return 0, nil, false, fs.ErrNotExist
}

// isWhiteout reports whether fi is an overlayfs whiteout (a 0/0 character
// device).
func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaque reports whether dir carries overlayfs's opaque mark.
func isOpaque(dir string) bool {
	var buf [1]byte
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(dir, attr, buf[:]); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
