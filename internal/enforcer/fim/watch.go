// Package fim implements the runtime policy's file-integrity control
// (fileIntegrity) for running containers.
//
// A Watcher detects writes: it owns one fanotify notification group
// (FAN_CLASS_NOTIF) and marks each watched container's root filesystem (its
// overlay superblock, FAN_MARK_FILESYSTEM) for FAN_MODIFY and
// FAN_CLOSE_WRITE. The kernel reports every write to a file on that
// filesystem; the Watcher resolves the file's path inside the container and
// reports it when the container's Match function accepts it. Writes are
// never delayed: the group only observes.
//
// Lock blocks writes: it enters the container's mount namespace and
// bind-mounts each protected file onto itself read-only, so that a write
// fails with EROFS without restarting the container. Unlock removes those
// mounts again.
package fim

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mamorisec/mamori/internal/enforcer/fanotify"
)

// Event is one write to a watched file.
type Event struct {
	// Container is the name the container was watched under.
	Container string
	// PID is the writing process in the Watcher's PID namespace.
	PID int
	// Path is the written file's path inside the container.
	Path string
}

// watched is one watched container.
type watched struct {
	root  string
	dev   uint64
	match func(string) bool
}

// Watcher reports writes to watched files of containers. Its methods may be
// called concurrently.
type Watcher struct {
	group  *os.File
	report func(Event)
	done   chan struct{}

	mu     sync.Mutex
	byName map[string]watched
	byDev  map[uint64]string

	closeOnce sync.Once
	closeErr  error
	loopErr   error
}

// writeMask is the events a Watcher's marks ask for.
const writeMask = unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE

// NewWatcher opens a fanotify notification group. report is called, one
// event at a time on the Watcher's reading goroutine, for each write to a
// watched file; it should return quickly.
func NewWatcher(report func(Event)) (*Watcher, error) {
	if report == nil {
		return nil, errors.New("file integrity watcher: report function is nil")
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_UNLIMITED_MARKS,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("file integrity watcher: fanotify_init (needs CAP_SYS_ADMIN): %w", err)
	}
	w := &Watcher{
		group:  os.NewFile(uintptr(fd), "fanotify-fim"),
		report: report,
		done:   make(chan struct{}),
		byName: map[string]watched{},
		byDev:  map[uint64]string{},
	}
	go w.loop()
	return w, nil
}

// Watch starts reporting writes in the container called name, whose root
// filesystem is mounted at root (Docker's MergedDir), to files whose path
// inside the container match accepts. Watching a name again replaces its
// match function.
func (w *Watcher) Watch(name, root string, match func(string) bool) error {
	if name == "" || match == nil {
		return fmt.Errorf("file integrity watcher: watch %q: empty container name or nil match", root)
	}
	var st, hostRoot unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return fmt.Errorf("file integrity watcher: watch container %s: root %s: %w", name, root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("file integrity watcher: watch container %s: root %s is not a directory", name, root)
	}
	if err := unix.Stat("/", &hostRoot); err == nil && hostRoot.Dev == st.Dev {
		return fmt.Errorf("file integrity watcher: watch container %s: root %s is on the host's root filesystem, refusing a filesystem mark", name, root)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.byName[name]; ok {
		if p.root == root && p.dev == uint64(st.Dev) {
			p.match = match
			w.byName[name] = p
			return nil
		}
		return fmt.Errorf("file integrity watcher: watch container %s: already watched with root %s", name, p.root)
	}
	if other, ok := w.byDev[uint64(st.Dev)]; ok {
		return fmt.Errorf("file integrity watcher: watch container %s: root %s is on the filesystem of container %s", name, root, other)
	}
	if err := unix.FanotifyMark(int(w.group.Fd()), unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, writeMask, unix.AT_FDCWD, root); err != nil {
		return fmt.Errorf("file integrity watcher: watch container %s: mark %s: %w", name, root, err)
	}
	w.byName[name] = watched{root: root, dev: uint64(st.Dev), match: match}
	w.byDev[uint64(st.Dev)] = name
	return nil
}

// Unwatch stops reporting writes in the container called name. A container
// whose root is gone is simply forgotten.
func (w *Watcher) Unwatch(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.byName[name]
	if !ok {
		return fmt.Errorf("file integrity watcher: unwatch container %s: not watched", name)
	}
	delete(w.byName, name)
	delete(w.byDev, p.dev)
	err := unix.FanotifyMark(int(w.group.Fd()), unix.FAN_MARK_REMOVE|unix.FAN_MARK_FILESYSTEM, writeMask, unix.AT_FDCWD, p.root)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("file integrity watcher: unwatch container %s: remove mark on %s: %w", name, p.root, err)
	}
	return nil
}

// Err returns the error that stopped the Watcher's reading loop, or nil
// while it runs or after a plain Close.
func (w *Watcher) Err() error {
	select {
	case <-w.done:
		return w.loopErr
	default:
		return nil
	}
}

// Close releases the fanotify group and its marks.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.closeErr = w.group.Close()
		<-w.done
	})
	return w.closeErr
}

// loop reads events until the group is closed.
func (w *Watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.group.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.loopErr = fmt.Errorf("file integrity watcher: read events: %w", err)
				_ = w.group.Close()
			}
			return
		}
		evs, err := fanotify.DecodeEvents(buf[:n])
		for _, ev := range evs {
			w.handle(ev)
		}
		if err != nil {
			w.loopErr = fmt.Errorf("file integrity watcher: %w", err)
			_ = w.group.Close()
			return
		}
	}
}

// handle reports one event if it is a write to a watched file.
func (w *Watcher) handle(ev fanotify.Event) {
	if ev.FD < 0 {
		return // FAN_Q_OVERFLOW
	}
	defer unix.Close(int(ev.FD))
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(ev.FD)))
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(int(ev.FD), &st)
	}
	if err != nil {
		return
	}
	w.mu.Lock()
	name, ok := w.byDev[uint64(st.Dev)]
	c := w.byName[name]
	w.mu.Unlock()
	if !ok {
		return
	}
	p = containerPath(c.root, p)
	if !c.match(p) {
		return
	}
	w.report(Event{Container: name, PID: int(ev.PID), Path: p})
}

// containerPath turns the path of an event's file descriptor into the path
// inside the container.
func containerPath(root, p string) string {
	root = strings.TrimSuffix(root, "/")
	if root != "" && strings.HasPrefix(p, root+"/") {
		return p[len(root):]
	}
	return p
}
