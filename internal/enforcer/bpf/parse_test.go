package bpf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

const hybridCgroup = `9:name=systemd:/docker/abc
8:pids:/docker/abc
4:memory:/docker/abc
1:cpu,cpuacct:/docker/abc
0::/docker/abc
`

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		pids, v2   string
		wantErrSub string
	}{
		{name: "hybrid docker", in: hybridCgroup, pids: "/docker/abc", v2: "/docker/abc"},
		{name: "v1 only", in: "3:pids:/a/b\n2:memory:/a/b\n", pids: "/a/b"},
		{name: "v2 only", in: "0::/system.slice/docker-1.scope\n", v2: "/system.slice/docker-1.scope"},
		{name: "combined controllers", in: "5:cpu,pids:/x/../y\n", pids: "/y"},
		{name: "root", in: "8:pids:/\n0::/\n", pids: "/", v2: "/"},
		{name: "empty", in: ""},
		{name: "path with colon", in: "0::/a:b\n", v2: "/a:b"},
		{name: "no fields", in: "garbage\n", wantErrSub: "want hierarchy:controllers:path"},
		{name: "two fields", in: "1:pids\n", wantErrSub: "want hierarchy:controllers:path"},
		{name: "bad hierarchy", in: "x:pids:/a\n", wantErrSub: "hierarchy id"},
		{name: "negative hierarchy", in: "-1:pids:/a\n", wantErrSub: "hierarchy id"},
		{name: "relative path", in: "1:pids:a\n", wantErrSub: "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := parseProcCgroup("/proc/1/cgroup", []byte(tt.in))
			if tt.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) || !strings.Contains(err.Error(), "/proc/1/cgroup") {
					t.Fatalf("err = %v, want one naming the file and %q", err, tt.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pids, v2 := cgroupPaths(entries)
			if pids != tt.pids || v2 != tt.v2 {
				t.Errorf("paths = %q, %q; want %q, %q", pids, v2, tt.pids, tt.v2)
			}
		})
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{hybridCgroup, "0::/\n", "1:pids\n", "x:y:z", "3:pids:/a/../../b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseProcCgroup("fuzz", data)
		if err != nil {
			return
		}
		pids, v2 := cgroupPaths(entries)
		for _, p := range []string{pids, v2} {
			if p != "" && !strings.HasPrefix(p, "/") {
				t.Fatalf("path %q is not absolute", p)
			}
		}
	})
}

func TestCgroupIDsErrors(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, content string) {
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "8:pids:/\n0::/\n")
	write("2", "8:pids:/nope\n")
	write("3", "bad\n")
	tests := []struct {
		pid     int
		wantSub string
	}{
		{1, "no non-root"},
		{2, "statfs"},
		{3, "want hierarchy"},
		{4, "no such file"},
	}
	for _, tt := range tests {
		_, err := cgroupIDs(proc, t.TempDir(), tt.pid)
		if err == nil || !strings.Contains(err.Error(), tt.wantSub) {
			t.Errorf("pid %d: err = %v, want %q", tt.pid, err, tt.wantSub)
		}
	}
}

func TestCgroupIDsSelf(t *testing.T) {
	// The test process itself: its ids, if any, are inodes of real cgroup
	// directories; a host process in root cgroups has none.
	ids, err := CgroupIDs(os.Getpid())
	if err != nil && !strings.Contains(err.Error(), "no non-root") {
		if _, serr := os.Stat("/sys/fs/cgroup"); serr != nil {
			testenv.Missing(t, "no /sys/fs/cgroup: %v", serr)
		}
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == 0 {
			t.Errorf("zero cgroup id in %v", ids)
		}
	}
}

// rawEvent builds a record as the BPF program lays it out.
func rawEvent(args []byte, flags uint32, argsLen uint32) []byte {
	b := make([]byte, eventSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(3*time.Second))
	le.PutUint64(b[8:], 4242)
	for i, v := range []uint32{10, 11, 1, 1000, 4026531840, 1, flags, argsLen} {
		le.PutUint32(b[16+4*i:], v)
	}
	copy(b[headerLen:], "sh\x00junk")
	copy(b[headerLen+commLen:], "/bin/sh\x00")
	copy(b[headerLen+commLen+filenameLen:], args)
	return b
}

func TestDecodeEvent(t *testing.T) {
	args := []byte("sh\x00-c\x00id\x00")
	tests := []struct {
		name     string
		in       []byte
		wantArgs []string
		killed   bool
		trunc    bool
		wantErr  string
	}{
		{name: "full", in: rawEvent(args, 1, uint32(len(args))), wantArgs: []string{"sh", "-c", "id"}, killed: true},
		{name: "no args", in: rawEvent(nil, 0, 0)},
		{name: "truncated", in: rawEvent([]byte("abc\x00de"), 2, 6), wantArgs: []string{"abc", "de"}, trunc: true},
		{name: "empty arg kept", in: rawEvent([]byte("a\x00\x00b\x00"), 0, 5), wantArgs: []string{"a", "", "b"}},
		{name: "short", in: make([]byte, eventSize-1), wantErr: "record is"},
		{name: "bad args length", in: rawEvent(nil, 0, argsLen+1), wantErr: "argument length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := decodeEvent(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.KTime != 3*time.Second || e.CgroupID != 4242 || e.PID != 10 || e.TGID != 11 || e.PPID != 1 ||
				e.UID != 1000 || e.MntNS != 4026531840 || e.Action != ActionKill {
				t.Errorf("header = %+v", e)
			}
			if e.Comm != "sh" || e.Filename != "/bin/sh" {
				t.Errorf("comm, filename = %q, %q", e.Comm, e.Filename)
			}
			if !slices.Equal(e.Args, tt.wantArgs) || e.Killed != tt.killed || e.ArgsTruncated != tt.trunc {
				t.Errorf("args %q killed %v truncated %v; want %q %v %v", e.Args, e.Killed, e.ArgsTruncated, tt.wantArgs, tt.killed, tt.trunc)
			}
		})
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(rawEvent([]byte("sh\x00-c\x00id\x00"), 1, 9))
	f.Add(rawEvent(nil, 0, 0))
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEvent(data)
		if err != nil {
			return
		}
		if len(e.Comm) >= commLen || len(e.Filename) >= filenameLen+1 {
			t.Fatalf("field too long: %+v", e)
		}
		n := 0
		for _, a := range e.Args {
			n += len(a) + 1
		}
		if n > argsLen+1 {
			t.Fatalf("args %q longer than %d bytes", e.Args, argsLen)
		}
	})
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{ActionReport: "report", ActionKill: "kill", 9: "action(9)"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", a, got, want)
		}
	}
}

func TestRawTracepointFallbackLoads(t *testing.T) {
	o, l, err := load(Options{RingBufferBytes: 1 << 16}, progRaw)
	if err != nil {
		testenv.Missing(t, "load raw_tracepoint exec program: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if err := o.close(); err != nil {
		t.Error(err)
	}
}
