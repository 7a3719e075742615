package container

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container/docker"
	"github.com/mamorisec/mamori/internal/testenv"
)

// changes subscribes to tr and returns the channel of changes.
func changes(t *testing.T, tr *Tracker) <-chan Change {
	ch := make(chan Change, 256)
	t.Cleanup(tr.Subscribe(func(c Change) {
		select {
		case ch <- c:
		default:
			t.Errorf("change channel full, dropped %v %s", c.Kind, c.Container.ID)
		}
	}))
	return ch
}

// waitChange waits for a change of kind about container id.
func waitChange(t *testing.T, ch <-chan Change, kind ChangeKind, id string) Change {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.Kind == kind && c.Container.ID == id {
				return c
			}
		case <-deadline:
			t.Fatalf("no %v change for %s", kind, id)
		}
	}
}

// findProcess returns the container's process whose args are args.
func findProcess(t *testing.T, tr *Tracker, id string, args ...string) Process {
	t.Helper()
	for range 50 {
		for _, c := range tr.Containers() {
			if c.ID != id {
				continue
			}
			for _, p := range c.Processes {
				if slices.Equal(p.Args, args) {
					return p
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s has no process %q", id[:12], args)
	return Process{}
}

// inode returns the inode of path, or 0 when it does not exist.
func inode(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

func TestTrackerDocker(t *testing.T) {
	sock := testenv.Docker(t)
	img := testenv.BusyboxImage(t)
	before := testenv.RunContainer(t, img, []string{
		"--label", "team=red",
		"--label", LabelPodNamespace + "=prod",
		"--label", LabelPodName + "=web-0",
	}, "sh", "-c", "sleep 301 & wait")

	client := docker.New(sock)
	defer client.Close()
	tr := NewTracker(func(err error) { t.Log(err) }, NewDockerSource(client))
	ch := changes(t, tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Seeded: the container started before the tracker.
	c, ok := tr.Container(before)
	if !ok {
		t.Fatalf("container %s started before the tracker is not tracked", before)
	}
	if c.Runtime != "docker" || c.Image != img || !strings.HasPrefix(c.ImageID, "sha256:") || c.FromProc {
		t.Errorf("container = %+v", c)
	}
	if c.Labels["team"] != "red" || c.Namespace != "prod" || c.Pod != "web-0" || !strings.HasPrefix(c.Name, "mamori-test-") {
		t.Errorf("labels = %v, namespace %q, pod %q, name %q", c.Labels, c.Namespace, c.Pod, c.Name)
	}
	if c.PID <= 0 || c.Started.IsZero() || c.UpperDir == "" || len(c.LowerDirs) == 0 || c.MergedDir == "" {
		t.Errorf("pid %d started %v upper %q lowers %q merged %q", c.PID, c.Started, c.UpperDir, c.LowerDirs, c.MergedDir)
	}

	t.Run("cgroup ids", func(t *testing.T) {
		var want []uint64
		for _, dir := range []string{"/sys/fs/cgroup/pids/docker/" + before, "/sys/fs/cgroup/unified/docker/" + before, "/sys/fs/cgroup/system.slice/docker-" + before + ".scope"} {
			if ino := inode(t, dir); ino != 0 {
				want = append(want, ino)
			}
		}
		if len(want) == 0 {
			testenv.Missing(t, "no docker cgroup directory at the cgroupfs-driver paths")
		}
		if !slices.Equal(c.CgroupIDs, want) {
			t.Errorf("container CgroupIDs = %v, want the cgroup dir inodes %v", c.CgroupIDs, want)
		}
		ids, err := CgroupIDs(c.PID)
		if err != nil || !slices.Equal(ids, want) {
			t.Errorf("CgroupIDs(%d) = %v, %v; want %v", c.PID, ids, err, want)
		}
	})

	t.Run("processes and fleet", func(t *testing.T) {
		p := findProcess(t, tr, before, "sleep", "301")
		if p.Exe != "/bin/busybox" || p.UID != 0 || p.PPID != c.PID {
			t.Errorf("sleep process = %+v (init %d)", p, c.PID)
		}
		var fc *Container
		for _, x := range tr.Containers() {
			if x.ID == before {
				fc = x
			}
		}
		f := fc.Fleet()
		if f.ID != before || f.Runtime != "docker" || f.Image != img || f.Namespace != "prod" || f.Pod != "web-0" || f.Labels["team"] != "red" || len(f.Processes) < 2 || f.Started.IsZero() {
			t.Errorf("Fleet() = %+v", f)
		}
	})

	t.Run("exec session", func(t *testing.T) {
		init, err := ExecSession(c.PID)
		if err != nil || init {
			t.Errorf("ExecSession(init %d) = %v, %v; want false", c.PID, init, err)
		}
		own := findProcess(t, tr, before, "sleep", "301")
		if got, err := ExecSession(own.PID); err != nil || got {
			t.Errorf("ExecSession(own child %d) = %v, %v; want false", own.PID, got, err)
		}
		testenv.DockerCLI(t, nil, "exec", "-d", before, "sh", "-c", "sleep 302 & wait")
		chg := waitChange(t, ch, ExecStarted, before)
		if chg.Exec == nil || chg.Exec.Command != "sh -c sleep 302 & wait" || chg.Exec.PID <= 0 {
			t.Fatalf("exec change = %+v", chg.Exec)
		}
		if got, err := ExecSession(chg.Exec.PID); err != nil || !got {
			t.Errorf("ExecSession(exec's first process %d) = %v, %v; want true", chg.Exec.PID, got, err)
		}
		child := findProcess(t, tr, before, "sleep", "302")
		for _, fn := range []func(int) (bool, error){ExecSession, tr.ExecSession} {
			if got, err := fn(child.PID); err != nil || !got {
				t.Errorf("ExecSession(exec's child %d) = %v, %v; want true", child.PID, got, err)
			}
		}
		if got, err := tr.ExecSession(c.PID); err != nil || got {
			t.Errorf("Tracker.ExecSession(init) = %v, %v", got, err)
		}
		if _, err := ExecSession(os.Getpid()); err == nil {
			t.Error("ExecSession of a host process succeeded")
		}
	})

	t.Run("drift", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "dropped")
		if err := os.WriteFile(src, []byte("#!/bin/sh\necho pwned\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.DockerCLI(t, nil, "cp", src, before+":/tmp/dropped")
		testenv.DockerCLI(t, nil, "exec", before, "sh", "-c", "echo 'x:x:1:1::/:/bin/sh' >> /etc/passwd")
		tests := []struct {
			path string
			want bool
		}{
			{"/bin/busybox", true},
			{"/bin/sh", true},
			{"/bin", true},
			{"/tmp/dropped", false},
			{"/etc/passwd", false},
		}
		for _, tt := range tests {
			got, err := FromImage(c, tt.path)
			if err != nil || got != tt.want {
				t.Errorf("FromImage(%s) = %v, %v; want %v", tt.path, got, err, tt.want)
			}
		}
		if _, err := FromImage(c, "/nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("FromImage(/nope) error = %v", err)
		}
	})

	t.Run("events", func(t *testing.T) {
		after := testenv.RunContainer(t, img, []string{"--label", "team=green"}, "sleep", "303")
		added := waitChange(t, ch, Added, after)
		if added.Container.Labels["team"] != "green" || added.Container.PID <= 0 || len(added.Container.CgroupIDs) == 0 {
			t.Errorf("added = %+v", added.Container)
		}
		if _, ok := tr.Container(after[:12]); !ok {
			t.Error("Container(short id) does not find the new container")
		}
		testenv.DockerCLI(t, nil, "rm", "-f", after)
		waitChange(t, ch, Removed, after)
		if _, ok := tr.Container(after); ok {
			t.Error("removed container is still tracked")
		}
	})
}

func TestTrackerProcOnly(t *testing.T) {
	sock := testenv.Docker(t)
	img := testenv.BusyboxImage(t)
	id := testenv.RunContainer(t, img, nil, "sleep", "304")
	client := docker.New(sock)
	defer client.Close()
	src := NewDockerSource(client)
	want, err := src.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}

	// No runtime source: the container is found through /proc alone.
	tr := NewTracker(nil)
	if err := tr.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, ok := tr.Container(id)
	if !ok {
		t.Fatalf("container %s not found in /proc", id)
	}
	if !c.FromProc || c.Runtime != "docker" || c.PID != want.PID || len(c.CgroupIDs) == 0 {
		t.Errorf("proc-only container = %+v, want pid %d", c, want.PID)
	}
	if c.UpperDir != want.UpperDir {
		t.Errorf("upper dir from mountinfo = %q, want %q", c.UpperDir, want.UpperDir)
	}
	if got, err := FromImage(c, "/bin/busybox"); err != nil || !got {
		t.Errorf("FromImage(/bin/busybox) on a proc-only container = %v, %v", got, err)
	}
}

// TestExecSessionSharedPIDNamespace covers a container without a pid
// namespace of its own, where the init is not pid 1: the init is found as
// the earliest started of the container's top processes.
func TestExecSessionSharedPIDNamespace(t *testing.T) {
	testenv.Docker(t)
	img := testenv.BusyboxImage(t)
	id := testenv.RunContainer(t, img, []string{"--pid", "host"}, "sleep", "308")
	init, err := strconv.Atoi(testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil {
		t.Fatal(err)
	}
	testenv.DockerCLI(t, nil, "exec", "-d", id, "sleep", "309")
	var execPID int
	for range 50 {
		procs, err := ScanProc()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs[id] {
			if slices.Equal(p.Args, []string{"sleep", "309"}) {
				execPID = p.PID
			}
		}
		if execPID != 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if execPID == 0 {
		t.Fatal("exec'd process not found")
	}
	if got, err := ExecSession(init); err != nil || got {
		t.Errorf("ExecSession(init %d) = %v, %v; want false", init, got, err)
	}
	if got, err := ExecSession(execPID); err != nil || !got {
		t.Errorf("ExecSession(exec %d) = %v, %v; want true", execPID, got, err)
	}
}
