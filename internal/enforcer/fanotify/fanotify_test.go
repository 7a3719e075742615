package fanotify

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

// needRoot reports the test Missing unless it runs as root, which
// fanotify permission events need.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "fanotify permission events need root")
	}
}

// startContainer runs a busybox container and returns its id and root
// (MergedDir). Its /bin/cat is made a copy of busybox instead of a symlink,
// so that denying /bin/cat by path denies nothing else.
func startContainer(t *testing.T) (id, root string) {
	t.Helper()
	needRoot(t)
	id = testenv.RunContainer(t, testenv.BusyboxImage(t), nil, "sleep", "600")
	root = testenv.DockerCLI(t, nil, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", id)
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "rm /bin/cat && cp /bin/busybox /bin/cat")
	return id, root
}

// recorder is a Decider that denies a set of paths and records every
// request.
type recorder struct {
	mu   sync.Mutex
	deny []string
	seen []Request
}

func (r *recorder) decide(req Request) Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	req.File = nil
	r.seen = append(r.seen, req)
	if slices.Contains(r.deny, req.Path) {
		return Deny
	}
	return Allow
}

func (r *recorder) paths(container string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []string
	for _, q := range r.seen {
		if q.Container == container {
			ps = append(ps, q.Path)
		}
	}
	return ps
}

func newGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// execStatus runs `docker exec` and returns its output and exit code.
func execStatus(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := testenv.DockerCLIErr(t, nil, append([]string{"exec"}, args...)...)
	if err == nil {
		return out, 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("docker exec %v: %v", args, err)
	}
	return out + " " + err.Error(), ee.ExitCode()
}

// wantDenied asserts that `docker exec args...` failed because execve was
// denied. fanotify denies with EPERM, which the container runtime reports
// as "operation not permitted".
func wantDenied(t *testing.T, args ...string) {
	t.Helper()
	out, code := execStatus(t, args...)
	if code == 0 || !strings.Contains(out, "operation not permitted") {
		t.Errorf("docker exec %v: exit %d, output %q; want failure with operation not permitted", args, code, out)
	}
}

// wantShellDenied asserts that a shell in container id cannot execute
// command: busybox sh reports the failed execve with status 126.
func wantShellDenied(t *testing.T, id, command string) {
	t.Helper()
	out, code := execStatus(t, id, "sh", "-c", command+"; echo status=$?")
	if code != 0 || !strings.Contains(out, "status=126") {
		t.Errorf("sh -c %q in %s: exit %d, output %q; want status=126", command, id, code, out)
	}
}

// wantRuns asserts that `docker exec args...` succeeded and printed want.
func wantRuns(t *testing.T, want string, args ...string) {
	t.Helper()
	out, code := execStatus(t, args...)
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("docker exec %v: exit %d, output %q; want success and %q", args, code, out, want)
	}
}

func TestDenyByPathAndUnprotect(t *testing.T) {
	a, rootA := startContainer(t)
	b, rootB := startContainer(t)
	rec := &recorder{deny: []string{"/bin/cat"}}
	g := newGuard(t, Config{Decide: rec.decide})
	if err := g.Protect(a, rootA); err != nil {
		t.Fatal(err)
	}

	wantDenied(t, a, "cat", "/etc/passwd")
	// busybox sh runs an applet named without a path in-process, with
	// no execve to deny, so the shell is given the path.
	wantShellDenied(t, a, "/bin/cat /etc/passwd")
	wantRuns(t, "etc", a, "ls", "/")
	// b is not protected yet.
	wantRuns(t, "root:x:0:0", b, "cat", "/etc/passwd")

	// Marks are added to the running group: the policy now covers b.
	if err := g.Protect(b, rootB); err != nil {
		t.Fatal(err)
	}
	if got := g.Protected(); len(got) != 2 {
		t.Fatalf("Protected() = %v, want both containers", got)
	}
	wantDenied(t, b, "cat", "/etc/passwd")

	if ps := rec.paths(a); !slices.Contains(ps, "/bin/cat") || !slices.Contains(ps, "/bin/busybox") {
		t.Errorf("paths seen for container a = %v, want /bin/cat and /bin/busybox (ls resolves to it)", ps)
	}

	// Removing the mark restores exec without restarting anything.
	if err := g.Unprotect(a); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, "root:x:0:0", a, "cat", "/etc/passwd")
	wantDenied(t, b, "cat", "/etc/passwd")
	if err := g.Unprotect(a); err == nil {
		t.Error("Unprotect of an unprotected container succeeded")
	}
	if s := g.Stats(); s.Denied < 2 || s.Allowed == 0 {
		t.Errorf("Stats() = %+v, want at least 2 denied and some allowed", s)
	}
}

func TestScriptExec(t *testing.T) {
	id, root := startContainer(t)
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", `printf '#!/bin/sh\necho script-ran\n' > /app/s.sh && chmod +x /app/s.sh`)
	rec := &recorder{deny: []string{"/app/s.sh"}}
	g := newGuard(t, Config{Decide: rec.decide})
	if err := g.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	// Executing the script itself is an exec of the script file: denied.
	wantDenied(t, "-w", "/app", id, "./s.sh")
	wantDenied(t, id, "/app/s.sh")
	wantShellDenied(t, id, "cd /app && ./s.sh")
	// Handing the script to a shell only reads it: the exec is of
	// /bin/sh, so a path rule on the script cannot stop it.
	wantRuns(t, "script-ran", id, "sh", "/app/s.sh")
}

func TestDockerCpFile(t *testing.T) {
	id, root := startContainer(t)
	rec := &recorder{deny: []string{"/app/echo"}}
	g := newGuard(t, Config{Decide: rec.decide})
	if err := g.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	// A file copied in after the mark was added is on the same
	// filesystem, so it is guarded too.
	testenv.DockerCLI(t, nil, "cp", testenv.BusyboxPath, id+":/app/echo")
	wantDenied(t, id, "/app/echo", "hi")
	if ps := rec.paths(id); !slices.Contains(ps, "/app/echo") {
		t.Errorf("paths seen = %v, want /app/echo", ps)
	}
	rec.mu.Lock()
	rec.deny = nil
	rec.mu.Unlock()
	wantRuns(t, "hi", id, "/app/echo", "hi")
}

func TestMountMarkMissesContainerExecs(t *testing.T) {
	id, root := startContainer(t)
	rec := &recorder{deny: []string{"/bin/cat"}}
	g := newGuard(t, Config{Decide: rec.decide, Mark: MarkMount})
	if err := g.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	// The container's processes use the container's own mount of the
	// overlay, not the host's mount the mark is on.
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	if ps := rec.paths(id); len(ps) != 0 {
		t.Errorf("mount mark saw container execs %v; the default should then be reconsidered", ps)
	}
}

func TestDeadline(t *testing.T) {
	id, root := startContainer(t)
	for _, tc := range []struct {
		name       string
		failClosed bool
	}{
		{"fail open", false},
		{"fail closed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			hang := func(Request) Verdict { <-release; return Deny }
			g := newGuard(t, Config{Decide: hang, Deadline: 300 * time.Millisecond, FailClosed: tc.failClosed})
			if err := g.Protect(id, root); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if tc.failClosed {
				wantDenied(t, id, "cat", "/etc/passwd")
			} else {
				wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("exec took %v with a 300ms deadline", d)
			}
			if s := g.Stats(); s.TimedOut == 0 {
				t.Errorf("Stats() = %+v, want TimedOut > 0", s)
			}
		})
	}
}

func TestDeciderPanicAndOverload(t *testing.T) {
	id, root := startContainer(t)
	g := newGuard(t, Config{Decide: func(Request) Verdict { panic("boom") }, FailClosed: true})
	if err := g.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, id, "cat", "/etc/passwd")
	if s := g.Stats(); s.Panicked == 0 {
		t.Errorf("Stats() = %+v, want Panicked > 0", s)
	}
	if err := g.Unprotect(id); err != nil {
		t.Fatal(err)
	}

	// One slot, held by a hung decision: the next exec finds the Guard
	// overloaded and gets the fail verdict at once.
	release := make(chan struct{})
	defer close(release)
	g2 := newGuard(t, Config{Decide: func(Request) Verdict { <-release; return Allow }, MaxInFlight: 1, Deadline: 200 * time.Millisecond})
	if err := g2.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	if s := g2.Stats(); s.TimedOut == 0 || s.Overloaded == 0 {
		t.Errorf("Stats() = %+v, want TimedOut and Overloaded > 0", s)
	}
}

func TestProtectErrors(t *testing.T) {
	needRoot(t)
	g := newGuard(t, Config{Decide: func(Request) Verdict { return Allow }})
	file := t.TempDir() + "/f"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, container, root, want string
	}{
		{"empty name", "", "/tmp", "empty container name"},
		{"missing root", "c1", "/nonexistent/merged", "/nonexistent/merged"},
		{"not a directory", "c1", file, "is not a directory"},
		{"host root filesystem", "c1", "/", "host's root filesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Protect(tc.container, tc.root)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Protect(%q, %q) = %v, want error containing %q", tc.container, tc.root, err, tc.want)
			}
		})
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a Decider succeeded")
	}
}

// childEnv names the root a child guard process protects.
const childEnv = "MAMORI_FANOTIFY_CHILD_ROOT"

// TestChildGuard is the guard process of TestKilledListenerFailsOpen; it
// does nothing unless started by that test.
func TestChildGuard(t *testing.T) {
	root := os.Getenv(childEnv)
	if root == "" {
		t.Skip("helper process for TestKilledListenerFailsOpen")
	}
	g, err := New(Config{Decide: func(Request) Verdict { select {} }, Deadline: time.Hour, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Protect("child", root); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	select {}
}

func TestKilledListenerFailsOpen(t *testing.T) {
	id, root := startContainer(t)
	child := exec.Command(os.Args[0], "-test.run=^TestChildGuard$", "-test.timeout=5m")
	child.Env = append(os.Environ(), childEnv+"="+root)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child guard: %q, %v", line, err)
	}

	// The child never answers: the exec hangs while it lives.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	docker := testenv.NeedCommand(t, "docker")
	execCmd := exec.CommandContext(ctx, docker, "-H", "unix://"+testenv.Docker(t), "exec", id, "cat", "/etc/passwd")
	var out strings.Builder
	execCmd.Stdout = &out
	if err := execCmd.Start(); err != nil {
		t.Fatal(err)
	}
	execDone := make(chan error, 1)
	go func() { execDone <- execCmd.Wait() }()
	select {
	case err := <-execDone:
		t.Fatalf("exec finished (%v) while the guard was holding it", err)
	case <-time.After(2 * time.Second):
	}

	// Killing the listener releases the group: the kernel allows the
	// pending exec and every later one.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed = true
	select {
	case err := <-execDone:
		if err != nil || !strings.Contains(out.String(), "root:x:0:0") {
			t.Fatalf("pending exec after the guard was killed: %v, output %q", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pending exec still hangs 30s after the guard was killed")
	}
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
}

// TestNotifyWatcher checks that a watcher sees the execs of a protected
// container, with their paths and pids, without making them wait or
// denying them.
func TestNotifyWatcher(t *testing.T) {
	id, root := startContainer(t)
	rec := &recorder{deny: []string{"/bin/cat"}}
	g := newGuard(t, Config{Decide: rec.decide, Notify: true})
	if err := g.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	// A deny verdict is not enforced: the watcher only observes.
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(rec.paths(id), "/bin/cat") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ps := rec.paths(id); !slices.Contains(ps, "/bin/cat") {
		t.Fatalf("paths seen = %v, want /bin/cat", ps)
	}
	rec.mu.Lock()
	for _, q := range rec.seen {
		if q.PID <= 0 {
			t.Errorf("request %+v has no pid", q)
		}
	}
	rec.mu.Unlock()
	if s := g.Stats(); s.Denied == 0 {
		t.Errorf("Stats() = %+v, want the unenforced deny counted", s)
	}
	if err := g.Unprotect(id); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")

	// A panicking Decider is counted and the watcher keeps reading.
	p := newGuard(t, Config{Decide: func(Request) Verdict { panic("decider bug") }, Notify: true})
	if err := p.Protect(id, root); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	wantRuns(t, "root:x:0:0", id, "cat", "/etc/passwd")
	deadline = time.Now().Add(5 * time.Second)
	for p.Stats().Panicked < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := p.Stats(); s.Panicked < 2 || p.Err() != nil {
		t.Errorf("Stats() = %+v, Err() = %v; want panics counted and the loop running", s, p.Err())
	}
}
