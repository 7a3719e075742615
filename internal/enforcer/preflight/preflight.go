// Package preflight probes, for real, which runtime-protection mechanisms
// the host kernel allows, so that `mamori enforcer` can report its
// capabilities to the server (fleet.Capability) and pick its mechanisms.
//
// Each probe exercises the feature briefly and undoes what it did: it
// loads and attaches a do-nothing tp_btf program, creates a ring buffer
// map, places a fanotify exec-permission mark on an empty temporary
// directory, subscribes to the proc connector, creates a pids cgroup, and
// so on. Mechanisms mamori deliberately does not use (fentry, kprobes)
// are reported unavailable without being touched, and BPF-LSM is only
// read from /sys/kernel/security/lsm, never loaded.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"github.com/mamorisec/mamori/internal/enforcer/procfs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/mamorisec/mamori/internal/fleet"
)

// Capability names reported by Run.
const (
	ExecEventsTPBTF  = "exec-events.tp_btf"
	RingBuf          = "ringbuf"
	BPFSendSignal    = "signal.bpf_send_signal"
	PreExecFanotify  = "pre-exec-deny.fanotify"
	ProcConnector    = "proc-connector"
	PidsCgroup       = "pids-cgroup"
	Seccomp          = "seccomp"
	NFTables         = "nftables"
	CgroupV1         = "cgroup-v1"
	CgroupV2         = "cgroup-v2"
	LSMBPF           = "lsm.bpf"
	FEntry           = "fentry"
	KProbe           = "kprobe"
	notUsedByDesign  = "not probed: mamori does not use %s (it relies on tracepoints, fanotify, signals and cgroups), so it is never loaded"
	defaultCgroupDir = "/sys/fs/cgroup"
)

// host names the files a run reads; tests point them at fixtures.
type host struct {
	mounts  string // /proc/self/mounts
	lsm     string // /sys/kernel/security/lsm
	tempDir string // where the fanotify probe makes its directory
}

var defaultHost = host{mounts: "/proc/self/mounts", lsm: "/sys/kernel/security/lsm", tempDir: os.TempDir()}

// Run probes every capability and returns them in a fixed order. A probe
// that fails reports Available false with the reason in Detail; Run
// itself never fails. When ctx is done the remaining probes report the
// context's error.
func Run(ctx context.Context) []fleet.Capability {
	return defaultHost.run(ctx)
}

func (h host) run(ctx context.Context) []fleet.Capability {
	mounts, mountsErr := readMounts(h.mounts)
	probes := []struct {
		name  string
		probe func() (string, error)
	}{
		{ExecEventsTPBTF, probeTPBTF},
		{RingBuf, probeRingBuf},
		{BPFSendSignal, probeSendSignal},
		{PreExecFanotify, func() (string, error) { return probeFanotify(h.tempDir) }},
		{ProcConnector, probeProcConnector},
		{PidsCgroup, func() (string, error) {
			if mountsErr != nil {
				return "", mountsErr
			}
			return probePidsCgroup(mounts)
		}},
		{Seccomp, probeSeccomp},
		{NFTables, probeNFTables},
		{CgroupV1, func() (string, error) {
			if mountsErr != nil {
				return "", mountsErr
			}
			return cgroupV1(mounts)
		}},
		{CgroupV2, func() (string, error) {
			if mountsErr != nil {
				return "", mountsErr
			}
			return cgroupV2(mounts)
		}},
		{LSMBPF, func() (string, error) { return probeLSM(h.lsm) }},
		{FEntry, func() (string, error) { return "", fmt.Errorf(notUsedByDesign, "fentry/fexit programs") }},
		{KProbe, func() (string, error) { return "", fmt.Errorf(notUsedByDesign, "kprobes") }},
	}
	caps := make([]fleet.Capability, 0, len(probes))
	for _, p := range probes {
		c := fleet.Capability{Name: p.name}
		if err := ctx.Err(); err != nil {
			c.Detail = "not probed: " + err.Error()
		} else if detail, err := p.probe(); err != nil {
			c.Detail = err.Error()
		} else {
			c.Available, c.Detail = true, detail
		}
		caps = append(caps, c)
	}
	return caps
}

// probeTPBTF loads a do-nothing tp_btf program for sched_process_exec,
// attaches it, and closes it.
func probeTPBTF() (string, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "sched_process_exec",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return "", fmt.Errorf("load tp_btf/sched_process_exec: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return "", fmt.Errorf("attach tp_btf/sched_process_exec: %w", err)
	}
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("detach tp_btf/sched_process_exec: %w", err)
	}
	return "loaded, attached and detached a tp_btf/sched_process_exec program", nil
}

func probeRingBuf() (string, error) {
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return "", fmt.Errorf("BPF ring buffer map: %w", err)
	}
	return "created a BPF_MAP_TYPE_RINGBUF map", nil
}

func probeSendSignal() (string, error) {
	if err := features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnSendSignal); err != nil {
		return "", fmt.Errorf("bpf_send_signal helper in raw tracepoint programs: %w", err)
	}
	return "verifier accepts bpf_send_signal in tracepoint programs", nil
}

// probeFanotify creates a FAN_CLASS_CONTENT group and marks an empty
// temporary directory (not a whole mount, so no other exec on the host
// ever waits for this probe) for FAN_OPEN_EXEC_PERM.
func probeFanotify(tempDir string) (string, error) {
	dir, err := os.MkdirTemp(tempDir, "mamori-preflight-")
	if err != nil {
		return "", fmt.Errorf("fanotify probe directory: %w", err)
	}
	defer os.Remove(dir)
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("fanotify_init(FAN_CLASS_CONTENT): %w", err)
	}
	defer unix.Close(fd)
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN_EXEC_PERM|unix.FAN_EVENT_ON_CHILD, unix.AT_FDCWD, dir); err != nil {
		return "", fmt.Errorf("fanotify_mark(FAN_OPEN_EXEC_PERM) on %s: %w", dir, err)
	}
	return "fanotify_init(FAN_CLASS_CONTENT) and a FAN_OPEN_EXEC_PERM mark succeeded", nil
}

// Proc connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2
	nlmsgHdrLen       = 16
	cnMsgLen          = 20
)

// probeProcConnector subscribes to process events on the netlink proc
// connector, waits for the kernel's acknowledgement, and unsubscribes.
func probeProcConnector() (string, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return "", fmt.Errorf("netlink connector socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: 0}); err != nil {
		return "", fmt.Errorf("bind netlink connector to the proc group: %w", err)
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return "", fmt.Errorf("netlink connector receive timeout: %w", err)
	}
	const seq = 0x6d616d6f
	if err := unix.Sendto(fd, procCnMessage(procCnMcastListen, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "", fmt.Errorf("send PROC_CN_MCAST_LISTEN: %w", err)
	}
	defer unix.Sendto(fd, procCnMessage(procCnMcastIgnore, seq+1), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	buf := make([]byte, 4096)
	for range 64 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return "", fmt.Errorf("wait for the proc connector's acknowledgement: %w", err)
		}
		ack, errno, err := parseProcAck(buf[:n], seq)
		if err != nil {
			return "", err
		}
		if !ack {
			continue
		}
		if errno != 0 {
			return "", fmt.Errorf("proc connector refused PROC_CN_MCAST_LISTEN: %w", unix.Errno(errno))
		}
		return "subscribed to netlink proc connector events (acknowledged) and unsubscribed", nil
	}
	return "", errors.New("proc connector sent no acknowledgement within 64 messages")
}

// procCnMessage builds a netlink message carrying a proc connector
// multicast control operation.
func procCnMessage(op, seq uint32) []byte {
	b := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne := nativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_DONE)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], uint32(os.Getpid()))
	ne.PutUint32(b[16:], cnIdxProc)
	ne.PutUint32(b[20:], cnValProc)
	ne.PutUint32(b[24:], seq) // cn_msg.seq
	ne.PutUint32(b[28:], seq) // cn_msg.ack; the kernel acknowledges with ack+1
	ne.PutUint16(b[32:], 4)
	ne.PutUint32(b[36:], op)
	return b
}

// parseProcAck reads one netlink message from the proc connector. It
// reports whether it is the acknowledgement (a PROC_EVENT_NONE event whose
// cn_msg.ack is one more than the request's, seq) and the errno it carries.
func parseProcAck(b []byte, seq uint32) (ack bool, errno uint32, err error) {
	// nlmsghdr, cn_msg, then proc_event: what u32, cpu u32, timestamp u64,
	// ack.err u32.
	const whatOff = nlmsgHdrLen + cnMsgLen
	if len(b) < whatOff+20 {
		return false, 0, fmt.Errorf("proc connector message is %d bytes, want at least %d", len(b), whatOff+20)
	}
	ne := nativeEndian
	if n := ne.Uint32(b[0:]); n < whatOff+20 || int(n) > len(b) {
		return false, 0, fmt.Errorf("proc connector message length field %d does not fit the %d bytes read", n, len(b))
	}
	if ne.Uint32(b[16:]) != cnIdxProc || ne.Uint32(b[20:]) != cnValProc {
		return false, 0, nil
	}
	const procEventNone = 0
	if ne.Uint32(b[whatOff:]) != procEventNone || ne.Uint32(b[28:]) != seq+1 {
		return false, 0, nil
	}
	return true, ne.Uint32(b[whatOff+16:]), nil
}

// probeSeccomp asks the kernel whether seccomp filters with
// SECCOMP_RET_KILL_PROCESS are available, without installing one.
func probeSeccomp() (string, error) {
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	if err != nil {
		return "", fmt.Errorf("prctl(PR_GET_SECCOMP): %w", err)
	}
	const seccompGetActionAvail = 2
	action := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, seccompGetActionAvail, 0, uintptr(unsafe.Pointer(&action))); e != 0 {
		return "", fmt.Errorf("seccomp(SECCOMP_GET_ACTION_AVAIL, KILL_PROCESS): %w", e)
	}
	return fmt.Sprintf("seccomp filters with SECCOMP_RET_KILL_PROCESS available (own mode %d)", mode), nil
}

// probeNFTables lists the nftables tables of the current network
// namespace over netlink, read-only.
func probeNFTables() (string, error) {
	c, err := nftables.New()
	if err != nil {
		return "", fmt.Errorf("nftables netlink connection: %w", err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		return "", fmt.Errorf("nftables list tables: %w", err)
	}
	return fmt.Sprintf("nftables netlink answered (%d tables in this network namespace)", len(tables)), nil
}

// probeLSM reports whether "bpf" is among the active LSMs. It only reads
// the list; no LSM program is ever loaded.
func probeLSM(name string) (string, error) {
	b, err := procfs.ReadFile(name, 4096)
	if err != nil {
		return "", fmt.Errorf("active LSM list unknown (securityfs not mounted?): %w", err)
	}
	lsms := parseLSMList(string(b))
	if !slices.Contains(lsms, "bpf") {
		return "", fmt.Errorf("%s lists %q, without bpf", name, strings.Join(lsms, ","))
	}
	return fmt.Sprintf("%s lists bpf (read only; mamori loads no LSM program)", name), nil
}

// parseLSMList splits the comma-separated contents of
// /sys/kernel/security/lsm.
func parseLSMList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// pidsCgroupDir returns the directory in which the pids probe creates its
// cgroup, or "" if there is no pids controller.
func pidsCgroupDir(ms []mount) (dir, version string) {
	for _, m := range ms {
		if m.fstype == "cgroup" && slices.Contains(m.options, "pids") {
			return m.dir, "v1"
		}
	}
	for _, m := range ms {
		if m.fstype != "cgroup2" {
			continue
		}
		b, err := procfs.ReadFile(filepath.Join(m.dir, "cgroup.subtree_control"), 4096)
		if err == nil && slices.Contains(strings.Fields(string(b)), "pids") {
			return m.dir, "v2"
		}
	}
	return "", ""
}

// probePidsCgroup creates a child cgroup of the pids controller, sets its
// pids.max, and removes it.
func probePidsCgroup(ms []mount) (string, error) {
	parent, version := pidsCgroupDir(ms)
	if parent == "" {
		return "", errors.New("no cgroup v1 pids hierarchy and no cgroup v2 root with the pids controller enabled")
	}
	dir, err := os.MkdirTemp(parent, "mamori-preflight-")
	if err != nil {
		return "", fmt.Errorf("create pids cgroup under %s: %w", parent, err)
	}
	defer os.Remove(dir)
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte("16"), 0o644); err != nil {
		return "", fmt.Errorf("set pids.max in %s: %w", dir, err)
	}
	return fmt.Sprintf("created a %s pids cgroup under %s and set pids.max", version, parent), nil
}

func cgroupV1(ms []mount) (string, error) {
	var ctrls []string
	for _, m := range ms {
		if m.fstype == "cgroup" {
			ctrls = append(ctrls, filepath.Base(m.dir))
		}
	}
	if len(ctrls) == 0 {
		return "", errors.New("no cgroup v1 hierarchy mounted")
	}
	return "cgroup v1 hierarchies mounted: " + strings.Join(ctrls, ","), nil
}

func cgroupV2(ms []mount) (string, error) {
	for _, m := range ms {
		if m.fstype == "cgroup2" {
			return "cgroup2 mounted at " + m.dir, nil
		}
	}
	return "", errors.New("no cgroup2 file system mounted")
}
