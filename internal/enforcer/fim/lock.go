package fim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Bounds of Expand.
const (
	// MaxLocked is the most files Expand returns for one container.
	MaxLocked = 256
	// maxVisited bounds the directory entries Expand looks at.
	maxVisited = 200000
)

// Expand returns the regular files in the filesystem of the process pid
// (seen through /proc/<pid>/root) whose container path match accepts,
// sorted, at most MaxLocked of them. patterns are the globs behind match;
// only the directories named by their literal prefixes are searched. The
// second result counts the matching files left out beyond MaxLocked.
// Symbolic links are not followed.
func Expand(pid int, patterns []string, match func(string) bool) ([]string, int, error) {
	if pid <= 0 || match == nil {
		return nil, 0, fmt.Errorf("file integrity: expand globs: bad pid %d or nil match", pid)
	}
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	found := map[string]bool{}
	visited := 0
	for _, dir := range searchDirs(patterns) {
		err := filepath.WalkDir(root+dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable or vanished: skip
			}
			if visited++; visited > maxVisited {
				return fs.SkipAll
			}
			if !d.Type().IsRegular() {
				return nil
			}
			cp := strings.TrimPrefix(p, root)
			if match(cp) {
				found[cp] = true
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("file integrity: expand globs in %s of process %d: %w", dir, pid, err)
		}
	}
	files := make([]string, 0, len(found))
	for f := range found {
		files = append(files, f)
	}
	slices.Sort(files)
	if len(files) > MaxLocked {
		return files[:MaxLocked], len(files) - MaxLocked, nil
	}
	return files, 0, nil
}

// searchDirs returns the directories to search for the files matching
// patterns: each absolute pattern's directory part before its first glob
// metacharacter. A pattern without "/" matches a base name anywhere, so it
// searches "/". Nested directories are dropped.
func searchDirs(patterns []string) []string {
	var dirs []string
	for _, p := range patterns {
		d := "/"
		if strings.HasPrefix(p, "/") {
			lit := p
			if i := strings.IndexAny(p, "*?[{\\"); i >= 0 {
				lit = p[:i]
			}
			d = path.Clean(lit[:strings.LastIndex(lit, "/")+1])
		}
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var out []string
	for _, d := range slices.Compact(dirs) {
		if slices.ContainsFunc(out, func(o string) bool { return o == "/" || strings.HasPrefix(d, o+"/") }) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Lock makes each file in paths read-only inside the mount namespace of the
// process pid: it bind-mounts the file onto itself and remounts the bind
// read-only, so that a write fails with EROFS. It returns the paths it
// locked; on error the ones locked so far stay locked and are returned too,
// so the caller can Unlock them.
func Lock(pid int, paths []string) ([]string, error) {
	var locked []string
	err := inMountNS(pid, func() error {
		for _, p := range paths {
			if !path.IsAbs(p) {
				return fmt.Errorf("lock %q: not an absolute path", p)
			}
			if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("lock %s: bind mount: %w", p, err)
			}
			locked = append(locked, p)
			if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("lock %s: remount read-only: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return locked, fmt.Errorf("file integrity: process %d: %w", pid, err)
	}
	return locked, nil
}

// Unlock detaches the read-only bind mounts Lock put on paths inside the
// mount namespace of the process pid. A path that is no longer a mount
// point is skipped.
func Unlock(pid int, paths []string) error {
	err := inMountNS(pid, func() error {
		var errs []error
		for _, p := range paths {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unlock %s: %w", p, err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("file integrity: process %d: %w", pid, err)
	}
	return nil
}

// MountNS returns the inode number identifying the mount namespace of the
// process pid, so that a caller can check later that a pid still names the
// same container.
func MountNS(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/mnt", &st); err != nil {
		return 0, fmt.Errorf("file integrity: mount namespace of process %d: %w", pid, err)
	}
	return st.Ino, nil
}

// inMountNS runs f on a fresh OS thread that has joined the mount namespace
// of the process pid, which must not be the caller's own: Lock and Unlock
// act on containers, never on the host. The thread is never returned to
// the Go scheduler: it exits when f returns.
func inMountNS(pid int, f func() error) error {
	if pid <= 0 {
		return fmt.Errorf("enter mount namespace: bad pid %d", pid)
	}
	return inMountNSOf(pid, f, false)
}

func inMountNSOf(pid int, f func() error, allowOwn bool) error {
	if !allowOwn {
		own, err := MountNS(os.Getpid())
		if err != nil {
			return err
		}
		ns, err := MountNS(pid)
		if err != nil {
			return err
		}
		if ns == own {
			return fmt.Errorf("enter mount namespace: process %d shares this process's mount namespace (not a container)", pid)
		}
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never discarded (the runtime parks
			// it), and /proc/<pid>/ns names its namespace: keep it
			// locked here, unchanged, and enter the namespace on
			// another thread.
			defer runtime.UnlockOSThread()
			errc <- inMountNSOf(pid, f, true)
			return
		}
		// No UnlockOSThread: the goroutine ends locked, so the runtime
		// discards the thread with its namespace.
		errc <- func() error {
			ns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("enter mount namespace: %w", err)
			}
			defer unix.Close(ns)
			// Go threads share their filesystem attributes, and
			// setns refuses a mount namespace to a thread that does.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("enter mount namespace: unshare filesystem attributes: %w", err)
			}
			if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("enter mount namespace of process %d: %w", pid, err)
			}
			return f()
		}()
	}()
	return <-errc
}

// Available reports whether this host can run the file-integrity control:
// it opens a fanotify notification group and enters its own mount namespace
// the way Lock does. It returns nil when both work.
func Available() error {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("file integrity: fanotify notification group: %w", err)
	}
	_ = unix.Close(fd)
	if err := inMountNSOf(unix.Getpid(), func() error { return nil }, true); err != nil {
		return fmt.Errorf("file integrity: %w", err)
	}
	return nil
}
