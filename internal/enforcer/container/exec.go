package container

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxDepth bounds the parent chain walked for one process.
const maxDepth = 4096

// ExecSession reports whether a process inside a container belongs to an
// exec session (docker exec, kubectl exec, crictl exec) rather than to the
// container's own process tree. The session's first process was started by
// the runtime from outside the container: its parent is outside the
// container (another cgroup or pid namespace) and it is not the container's
// init; its descendants inherit that. Without the runtime's word on the
// init pid (see (*Tracker).ExecSession), the init is pid 1 of the
// container's own pid namespace, or else — a pod sharing one pid namespace,
// or a container in the host's — the earliest started of the container's
// processes whose parent is outside it (exec sessions always start after
// the init).
//
// A process whose session parent exited is re-parented to the container's
// init (or a subreaper) and from then on counts as part of the container's
// own tree.
func ExecSession(pid int) (bool, error) { return execSession(pid, 0) }

// execSession is ExecSession with the container's init pid when known
// (0: find it).
func execSession(pid, initPID int) (bool, error) {
	lines, err := readProcCgroup(pid)
	if err != nil {
		return false, fmt.Errorf("process %d: %w", pid, err)
	}
	ref, ok := ContainerOf(lines)
	if !ok {
		return false, fmt.Errorf("process %d does not run in a container", pid)
	}
	p, err := ReadProcess(pid)
	if err != nil {
		return false, fmt.Errorf("process %d: %w", pid, err)
	}
	top, err := treeTop(p, ref.ID)
	if err != nil {
		return false, err
	}
	switch {
	case initPID > 0:
		return top.PID != initPID, nil
	case top.NSPID == 1:
		return false, nil
	}
	init, err := findInit(ref.ID)
	if err != nil {
		return false, fmt.Errorf("process %d: %w", pid, err)
	}
	return top.PID != init, nil
}

// treeTop walks up from p while the parent runs in the same container and
// pid namespace, and returns the topmost process.
func treeTop(p Process, id string) (Process, error) {
	for range maxDepth {
		inside, parent, err := parentInside(p, id)
		if err != nil {
			return Process{}, err
		}
		if !inside {
			return p, nil
		}
		p = parent
	}
	return Process{}, errors.New("process parent chain too deep")
}

// findInit returns the host pid of a container's init (see initOf).
func findInit(id string) (int, error) {
	procs, err := ScanProc()
	if err != nil {
		return 0, err
	}
	init := initOf(procs[id])
	if init == 0 {
		return 0, fmt.Errorf("container %s has no processes left", id[:12])
	}
	return init, nil
}

// initOf picks a container's init among its processes: the earliest
// started of those whose parent is outside the container (lowest pid on a
// tie); 0 when ps is empty.
func initOf(ps []CgroupProcess) int {
	inside := map[int]bool{}
	for _, p := range ps {
		inside[p.PID] = true
	}
	init, first := 0, uint64(0)
	for _, p := range ps {
		if inside[p.PPID] {
			continue
		}
		start, err := startTime(p.PID)
		if err != nil {
			continue
		}
		if init == 0 || start < first || start == first && p.PID < init {
			init, first = p.PID, start
		}
	}
	return init
}

// startTime returns when a process started, in clock ticks after boot.
func startTime(pid int) (uint64, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/stat"
	data, err := readLimited(name)
	if err != nil {
		return 0, err
	}
	t, err := parseStartTime(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// parseStartTime returns field 22 (starttime) of /proc/<pid>/stat; the
// command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func parseStartTime(data []byte) (uint64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("no command name in stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("stat has %d fields after the command name, want at least 20", len(f))
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad starttime %q in stat", f[19])
	}
	return t, nil
}

// parentInside reads p's parent and reports whether it runs in the same
// container and pid namespace as p.
func parentInside(p Process, id string) (bool, Process, error) {
	if p.PPID <= 0 {
		return false, Process{}, nil
	}
	lines, err := readProcCgroup(p.PPID)
	if err != nil {
		return false, Process{}, fmt.Errorf("parent %d of process %d: %w", p.PPID, p.PID, err)
	}
	if ref, ok := ContainerOf(lines); !ok || ref.ID != id {
		return false, Process{}, nil
	}
	parent, err := ReadProcess(p.PPID)
	if err != nil {
		return false, Process{}, fmt.Errorf("parent %d of process %d: %w", p.PPID, p.PID, err)
	}
	return parent.PIDNS == p.PIDNS, parent, nil
}
