package container

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Process is one process of a container.
type Process struct {
	PID  int
	PPID int
	// Exe is the executable's path as the host sees it inside the
	// container's mount namespace ("" when it cannot be read).
	Exe  string
	Args []string
	UID  int
	// NSPID is the process's pid in the innermost pid namespace (1 for a
	// container's init).
	NSPID int
	// PIDNS is the inode of the process's pid namespace.
	PIDNS uint64
}

// procStatus is what ReadProcess needs from /proc/<pid>/status.
type procStatus struct {
	ppid, uid, nspid int
}

// parseStatus parses /proc/<pid>/status.
func parseStatus(data []byte) (procStatus, error) {
	st := procStatus{ppid: -1, uid: -1}
	for _, line := range bytes.Split(data, []byte("\n")) {
		key, val, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		var err error
		switch key {
		case "PPid":
			st.ppid, err = strconv.Atoi(f[0])
		case "Uid":
			st.uid, err = strconv.Atoi(f[0]) // the real uid
		case "NSpid":
			st.nspid, err = strconv.Atoi(f[len(f)-1])
		}
		if err != nil {
			return st, fmt.Errorf("status field %s: %q is not a number", key, val)
		}
	}
	if st.ppid < 0 || st.uid < 0 {
		return st, fmt.Errorf("status lacks PPid or Uid")
	}
	return st, nil
}

// ReadProcess reads a process's identity from /proc.
func ReadProcess(pid int) (Process, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	data, err := readLimited(dir + "/status")
	if err != nil {
		return Process{}, err
	}
	st, err := parseStatus(data)
	if err != nil {
		return Process{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	p := Process{PID: pid, PPID: st.ppid, UID: st.uid, NSPID: st.nspid}
	if p.NSPID == 0 {
		p.NSPID = pid
	}
	p.Exe, _ = os.Readlink(dir + "/exe") // kernel threads and zombies have none
	if cmd, err := readLimited(dir + "/cmdline"); err == nil && len(cmd) > 0 {
		p.Args = strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00")
	}
	p.PIDNS, err = nsInode(dir + "/ns/pid")
	if err != nil {
		return Process{}, err
	}
	return p, nil
}

// nsInode returns the inode of a namespace link such as /proc/1/ns/pid.
func nsInode(link string) (uint64, error) {
	s, err := os.Readlink(link)
	if err != nil {
		return 0, err
	}
	// "pid:[4026531836]"
	_, rest, ok := strings.Cut(s, ":[")
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("%s: unexpected namespace link %q", link, s)
	}
	return n, nil
}

// listPIDs returns the pids in /proc.
func listPIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ScanProc maps every process in /proc that runs in a container to its
// container (by its cgroup path). Processes that exit during the scan are
// skipped.
func ScanProc() (map[string][]CgroupProcess, error) {
	pids, err := listPIDs()
	if err != nil {
		return nil, fmt.Errorf("listing /proc: %w", err)
	}
	out := map[string][]CgroupProcess{}
	for _, pid := range pids {
		lines, err := readProcCgroup(pid)
		if err != nil {
			continue
		}
		ref, ok := ContainerOf(lines)
		if !ok {
			continue
		}
		p, err := ReadProcess(pid)
		if err != nil {
			continue
		}
		out[ref.ID] = append(out[ref.ID], CgroupProcess{Process: p, Ref: ref, Cgroups: lines})
	}
	return out, nil
}

// CgroupProcess is a process found in a container's cgroup.
type CgroupProcess struct {
	Process
	Ref     CgroupRef
	Cgroups []CgroupLine
}
