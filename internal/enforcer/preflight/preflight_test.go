package preflight

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
)

// TestRunHost probes this host. It needs root; the mechanisms the runtime
// notes list as working here must be reported available.
func TestRunHost(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "preflight probes need root")
	}
	caps := Run(context.Background())
	got := map[string]bool{}
	for _, c := range caps {
		t.Logf("%-24s %-5v %s", c.Name, c.Available, c.Detail)
		if c.Detail == "" {
			t.Errorf("%s has no detail", c.Name)
		}
		got[c.Name] = c.Available
	}
	if len(got) != 13 {
		t.Errorf("got %d distinct capabilities, want 13", len(got))
	}
	for _, name := range []string{ExecEventsTPBTF, RingBuf, BPFSendSignal, PreExecFanotify, ProcConnector, PidsCgroup, Seccomp, NFTables} {
		if !got[name] {
			testenv.Missing(t, "%s unavailable on this host", name)
		}
	}
	if !got[CgroupV1] && !got[CgroupV2] {
		t.Error("neither cgroup v1 nor v2 reported")
	}
	for _, name := range []string{FEntry, KProbe} {
		if got[name] {
			t.Errorf("%s reported available; it must be unavailable by design", name)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range Run(ctx) {
		if c.Available || !strings.Contains(c.Detail, "not probed") {
			t.Errorf("%+v, want not probed", c)
		}
	}
}

func TestProbeLSM(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		ok      bool
	}{
		{"lockdown,capability,landlock,yama,apparmor,bpf", true},
		{"capability,bpf\n", true},
		{"capability,selinux", false},
		{"", false},
		{"bpfx,xbpf", false},
	}
	for i, tt := range tests {
		name := filepath.Join(dir, "lsm"+string(rune('a'+i)))
		if err := os.WriteFile(name, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		detail, err := probeLSM(name)
		if (err == nil) != tt.ok {
			t.Errorf("%q: detail %q err %v, want ok=%v", tt.content, detail, err, tt.ok)
		}
	}
	if _, err := probeLSM(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "securityfs") {
		t.Errorf("missing lsm file: err = %v", err)
	}
}

func TestParseLSMList(t *testing.T) {
	tests := map[string][]string{
		"capability,bpf\n": {"capability", "bpf"},
		"":                 nil,
		" a , ,b ":         {"a", "b"},
	}
	for in, want := range tests {
		if got := parseLSMList(in); !slices.Equal(got, want) {
			t.Errorf("parseLSMList(%q) = %q, want %q", in, got, want)
		}
	}
}

const hybridMounts = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,nosuid,nodev,noexec,relatime,pids 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
/dev/sda1 /mnt/with\040space ext4 rw 0 0
`

func TestParseMounts(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		v1, v2   bool
		pidsDir  string
		wantErr  string
		spaceDir bool
	}{
		{name: "hybrid", in: hybridMounts, v1: true, v2: true, pidsDir: "/sys/fs/cgroup/pids", spaceDir: true},
		{name: "v1 only", in: "cgroup /cg/pids cgroup rw,pids 0 0\n", v1: true, pidsDir: "/cg/pids"},
		{name: "v2 only", in: "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", v2: true},
		{name: "none", in: "proc /proc proc rw 0 0\n"},
		{name: "empty", in: ""},
		{name: "short line", in: "proc /proc\n", wantErr: "want at least 4 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := parseMounts("mounts", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "mounts:1") {
					t.Fatalf("err = %v, want %q with line", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err1 := cgroupV1(ms)
			_, err2 := cgroupV2(ms)
			if (err1 == nil) != tt.v1 || (err2 == nil) != tt.v2 {
				t.Errorf("v1 %v v2 %v, want %v %v", err1, err2, tt.v1, tt.v2)
			}
			if tt.pidsDir != "" {
				if dir, v := pidsCgroupDir(ms); dir != tt.pidsDir || v != "v1" {
					t.Errorf("pidsCgroupDir = %q %q, want %q v1", dir, v, tt.pidsDir)
				}
			}
			if tt.spaceDir && !slices.ContainsFunc(ms, func(m mount) bool { return m.dir == "/mnt/with space" }) {
				t.Errorf("escaped mount point not decoded: %+v", ms)
			}
		})
	}
}

func FuzzParseMounts(f *testing.F) {
	f.Add(hybridMounts)
	f.Add("proc /proc\n")
	f.Add(`a /x\0 t o 0 0`)
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMounts("fuzz", s)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.fstype == "" || len(m.options) == 0 {
				t.Fatalf("empty field in %+v", m)
			}
		}
	})
}

func TestParseProcAck(t *testing.T) {
	const seq = 77
	ack := func(what, seqv, errno uint32, idx uint32, size int) []byte {
		b := make([]byte, size)
		nativeEndian.PutUint32(b[0:], uint32(size))
		nativeEndian.PutUint32(b[16:], idx)
		nativeEndian.PutUint32(b[20:], cnValProc)
		nativeEndian.PutUint32(b[28:], seqv+1)
		nativeEndian.PutUint32(b[36:], what)
		nativeEndian.PutUint32(b[52:], errno)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		ack     bool
		errno   uint32
		wantErr bool
	}{
		{name: "ack", in: ack(0, seq, 0, cnIdxProc, 56), ack: true},
		{name: "ack with error", in: ack(0, seq, 1, cnIdxProc, 56), ack: true, errno: 1},
		{name: "exec event", in: ack(2, seq, 0, cnIdxProc, 56)},
		{name: "other seq", in: ack(0, seq+1, 0, cnIdxProc, 56)},
		{name: "other connector", in: ack(0, seq, 0, 9, 56)},
		{name: "short", in: make([]byte, 40), wantErr: true},
		{name: "length field too big", in: func() []byte { b := ack(0, seq, 0, cnIdxProc, 56); nativeEndian.PutUint32(b, 999); return b }(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, errno, err := parseProcAck(tt.in, seq)
			if (err != nil) != tt.wantErr || ok != tt.ack || errno != tt.errno {
				t.Errorf("= %v %d %v, want %v %d err=%v", ok, errno, err, tt.ack, tt.errno, tt.wantErr)
			}
		})
	}
	// The request we send parses as a connector message of our own.
	if b := procCnMessage(procCnMcastListen, seq); len(b) != nlmsgHdrLen+cnMsgLen+4 || nativeEndian.Uint32(b[36:]) != procCnMcastListen {
		t.Errorf("procCnMessage = %x", b)
	}
}

func FuzzParseProcAck(f *testing.F) {
	f.Add(make([]byte, 56), uint32(0))
	f.Add(procCnMessage(procCnMcastListen, 5), uint32(5))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		_, _, _ = parseProcAck(b, seq)
	})
}

func FuzzUnescapeOctal(f *testing.F) {
	for _, s := range []string{`/a\040b`, `\`, `\0`, `\12`, `\777x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeOctal(s); len(got) > len(s) {
			t.Fatalf("unescapeOctal(%q) = %q grew", s, got)
		}
	})
}
