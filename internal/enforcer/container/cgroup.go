package container

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/mamorisec/mamori/internal/inventory"
)

// maxProcFile bounds what is read from one /proc file.
const maxProcFile = 256 << 10

// CgroupLine is one line of /proc/<pid>/cgroup.
type CgroupLine struct {
	// Hierarchy is the hierarchy id; 0 is the cgroup2 (unified) hierarchy.
	Hierarchy int
	// Controllers are the v1 controllers of the hierarchy ("pids",
	// "name=systemd"); none for cgroup2.
	Controllers []string
	// Path is the cgroup's path inside the hierarchy.
	Path string
}

// ParseProcCgroup parses the contents of /proc/<pid>/cgroup.
func ParseProcCgroup(data []byte) ([]CgroupLine, error) {
	var lines []CgroupLine
	for n, raw := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		hier, rest, ok1 := strings.Cut(string(raw), ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("cgroup line %d %q: want hierarchy:controllers:path", n+1, raw)
		}
		h, err := strconv.Atoi(hier)
		if err != nil || h < 0 {
			return nil, fmt.Errorf("cgroup line %d %q: bad hierarchy id %q", n+1, raw, hier)
		}
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("cgroup line %d %q: path %q is not absolute", n+1, raw, path)
		}
		l := CgroupLine{Hierarchy: h, Path: path}
		if ctrls != "" {
			l.Controllers = strings.Split(ctrls, ",")
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// CgroupRef is what a cgroup path says about the container it belongs to.
type CgroupRef struct {
	// ID is the runtime's full container id.
	ID string
	// Runtime is "docker", "containerd", "cri-o", "podman" or "cri" (a
	// kubelet cgroupfs path that does not name the runtime); "" when the
	// path names only the id.
	Runtime string
	// PodUID is the Kubernetes pod uid of a kubepods path.
	PodUID string
}

// ParseCgroupPath maps a cgroup path (v1 or v2, cgroupfs or systemd driver)
// to the container it belongs to; ok is false for a path outside any
// container. Nested containers resolve to the innermost one.
func ParseCgroupPath(path string) (ref CgroupRef, ok bool) {
	parts := strings.Split(path, "/")
	kube := false
	for _, p := range parts {
		if strings.HasPrefix(p, "kubepods") {
			kube = true
			break
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := strings.TrimSuffix(parts[i], ".scope")
		var id, rt string
		switch {
		case strings.HasPrefix(p, "crio-conmon-"):
			continue // cri-o's monitor process, not the container
		case strings.HasPrefix(p, "docker-"):
			id, rt = strings.TrimPrefix(p, "docker-"), "docker"
		case strings.HasPrefix(p, "cri-containerd-"):
			id, rt = strings.TrimPrefix(p, "cri-containerd-"), "containerd"
		case strings.HasPrefix(p, "crio-"):
			id, rt = strings.TrimPrefix(p, "crio-"), "cri-o"
		case strings.HasPrefix(p, "libpod-"):
			id, rt = strings.TrimPrefix(p, "libpod-"), "podman"
		case isContainerID(p):
			id = p
			switch {
			case i > 0 && parts[i-1] == "docker":
				rt = "docker"
			case kube:
				rt = "cri"
			}
		}
		if !isContainerID(id) {
			continue
		}
		ref = CgroupRef{ID: id, Runtime: rt}
		if kube {
			ref.PodUID = podUID(parts[:i])
		}
		return ref, true
	}
	return CgroupRef{}, false
}

// podUID finds the pod uid in the kubepods components before a container's
// own: "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid_with_underscores>.slice".
func podUID(parts []string) string {
	for i := len(parts) - 1; i >= 0; i-- {
		p := strings.TrimSuffix(parts[i], ".slice")
		if j := strings.LastIndex(p, "pod"); j >= 0 && (j == 0 || p[j-1] == '-') {
			uid := strings.ReplaceAll(p[j+3:], "_", "-")
			if len(uid) >= 8 && strings.Trim(uid, "0123456789abcdef-") == "" {
				return uid
			}
		}
	}
	return ""
}

// isContainerID reports whether s is a full 64-digit lowercase hex id.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ContainerOf returns the container a process's cgroup lines place it in.
func ContainerOf(lines []CgroupLine) (CgroupRef, bool) {
	for _, l := range lines {
		if ref, ok := ParseCgroupPath(l.Path); ok {
			return ref, true
		}
	}
	return CgroupRef{}, false
}

// readProcCgroup reads and parses /proc/<pid>/cgroup.
func readProcCgroup(pid int) ([]CgroupLine, error) {
	name := fmt.Sprintf("/proc/%d/cgroup", pid)
	data, err := readLimited(name)
	if err != nil {
		return nil, err
	}
	lines, err := ParseProcCgroup(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lines, nil
}

// readLimited reads a /proc or /sys file up to maxProcFile bytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxProcFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// cgroupMounts are where the v1 pids hierarchy and cgroup2 are mounted.
type cgroupMounts struct {
	pids, unified string
}

var (
	mountsOnce sync.Once
	mounts     cgroupMounts
	mountsErr  error
)

// findCgroupMounts reads the cgroup mount points from
// /proc/self/mountinfo (once).
func findCgroupMounts() (cgroupMounts, error) {
	mountsOnce.Do(func() {
		data, err := readLimited("/proc/self/mountinfo")
		if err != nil {
			mountsErr = err
			return
		}
		mounts = parseCgroupMounts(data)
	})
	return mounts, mountsErr
}

// parseCgroupMounts finds the pids (v1) and cgroup2 mount points in a
// mountinfo file.
func parseCgroupMounts(data []byte) cgroupMounts {
	var m cgroupMounts
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxProcFile)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || f[3] != "/" {
			continue
		}
		switch g[0] {
		case "cgroup2":
			if m.unified == "" {
				m.unified = f[4]
			}
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				if o == "pids" && m.pids == "" {
					m.pids = f[4]
				}
			}
		}
	}
	return m
}

// CgroupIDs returns the cgroup ids of a process: the inode of its cgroup
// directory in the v1 pids hierarchy (when mounted), then the inode of its
// cgroup2 directory (when mounted) — the ids an eBPF program reads from
// the task's css_set (pids subsystem) and with bpf_get_current_cgroup_id.
func CgroupIDs(pid int) ([]uint64, error) {
	lines, err := readProcCgroup(pid)
	if err != nil {
		return nil, err
	}
	m, err := findCgroupMounts()
	if err != nil {
		return nil, err
	}
	return cgroupIDs(lines, m)
}

// cgroupIDs stats the pids and cgroup2 directories of lines under m.
func cgroupIDs(lines []CgroupLine, m cgroupMounts) ([]uint64, error) {
	var v1, v2 string
	for _, l := range lines {
		if l.Hierarchy == 0 && len(l.Controllers) == 0 && m.unified != "" {
			v2 = filepath.Join(m.unified, l.Path)
		}
		for _, c := range l.Controllers {
			if c == "pids" && m.pids != "" {
				v1 = filepath.Join(m.pids, l.Path)
			}
		}
	}
	var ids []uint64
	for _, dir := range []string{v1, v2} {
		if dir == "" {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			if os.IsNotExist(err) {
				continue // the process left that cgroup, or it was removed
			}
			return nil, fmt.Errorf("cgroup directory %s: %w", dir, err)
		}
		ids = append(ids, st.Ino)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no pids or cgroup2 cgroup directory found for the process (cgroup lines %v)", lines)
	}
	return ids, nil
}
