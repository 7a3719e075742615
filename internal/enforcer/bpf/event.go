package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Sizes of the fixed-length fields of struct exec_event in c/exec.bpf.c.
const (
	commLen     = 16
	filenameLen = 256
	argsLen     = 256
	headerLen   = 8 + 8 + 8*4
	// eventSize is sizeof(struct exec_event).
	eventSize = headerLen + commLen + filenameLen + argsLen
)

// Event flags set by the BPF program.
const (
	flagKilled        = 1
	flagArgsTruncated = 2
)

// Event is one execve observed in a watched cgroup.
type Event struct {
	// KTime is the time since boot (CLOCK_MONOTONIC, bpf_ktime_get_ns)
	// at which the exec completed.
	KTime time.Duration
	// CgroupID is the watched id the task matched: its cgroup v1 pids id
	// or its cgroup v2 id (see CgroupIDs).
	CgroupID uint64
	// PID is the kernel task id (thread id) and TGID the process id as
	// user space sees it; PPID is the parent's process id.
	PID, TGID, PPID uint32
	// UID is the real user id after the exec.
	UID uint32
	// MntNS is the inode number of the task's mount namespace.
	MntNS uint32
	// Action is the action configured for the cgroup at exec time.
	Action Action
	// Killed reports that the program sent SIGKILL to the task.
	Killed bool
	// Comm is the task's command name after the exec (at most 15 bytes).
	Comm string
	// Filename is the path passed to execve (linux_binprm->filename).
	Filename string
	// Args holds the leading argument vector, read from the new process's
	// memory; it is empty when the memory could not be read.
	Args []string
	// ArgsTruncated reports that the argument vector was longer than the
	// bytes captured (256), so the last element may be cut.
	ArgsTruncated bool
}

// decodeEvent decodes one ring buffer record written by the BPF program.
func decodeEvent(b []byte) (Event, error) {
	if len(b) < eventSize {
		return Event{}, fmt.Errorf("decode exec event: record is %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	u32 := func(off int) uint32 { return le.Uint32(b[off:]) }
	e := Event{
		KTime:    time.Duration(le.Uint64(b[0:])),
		CgroupID: le.Uint64(b[8:]),
		PID:      u32(16),
		TGID:     u32(20),
		PPID:     u32(24),
		UID:      u32(28),
		MntNS:    u32(32),
		Action:   Action(u32(36)),
	}
	flags := u32(40)
	n := u32(44)
	if n > argsLen {
		return Event{}, fmt.Errorf("decode exec event: argument length %d exceeds %d", n, argsLen)
	}
	e.Killed = flags&flagKilled != 0
	e.ArgsTruncated = flags&flagArgsTruncated != 0
	off := headerLen
	e.Comm = cString(b[off : off+commLen])
	off += commLen
	e.Filename = cString(b[off : off+filenameLen])
	off += filenameLen
	e.Args = splitArgs(b[off : off+int(n)])
	return e, nil
}

// cString returns the bytes of b before the first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// splitArgs splits a NUL-separated argument block (as laid out between
// mm->arg_start and mm->arg_end) into its arguments.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}
