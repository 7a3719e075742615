package bpf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/mamorisec/mamori/internal/enforcer/procfs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxCgroupFile bounds how much of /proc/<pid>/cgroup is read.
const maxCgroupFile = 64 << 10

// cgroupEntry is one line of /proc/<pid>/cgroup:
// hierarchy-ID:controller-list:cgroup-path.
type cgroupEntry struct {
	hierarchy   int
	controllers []string
	path        string
}

// parseProcCgroup parses the contents of /proc/<pid>/cgroup. name names
// the input in errors.
func parseProcCgroup(name string, data []byte) ([]cgroupEntry, error) {
	var out []cgroupEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxCgroupFile)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		id, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want hierarchy:controllers:path, got %q", name, line, text)
		}
		ctrls, p, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want hierarchy:controllers:path, got %q", name, line, text)
		}
		h, err := strconv.Atoi(id)
		if err != nil || h < 0 {
			return nil, fmt.Errorf("%s:%d: hierarchy id %q is not a non-negative number", name, line, id)
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("%s:%d: cgroup path %q is not absolute", name, line, p)
		}
		e := cgroupEntry{hierarchy: h, path: path.Clean(p)}
		if ctrls != "" {
			e.controllers = strings.Split(ctrls, ",")
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// cgroupPaths returns the task's cgroup v1 "pids" path and its cgroup v2
// path; either is "" when the task has none.
func cgroupPaths(entries []cgroupEntry) (pidsV1, v2 string) {
	for _, e := range entries {
		switch {
		case e.hierarchy == 0 && len(e.controllers) == 0:
			v2 = e.path
		case slices.Contains(e.controllers, "pids"):
			pidsV1 = e.path
		}
	}
	return pidsV1, v2
}

// CgroupIDs returns the cgroup ids the exec monitor matches for the
// process pid: the id of its cgroup v1 "pids" hierarchy cgroup and the id
// of its cgroup v2 cgroup, each the inode number of the cgroup directory
// under /sys/fs/cgroup. Root cgroups are left out, since watching them
// would match every process on the host. It fails when pid has neither
// id, or its cgroup file cannot be read.
func CgroupIDs(pid int) ([]uint64, error) {
	return cgroupIDs("/proc", "/sys/fs/cgroup", pid)
}

func cgroupIDs(procRoot, cgroupRoot string, pid int) ([]uint64, error) {
	name := filepath.Join(procRoot, strconv.Itoa(pid), "cgroup")
	data, err := procfs.ReadFile(name, maxCgroupFile)
	if err != nil {
		return nil, fmt.Errorf("cgroup ids of pid %d: %w", pid, err)
	}
	entries, err := parseProcCgroup(name, data)
	if err != nil {
		return nil, fmt.Errorf("cgroup ids of pid %d: %w", pid, err)
	}
	pidsV1, v2 := cgroupPaths(entries)
	var ids []uint64
	var errs []error
	if pidsV1 != "" && pidsV1 != "/" {
		id, err := dirIno(filepath.Join(cgroupRoot, "pids", pidsV1), unix.CGROUP_SUPER_MAGIC)
		if err != nil {
			errs = append(errs, err)
		} else {
			ids = append(ids, id)
		}
	}
	if v2 != "" && v2 != "/" {
		id, err := v2Ino(cgroupRoot, v2)
		if err != nil {
			errs = append(errs, err)
		} else {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		if len(errs) == 0 {
			return nil, fmt.Errorf("cgroup ids of pid %d: %s lists no non-root pids (v1) or v2 cgroup", pid, name)
		}
		return nil, fmt.Errorf("cgroup ids of pid %d: %w", pid, errors.Join(errs...))
	}
	return ids, nil
}

// v2Ino finds the cgroup2 mount (root itself on a unified host, or
// root/unified on a hybrid host) and returns the inode of p in it.
func v2Ino(root, p string) (uint64, error) {
	var errs []error
	for _, mnt := range []string{filepath.Join(root, "unified"), root} {
		id, err := dirIno(filepath.Join(mnt, p), unix.CGROUP2_SUPER_MAGIC)
		if err == nil {
			return id, nil
		}
		errs = append(errs, err)
	}
	return 0, errors.Join(errs...)
}

// dirIno returns the inode number of dir, checking that it lies on a file
// system with the given magic (cgroup or cgroup2).
func dirIno(dir string, magic int64) (uint64, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	if int64(sfs.Type) != magic {
		return 0, fmt.Errorf("%s: file system type %#x is not %#x", dir, sfs.Type, magic)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", dir, err)
	}
	return st.Ino, nil
}
