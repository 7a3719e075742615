package fim

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

// startContainer runs a busybox container and returns its id, root
// (MergedDir) and init pid.
func startContainer(t *testing.T) (id, root string, pid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "fanotify and mount namespaces need root")
	}
	id = testenv.RunContainer(t, testenv.BusyboxImage(t), nil, "sleep", "600")
	root = testenv.DockerCLI(t, nil, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", id)
	p := testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id)
	pid, err := strconv.Atoi(strings.TrimSpace(p))
	if err != nil {
		t.Fatalf("container %s pid %q: %v", id, p, err)
	}
	return id, strings.TrimSpace(root), pid
}

type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) paths() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ps []string
	for _, ev := range e.evs {
		ps = append(ps, ev.Path)
	}
	return ps
}

func (e *events) waitFor(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(e.paths(), p) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no write event for %s; got %v", p, e.paths())
}

func TestWatcherReportsProtectedWrites(t *testing.T) {
	id, root, _ := startContainer(t)
	var got events
	w, err := NewWatcher(got.add)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	match := func(p string) bool { return p == "/etc/passwd" }
	if err := w.Watch("c1", root, match); err != nil {
		t.Fatal(err)
	}
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "echo x >> /tmp/free; echo x >> /etc/passwd")
	got.waitFor(t, "/etc/passwd")
	time.Sleep(200 * time.Millisecond)
	for _, ev := range got.evs {
		if ev.Path != "/etc/passwd" || ev.Container != "c1" || ev.PID <= 0 {
			t.Errorf("unexpected event %+v", ev)
		}
	}
	if err := w.Unwatch("c1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Unwatch("c1"); err == nil {
		t.Error("second Unwatch: no error")
	}
	if err := w.Err(); err != nil {
		t.Error(err)
	}
}

func TestWatchErrors(t *testing.T) {
	w, err := NewWatcher(func(Event) {})
	if err != nil {
		if os.Geteuid() != 0 {
			testenv.Missing(t, "fanotify needs root: %v", err)
		}
		t.Fatal(err)
	}
	defer w.Close()
	tests := []struct{ name, root, want string }{
		{"empty name", "", "empty container name"},
		{"c", "/nonexistent-fim-root", "no such file"},
		{"c", "/etc/passwd", "not a directory"},
		{"c", "/", "host's root filesystem"},
	}
	for _, tt := range tests {
		name := tt.name
		if name == "empty name" {
			name = ""
		}
		err := w.Watch(name, tt.root, func(string) bool { return true })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Watch(%q, %q) = %v, want %q", name, tt.root, err, tt.want)
		}
	}
	if _, err := NewWatcher(nil); err == nil {
		t.Error("NewWatcher(nil): no error")
	}
}

func TestLockBlocksWritesUntilUnlock(t *testing.T) {
	id, _, pid := startContainer(t)
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "echo g > /etc/group")
	match := func(p string) bool { return p == "/etc/passwd" || p == "/etc/group" }
	files, more, err := Expand(pid, []string{"/etc/passwd", "/etc/group"}, match)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/group", "/etc/passwd"}; !slices.Equal(files, want) || more != 0 {
		t.Fatalf("Expand = %v, %d, want %v", files, more, want)
	}
	locked, err := Lock(pid, files)
	if err != nil {
		_ = Unlock(pid, locked)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unlock(pid, locked) })
	out, err := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "echo x >> /etc/passwd")
	if err == nil || !strings.Contains(strings.ToLower(out+err.Error()), "read-only") {
		t.Errorf("write to locked /etc/passwd: err %v, output %q, want read-only file system", err, out)
	}
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "echo x >> /etc/hostname.copy && echo y > /tmp/y")
	if out := testenv.DockerCLI(t, nil, "exec", id, "cat", "/etc/passwd"); !strings.Contains(out, "root") {
		t.Errorf("locked /etc/passwd unreadable: %q", out)
	}
	if err := Unlock(pid, locked); err != nil {
		t.Fatal(err)
	}
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "echo x >> /etc/passwd")
	// A second Unlock finds no mount and is harmless.
	if err := Unlock(pid, locked); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
}

func TestExpandGlobs(t *testing.T) {
	id, _, pid := startContainer(t)
	testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "mkdir -p /srv/a/b && touch /srv/a/x.conf /srv/a/b/y.conf /srv/a/z.txt && ln -s /etc/passwd /srv/a/link.conf")
	match := func(p string) bool { return strings.HasPrefix(p, "/srv/") && strings.HasSuffix(p, ".conf") }
	files, more, err := Expand(pid, []string{"/srv/**/*.conf"}, match)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/srv/a/b/y.conf", "/srv/a/x.conf"}; !slices.Equal(files, want) || more != 0 {
		t.Errorf("Expand = %v, %d, want %v", files, more, want)
	}
	if _, _, err := Expand(0, nil, match); err == nil {
		t.Error("Expand(pid 0): no error")
	}
	if _, err := Lock(pid, []string{"relative"}); err == nil {
		t.Error("Lock(relative path): no error")
	}
	if _, err := Lock(os.Getpid(), []string{"/etc/passwd"}); err == nil || !strings.Contains(err.Error(), "not a container") {
		t.Errorf("Lock(own pid) = %v, want refusal", err)
	}
}

func TestSearchDirs(t *testing.T) {
	tests := []struct {
		patterns []string
		want     []string
	}{
		{[]string{"/etc/**"}, []string{"/etc"}},
		{[]string{"/etc/passwd", "/etc/ssl/*.pem"}, []string{"/etc"}},
		{[]string{"/usr/bin/*", "/etc/pa?swd"}, []string{"/etc", "/usr/bin"}},
		{[]string{"passwd", "/etc/x"}, []string{"/"}},
		{[]string{"/**"}, []string{"/"}},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := searchDirs(tt.patterns); !slices.Equal(got, tt.want) {
			t.Errorf("searchDirs(%q) = %q, want %q", tt.patterns, got, tt.want)
		}
	}
}

func TestAvailable(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root")
	}
	if err := Available(); err != nil {
		t.Fatal(err)
	}
}

// TestThreadsStayInHostNamespace checks that entering a container's mount
// namespace leaves no thread of this process behind in it: the entering
// thread is discarded, and the main thread (which the runtime never
// discards) never enters.
func TestThreadsStayInHostNamespace(t *testing.T) {
	_, _, pid := startContainer(t)
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := Unlock(pid, []string{"/nonexistent"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	tasks, err := filepath.Glob("/proc/self/task/*/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tasks {
		if l, err := os.Readlink(p); err == nil && l != own {
			t.Errorf("thread %s is in %s, want %s", p, l, own)
		}
	}
}
