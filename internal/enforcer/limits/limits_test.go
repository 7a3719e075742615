package limits

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, in, v1, v2, wantErr string
	}{
		{"v1 hybrid", "9:name=systemd:/docker/abc\n8:pids:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/docker/abc\n", "/docker/abc", "/docker/abc", ""},
		{"v2 only", "0::/system.slice/docker-abc.scope\n", "", "/system.slice/docker-abc.scope", ""},
		{"pids in a list", "3:cpu,pids:/x\n", "/x", "", ""},
		{"empty", "", "", "", ""},
		{"malformed", "garbage\n", "", "", "line 1"},
		{"relative path", "8:pids:docker\n", "", "", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v1, v2, err := parseProcCgroup([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || v1 != tc.v1 || v2 != tc.v2 {
				t.Errorf("parseProcCgroup = %q, %q, %v; want %q, %q", v1, v2, err, tc.v1, tc.v2)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /mnt/my\040cg rw - cgroup cgroup rw,pids
bad line
`
	v1, v2 := parseMountinfo([]byte(in))
	if v1 != "/sys/fs/cgroup/pids" || v2 != "/sys/fs/cgroup/unified" {
		t.Errorf("parseMountinfo = %q, %q", v1, v2)
	}
	v1, _ = parseMountinfo([]byte(`42 31 0:39 / /mnt/my\040cg rw - cgroup cgroup rw,pids`))
	if v1 != "/mnt/my cg" {
		t.Errorf("escaped mount point = %q, want %q", v1, "/mnt/my cg")
	}
}

func TestParseMaxAndEvents(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", -1, true}, {"20\n", 20, true}, {"0", 0, true}, {"-3", 0, false}, {"lots", 0, false},
	} {
		got, err := parseMax(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMax(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max 0\n", 0, true}, {"max 17\n", 17, true}, {"max 3\nmax.imposed 1\n", 3, true},
		{"max.imposed 1\n", 0, false}, {"max x\n", 0, false}, {"", 0, false},
	} {
		got, err := parseEvents(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseEvents(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Find(0); err == nil || !strings.Contains(err.Error(), "process 0") {
		t.Errorf("Find(0) = %v", err)
	}
	if _, err := Find(1 << 30); err == nil || !strings.Contains(err.Error(), strconv.Itoa(1<<30)) {
		t.Errorf("Find(no such pid) = %v", err)
	}
	g := Group{Dir: t.TempDir(), Version: 1}
	if err := g.SetMax(0); err == nil || !strings.Contains(err.Error(), g.Dir) {
		t.Errorf("SetMax(0) = %v", err)
	}
	if _, err := g.Current(); err == nil || !strings.Contains(err.Error(), g.Dir) {
		t.Errorf("Current on a directory without pids.current = %v", err)
	}
}

func FuzzParsers(f *testing.F) {
	f.Add("9:name=systemd:/docker/abc\n8:pids:/docker/abc\n0::/docker/abc\n")
	f.Add(`39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids` + "\n" + `42 31 0:39 / /mnt/my\040cg\7 rw - cgroup2 cgroup2 rw`)
	f.Add("max 3\nmax.imposed 1\n")
	f.Add("max")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = parseProcCgroup([]byte(s))
		_, _ = parseMountinfo([]byte(s))
		if n, err := parseMax(s); err == nil && n < -1 {
			t.Fatalf("parseMax(%q) = %d", s, n)
		}
		if n, err := parseEvents(s); err == nil && n < 0 {
			t.Fatalf("parseEvents(%q) = %d", s, n)
		}
	})
}

func TestForkGuard(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "writing pids.max needs root")
	}
	id := testenv.RunContainer(t, testenv.BusyboxImage(t), nil, "sleep", "600")
	pid, err := strconv.Atoi(testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Find(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.Dir, id) {
		t.Errorf("Find(%d).Dir = %s, want the container's cgroup %s", pid, g.Dir, id)
	}
	before, err := g.MaxHits()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetMax(20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.ClearMax() })
	if n, err := g.Max(); err != nil || n != 20 {
		t.Fatalf("Max() = %d, %v; want 20", n, err)
	}

	// A bounded fork flood: 100 background sleeps against a limit of 20.
	done := make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		_, _ = testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "for i in $(seq 100); do sleep 5 & done; wait")
	}()
	for polling := true; polling; {
		select {
		case <-done:
			polling = false
		case <-time.After(100 * time.Millisecond):
		}
		n, err := g.Current()
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, n)
	}
	if peak > 20 || peak < 10 {
		t.Errorf("peak pids.current = %d, want between 10 and the limit 20", peak)
	}
	after, err := g.MaxHits()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("limit 20: peak pids.current %d, pids.events max %d -> %d", peak, before, after)
	if after <= before {
		t.Errorf("pids.events max = %d after the flood, %d before; want an increase", after, before)
	}

	if err := g.ClearMax(); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Max(); err != nil || n != -1 {
		t.Errorf("Max() after ClearMax = %d, %v; want -1", n, err)
	}
	// Without the limit the same flood runs in full.
	out := testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "for i in $(seq 30); do sleep 2 & done; ps | wc -l; wait")
	if n, _ := strconv.Atoi(strings.TrimSpace(out)); n < 30 {
		t.Errorf("processes without a limit = %q, want over 30", out)
	}
}
