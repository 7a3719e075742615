// Package limits guards containers against fork bombs with the cgroup pids
// controller: it finds the pids cgroup of a container's process, sets or
// clears its pids.max while the container runs, and reads pids.current and
// the number of times the limit was hit (pids.events) for detection.
//
// Both cgroup v1 (a "pids" hierarchy, e.g. /sys/fs/cgroup/pids/docker/<id>)
// and the cgroup v2 unified hierarchy are supported; a v1 pids hierarchy
// is preferred when the process has one, since the controller is then not
// available in v2.
package limits

import (
	"errors"
	"fmt"
	"github.com/mamorisec/mamori/internal/enforcer/procfs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// maxFileSize bounds what is read from /proc and cgroup files.
const maxFileSize = 1 << 20

// Group is the pids cgroup of a container.
type Group struct {
	// Dir is the cgroup directory holding pids.max.
	Dir string
	// Version is 1 or 2.
	Version int
}

// procRoot is where /proc is mounted; tests do not change it.
const procRoot = "/proc"

// Find returns the pids cgroup of the process pid (any process of the
// container, such as docker inspect's .State.Pid).
func Find(pid int) (Group, error) {
	if pid <= 0 {
		return Group{}, fmt.Errorf("pids cgroup of process %d: invalid pid", pid)
	}
	cg, err := readSmall(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return Group{}, fmt.Errorf("pids cgroup of process %d: %w", pid, err)
	}
	mi, err := readSmall(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return Group{}, fmt.Errorf("pids cgroup of process %d: %w", pid, err)
	}
	v1Path, v2Path, err := parseProcCgroup(cg)
	if err != nil {
		return Group{}, fmt.Errorf("pids cgroup of process %d: /proc/%d/cgroup: %w", pid, pid, err)
	}
	v1Mount, v2Mount := parseMountinfo(mi)
	if v1Path != "" && v1Mount != "" {
		return Group{Dir: filepath.Join(v1Mount, v1Path), Version: 1}, nil
	}
	if v2Path != "" && v2Mount != "" {
		dir := filepath.Join(v2Mount, v2Path)
		if _, err := os.Stat(filepath.Join(dir, "pids.max")); err == nil {
			return Group{Dir: dir, Version: 2}, nil
		}
		return Group{}, fmt.Errorf("pids cgroup of process %d: %s has no pids.max (pids controller not enabled for it)", pid, dir)
	}
	return Group{}, fmt.Errorf("pids cgroup of process %d: no pids controller mounted", pid)
}

// SetMax limits the cgroup to n processes (tasks). Existing processes are
// kept; forks beyond the limit fail with EAGAIN.
func (g Group) SetMax(n int64) error {
	if n <= 0 {
		return fmt.Errorf("set pids.max of %s: limit %d must be positive", g.Dir, n)
	}
	return g.write("pids.max", strconv.FormatInt(n, 10))
}

// ClearMax removes the limit (pids.max "max").
func (g Group) ClearMax() error { return g.write("pids.max", "max") }

// Max returns the limit, or -1 when there is none.
func (g Group) Max() (int64, error) {
	s, err := g.read("pids.max")
	if err != nil {
		return 0, err
	}
	n, err := parseMax(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(g.Dir, "pids.max"), err)
	}
	return n, nil
}

// Current returns the number of processes (tasks) in the cgroup.
func (g Group) Current() (int64, error) {
	s, err := g.read("pids.current")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a count", filepath.Join(g.Dir, "pids.current"), strings.TrimSpace(s))
	}
	return n, nil
}

// MaxHits returns how many forks the limit refused so far (the "max"
// counter of pids.events). A rise between two reads is a fork-bomb
// detection event.
func (g Group) MaxHits() (int64, error) {
	s, err := g.read("pids.events")
	if err != nil {
		return 0, err
	}
	n, err := parseEvents(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(g.Dir, "pids.events"), err)
	}
	return n, nil
}

func (g Group) read(name string) (string, error) {
	if g.Dir == "" {
		return "", errors.New("pids cgroup: empty directory")
	}
	b, err := readSmall(filepath.Join(g.Dir, name))
	return string(b), err
}

func (g Group) write(name, value string) error {
	if g.Dir == "" {
		return errors.New("pids cgroup: empty directory")
	}
	p := filepath.Join(g.Dir, name)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// readSmall reads a /proc or cgroup file, bounded in size.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, maxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// parseProcCgroup parses /proc/<pid>/cgroup ("id:controllers:path" lines)
// and returns the path in the v1 hierarchy holding the pids controller and
// the path in the v2 unified hierarchy ("0::path"); either may be empty.
func parseProcCgroup(b []byte) (v1Path, v2Path string, err error) {
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("line %d: %q is not id:controllers:/path", i+1, line)
		}
		if id == "0" && ctrls == "" {
			v2Path = path
			continue
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "pids" {
				v1Path = path
			}
		}
	}
	return v1Path, v2Path, nil
}

// parseMountinfo returns the mount points of the cgroup v1 hierarchy with
// the pids controller and of the cgroup2 hierarchy found in
// /proc/self/mountinfo; either may be empty. Malformed lines are skipped.
func parseMountinfo(b []byte) (v1Pids, v2 string) {
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mnt := procfs.UnescapeMountinfo(f[4])
		switch g[0] {
		case "cgroup2":
			if v2 == "" {
				v2 = mnt
			}
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				if o == "pids" && v1Pids == "" {
					v1Pids = mnt
				}
			}
		}
	}
	return v1Pids, v2
}

// parseMax parses pids.max: "max" (no limit, -1) or a count.
func parseMax(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither \"max\" nor a count", s)
	}
	return n, nil
}

// parseEvents returns the "max" counter of pids.events ("key value"
// lines; v2 may add "max.imposed").
func parseEvents(s string) (int64, error) {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || k != "max" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("max counter %q is not a count", v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no max counter in %q", s)
}
