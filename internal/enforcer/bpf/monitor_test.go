package bpf

import (
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mamorisec/mamori/internal/testenv"
)

// openMonitor loads the monitor or reports the kernel's refusal Missing.
func openMonitor(t *testing.T) *Monitor {
	t.Helper()
	m, err := Open(Options{})
	if err != nil {
		testenv.Missing(t, "load BPF exec monitor (needs root, BTF, tp_btf or raw tracepoints): %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// containerIDs starts a busybox container and returns its id and cgroup
// ids (v1 pids first, then v2, as CgroupIDs orders them).
func startContainer(t *testing.T) (string, []uint64) {
	t.Helper()
	img := testenv.BusyboxImage(t)
	id := testenv.RunContainer(t, img, nil, "sleep", "600")
	pidText := testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id)
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		t.Fatalf("container %s pid %q: %v", id, pidText, err)
	}
	ids, err := CgroupIDs(pid)
	if err != nil {
		t.Fatalf("CgroupIDs(%d): %v", pid, err)
	}
	return id, ids
}

// waitEvent returns the first event accepted by match, or fails after 10s.
// Every event seen is passed to seen (if not nil).
func waitEvent(t *testing.T, m *Monitor, match func(Event) bool, seen func(Event)) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-m.Events():
			if !ok {
				t.Fatalf("event stream ended: %v", m.Err())
			}
			if seen != nil {
				seen(e)
			}
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatal("no matching exec event within 10s")
		}
	}
}

func TestMonitorContainerExec(t *testing.T) {
	m := openMonitor(t)
	t.Logf("attached as %s", m.Attachment())
	cid, ids := startContainer(t)
	if len(ids) == 0 {
		t.Fatal("container has no cgroup ids")
	}

	for i, id := range ids {
		t.Run("id"+strconv.Itoa(i), func(t *testing.T) {
			// Watch one id at a time, so each id is shown to be the one
			// the kernel computes.
			if err := m.Watch(id, ActionReport); err != nil {
				t.Fatal(err)
			}
			defer m.Unwatch(id)

			marker := "mamori-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			// A host exec (not in the container's cgroups) must not be
			// reported.
			if out, err := exec.Command("/bin/echo", "host", marker).CombinedOutput(); err != nil {
				t.Fatalf("host echo: %v: %s", err, out)
			}
			testenv.DockerCLI(t, nil, "exec", cid, "/bin/echo", "hello", marker)

			hostSeen := false
			e := waitEvent(t, m, func(e Event) bool {
				return e.Filename == "/bin/echo" && slices.Contains(e.Args, marker) && slices.Contains(e.Args, "hello")
			}, func(e Event) {
				if slices.Contains(e.Args, "host") && slices.Contains(e.Args, marker) {
					hostSeen = true
				}
			})
			if hostSeen {
				t.Error("host exec was reported, want only the container's")
			}
			want := []string{"/bin/echo", "hello", marker}
			if !slices.Equal(e.Args, want) {
				t.Errorf("Args = %q, want %q", e.Args, want)
			}
			if e.CgroupID != id {
				t.Errorf("CgroupID = %d, want %d (from CgroupIDs %v)", e.CgroupID, id, ids)
			}
			if e.Comm != "echo" {
				t.Errorf("Comm = %q, want echo", e.Comm)
			}
			if e.PID == 0 || e.TGID == 0 || e.PPID == 0 || e.MntNS == 0 || e.KTime == 0 {
				t.Errorf("event has zero ids: %+v", e)
			}
			if e.UID != 0 || e.Action != ActionReport || e.Killed {
				t.Errorf("event = %+v, want uid 0, report, not killed", e)
			}
		})
	}

	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Events == 0 || s.Drops != 0 {
		t.Errorf("Stats = %+v, want events > 0 and no drops", s)
	}
}

func TestMonitorKill(t *testing.T) {
	m := openMonitor(t)
	cid, ids := startContainer(t)
	for _, id := range ids {
		if err := m.Watch(id, ActionKill); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err := testenv.DockerCLIErr(t, nil, "exec", cid, "/bin/sleep", "5")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 137 {
		t.Fatalf("docker exec sleep: err = %v, want exit status 137 (SIGKILL)", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("sleep was killed after %v, want at once", d)
	}
	e := waitEvent(t, m, func(e Event) bool { return e.Filename == "/bin/sleep" }, nil)
	if !e.Killed || e.Action != ActionKill {
		t.Errorf("event = %+v, want killed by action kill", e)
	}

	// Back to report: the container runs commands again.
	for _, id := range ids {
		if err := m.Watch(id, ActionReport); err != nil {
			t.Fatal(err)
		}
	}
	if out := testenv.DockerCLI(t, nil, "exec", cid, "/bin/echo", "alive"); !strings.Contains(out, "alive") {
		t.Errorf("exec after report action printed %q", out)
	}
}

func TestWatchRejectsUnknownAction(t *testing.T) {
	m := openMonitor(t)
	if err := m.Watch(1, Action(7)); err == nil {
		t.Error("Watch with action 7 succeeded")
	}
	if err := m.Unwatch(12345); err != nil {
		t.Errorf("Unwatch of an unwatched id: %v", err)
	}
}

func TestCloseEndsEvents(t *testing.T) {
	m, err := Open(Options{})
	if err != nil {
		testenv.Missing(t, "load BPF exec monitor: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-m.Events():
		if ok {
			t.Error("event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Error("Events not closed 5s after Close")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestProgramStats(t *testing.T) {
	m := openMonitor(t)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		testenv.Missing(t, "enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	for range 3 {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	runs, total, err := m.ProgramStats()
	if err != nil {
		t.Fatal(err)
	}
	if runs < 3 || total <= 0 {
		t.Errorf("ProgramStats = %d runs, %v; want at least 3 runs of the host's execs", runs, total)
	}
}
