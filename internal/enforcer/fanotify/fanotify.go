// Package fanotify denies the execution of files inside containers before
// the program starts, with the kernel's fanotify permission events
// (FAN_OPEN_EXEC_PERM). A Guard owns one fanotify group; each protected
// container adds one mark on its root filesystem (the overlay "merged"
// directory Docker reports as GraphDriver.Data.MergedDir). For every
// execve of a file on a marked filesystem the kernel suspends the calling
// process until the Guard answers; the Guard asks a Decider and answers
// allow or deny. A denied execve fails with EACCES.
//
// Failure behaviour: when the Guard's process exits or closes the group the
// kernel allows every pending and future event (fail open). A Decider that
// does not answer within Config.Deadline, a Decider that panics, and an
// event that arrives while Config.MaxInFlight decisions are already
// running are answered with the fail verdict: deny if Config.FailClosed,
// allow otherwise. See docs/failure-modes.md.
//
// A Guard created with Config.Notify is a watcher instead: its group uses
// notification events (FAN_CLASS_NOTIF, FAN_OPEN_EXEC), so execs never
// wait for it. The Decider still sees every exec, shortly after it
// started, but its verdict only counts in Stats; it suits audit-mode
// controls, which report and never deny. A watcher decides its events one
// at a time on its reading goroutine (no goroutine, timer or thread
// wake-up per exec); a slow Decider delays the later events, and its
// queue is bounded: an event lost to overflow is counted in Stats.Errors.
package fanotify

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDeadline is how long a Decider may take when Config.Deadline is 0.
const DefaultDeadline = 2 * time.Second

// DefaultMaxInFlight is the number of decisions that may run at once when
// Config.MaxInFlight is 0.
const DefaultMaxInFlight = 256

// Verdict is the answer to an exec permission request.
type Verdict uint8

// Verdicts.
const (
	Allow Verdict = iota
	Deny
)

// String returns "allow" or "deny".
func (v Verdict) String() string {
	if v == Deny {
		return "deny"
	}
	return "allow"
}

// Request is one pending execve of a file in a protected container.
type Request struct {
	// Container is the name the container was protected under.
	Container string
	// PID is the process (in the Guard's PID namespace) calling execve.
	PID int
	// Path is the executed file's path inside the container, e.g.
	// "/bin/cat". A file deleted while open ends in " (deleted)".
	Path string
	// File is the executed file, opened read-only by the kernel, for
	// extra checks such as hashing. It is closed by the Guard when the
	// Decider returns and must not be kept.
	File *os.File
	// Notify is set by a watcher (Config.Notify): the exec already
	// proceeds, the process may have exited, and the verdict is only
	// counted.
	Notify bool
}

// Decider decides one exec permission request. It runs in its own
// goroutine; it may be called concurrently.
type Decider func(Request) Verdict

// MarkKind selects what a protection marks.
type MarkKind uint8

// Mark kinds.
const (
	// MarkFilesystem marks the container's root filesystem (its overlay
	// superblock, FAN_MARK_FILESYSTEM). It sees execs from inside the
	// container, whose mount namespace has its own mount of that
	// filesystem. It is the default.
	MarkFilesystem MarkKind = iota
	// MarkMount marks only the host's mount of the root directory
	// (FAN_MARK_MOUNT). Execs inside the container go through the
	// container's own mount and are NOT seen; it exists for hosts
	// where filesystem marks are unavailable and for tests.
	MarkMount
)

// Config configures a Guard.
type Config struct {
	// Decide answers each request. Required.
	Decide Decider
	// Deadline bounds each decision; 0 means DefaultDeadline.
	Deadline time.Duration
	// FailClosed makes the Guard deny when a decision times out, panics
	// or cannot be started because MaxInFlight decisions are running.
	// The default (false) allows.
	FailClosed bool
	// MaxInFlight bounds the decisions running at once (including ones
	// past their deadline that have not returned); 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
	// Mark is the kind of mark each protection adds.
	Mark MarkKind
	// Notify makes the Guard a watcher: notification events instead of
	// permission events, so execs proceed at once and the Decider's
	// verdict is not enforced. Deadline, FailClosed and MaxInFlight do
	// not apply to a watcher.
	Notify bool
}

// Stats counts the events a Guard has answered.
type Stats struct {
	Allowed    uint64 // answered allow by the Decider
	Denied     uint64 // answered deny by the Decider
	TimedOut   uint64 // Decider missed the deadline; answered the fail verdict
	Panicked   uint64 // Decider panicked; answered the fail verdict
	Overloaded uint64 // MaxInFlight reached; answered the fail verdict
	Unmarked   uint64 // file on no protected filesystem (mark just removed); allowed
	Errors     uint64 // events that could not be inspected; answered the fail verdict
}

// protection is one protected container.
type protection struct {
	root string
	dev  uint64
}

// Guard is a fanotify group that guards the execs of protected containers.
// Its methods may be called concurrently.
type Guard struct {
	cfg      Config
	deadline time.Duration
	group    *os.File
	sem      chan struct{}
	loopDone chan struct{}

	mu     sync.Mutex
	byName map[string]protection
	byDev  map[uint64]string

	allowed, denied, timedOut, panicked, overloaded, unmarked, errs atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	loopErr   atomic.Pointer[error]
}

// New opens a fanotify group and starts answering its events. Nothing is
// guarded until Protect is called. Close releases the group.
func New(cfg Config) (*Guard, error) {
	if cfg.Decide == nil {
		return nil, errors.New("fanotify guard: Config.Decide is nil")
	}
	if cfg.Deadline < 0 || cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("fanotify guard: negative Deadline (%v) or MaxInFlight (%d)", cfg.Deadline, cfg.MaxInFlight)
	}
	if cfg.Mark != MarkFilesystem && cfg.Mark != MarkMount {
		return nil, fmt.Errorf("fanotify guard: unknown mark kind %d", cfg.Mark)
	}
	deadline := cfg.Deadline
	if deadline == 0 {
		deadline = DefaultDeadline
	}
	inflight := cfg.MaxInFlight
	if inflight == 0 {
		inflight = DefaultMaxInFlight
	}
	// Permission events: an unlimited queue, since a bounded one drops
	// events on overflow and a dropped permission event is allowed by the
	// kernel. Notification events: the kernel's bounded queue, so that a
	// slow watcher costs events rather than unbounded kernel memory.
	flags := uint(unix.FAN_CLASS_CONTENT | unix.FAN_UNLIMITED_QUEUE)
	if cfg.Notify {
		flags = unix.FAN_CLASS_NOTIF
	}
	fd, err := unix.FanotifyInit(flags|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_UNLIMITED_MARKS,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify guard: fanotify_init (needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS): %w", err)
	}
	g := &Guard{
		cfg:      cfg,
		deadline: deadline,
		// The descriptor is non-blocking, so reads go through the
		// runtime poller and Close interrupts them.
		group:    os.NewFile(uintptr(fd), "fanotify"),
		sem:      make(chan struct{}, inflight),
		loopDone: make(chan struct{}),
		byName:   map[string]protection{},
		byDev:    map[uint64]string{},
	}
	go g.loop()
	return g, nil
}

// Protect starts guarding the execs in the container called name whose
// root filesystem is mounted at root (Docker's MergedDir). It applies to
// the running container at once. Protecting a name again with the same
// root does nothing.
func (g *Guard) Protect(name, root string) error {
	if name == "" {
		return fmt.Errorf("fanotify guard: protect %q: empty container name", root)
	}
	var st, hostRoot unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return fmt.Errorf("fanotify guard: protect container %s: root %s: %w", name, root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("fanotify guard: protect container %s: root %s is not a directory", name, root)
	}
	if g.cfg.Mark == MarkFilesystem {
		// A filesystem mark on the host's own root filesystem would
		// guard every exec on the host, the Guard's included.
		if err := unix.Stat("/", &hostRoot); err == nil && hostRoot.Dev == st.Dev {
			return fmt.Errorf("fanotify guard: protect container %s: root %s is on the host's root filesystem, refusing a filesystem mark", name, root)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.byName[name]; ok {
		if p.root == root && p.dev == st.Dev {
			return nil
		}
		return fmt.Errorf("fanotify guard: protect container %s: already protected with root %s", name, p.root)
	}
	if other, ok := g.byDev[st.Dev]; ok {
		return fmt.Errorf("fanotify guard: protect container %s: root %s is on the filesystem of container %s", name, root, other)
	}
	if err := unix.FanotifyMark(int(g.group.Fd()), unix.FAN_MARK_ADD|g.markFlag(), g.mask(), unix.AT_FDCWD, root); err != nil {
		return fmt.Errorf("fanotify guard: protect container %s: mark %s: %w", name, root, err)
	}
	g.byName[name] = protection{root: root, dev: st.Dev}
	g.byDev[st.Dev] = name
	return nil
}

// Unprotect stops guarding the container called name; its execs are
// allowed from then on without a restart. A container whose root is gone
// (it stopped, so the kernel dropped the mark) is simply forgotten.
func (g *Guard) Unprotect(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.byName[name]
	if !ok {
		return fmt.Errorf("fanotify guard: unprotect container %s: not protected", name)
	}
	delete(g.byName, name)
	delete(g.byDev, p.dev)
	err := unix.FanotifyMark(int(g.group.Fd()), unix.FAN_MARK_REMOVE|g.markFlag(), g.mask(), unix.AT_FDCWD, p.root)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fanotify guard: unprotect container %s: remove mark on %s: %w", name, p.root, err)
	}
	return nil
}

// Protected returns the names of the protected containers, sorted.
func (g *Guard) Protected() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.byName))
	for n := range g.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats returns the counts of answered events so far.
func (g *Guard) Stats() Stats {
	return Stats{
		Allowed: g.allowed.Load(), Denied: g.denied.Load(), TimedOut: g.timedOut.Load(),
		Panicked: g.panicked.Load(), Overloaded: g.overloaded.Load(), Unmarked: g.unmarked.Load(),
		Errors: g.errs.Load(),
	}
}

// Err returns the error that stopped the Guard's event loop, or nil while
// it runs or after a plain Close. A stopped loop has closed the group, so
// the kernel allows every exec.
func (g *Guard) Err() error {
	if p := g.loopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close releases the fanotify group: the kernel removes its marks and
// allows the pending events. Deciders still running are not waited for.
func (g *Guard) Close() error {
	g.closeOnce.Do(func() {
		g.closeErr = g.group.Close()
		<-g.loopDone
	})
	return g.closeErr
}

func (g *Guard) markFlag() uint {
	if g.cfg.Mark == MarkMount {
		return unix.FAN_MARK_MOUNT
	}
	return unix.FAN_MARK_FILESYSTEM
}

// mask is the event the Guard's marks ask for.
func (g *Guard) mask() uint64 {
	if g.cfg.Notify {
		return unix.FAN_OPEN_EXEC
	}
	return unix.FAN_OPEN_EXEC_PERM
}

func (g *Guard) failVerdict() Verdict {
	if g.cfg.FailClosed {
		return Deny
	}
	return Allow
}

// loop reads and dispatches events until the group is closed. On a read
// error it closes the group, so that the kernel fails open rather than
// leaving execs suspended with nobody to answer.
func (g *Guard) loop() {
	defer close(g.loopDone)
	buf := make([]byte, 64*1024)
	for {
		n, err := g.group.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				err = fmt.Errorf("fanotify guard: read events: %w", err)
				g.loopErr.Store(&err)
				_ = g.group.Close()
			}
			return
		}
		evs, err := decodeEvents(buf[:n])
		for _, ev := range evs {
			g.dispatch(ev)
		}
		if err != nil {
			// The rest of the buffer cannot be trusted; the events
			// in it stay pending until the group is closed, so close
			// it (fail open) rather than hang those execs.
			err = fmt.Errorf("fanotify guard: %w", err)
			g.loopErr.Store(&err)
			_ = g.group.Close()
			return
		}
	}
}

// dispatch answers one event, starting a decision if a slot is free.
func (g *Guard) dispatch(ev event) {
	if ev.fd < 0 {
		// FAN_Q_OVERFLOW: only a watcher's bounded queue overflows.
		g.errs.Add(1)
		return
	}
	if ev.mask&g.mask() == 0 {
		_ = unix.Close(int(ev.fd))
		return
	}
	if g.cfg.Notify {
		g.observe(ev)
		return
	}
	select {
	case g.sem <- struct{}{}:
	default:
		g.overloaded.Add(1)
		g.respond(ev.fd, g.failVerdict())
		_ = unix.Close(int(ev.fd))
		return
	}
	go g.decide(ev)
}

// request builds the request for ev. When there is none to make it
// returns false and the answer to give: the fail verdict for an event
// that cannot be inspected, allow for a file on no protected filesystem.
// The caller closes the event's descriptor then.
func (g *Guard) request(ev event) (Request, Verdict, bool) {
	fd := int(ev.fd)
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if err != nil {
		g.errs.Add(1)
		return Request{}, g.failVerdict(), false
	}
	g.mu.Lock()
	name, ok := g.byDev[st.Dev]
	root := g.byName[name].root
	g.mu.Unlock()
	if !ok {
		g.unmarked.Add(1)
		return Request{}, Allow, false
	}
	return Request{Container: name, PID: int(ev.pid), Path: containerPath(root, path), File: os.NewFile(uintptr(fd), path), Notify: g.cfg.Notify}, Allow, true
}

// observe asks the Decider about a watcher's event, on the calling
// goroutine, and counts its verdict.
func (g *Guard) observe(ev event) {
	req, _, ok := g.request(ev)
	if !ok {
		_ = unix.Close(int(ev.fd))
		return
	}
	defer req.File.Close()
	defer func() {
		if recover() != nil {
			g.panicked.Add(1)
		}
	}()
	if g.cfg.Decide(req) == Deny {
		g.denied.Add(1)
	} else {
		g.allowed.Add(1)
	}
}

// decide builds the request for ev, asks the Decider within the deadline
// and answers.
func (g *Guard) decide(ev event) {
	req, v, ok := g.request(ev)
	if !ok {
		g.respond(ev.fd, v)
		_ = unix.Close(int(ev.fd))
		<-g.sem
		return
	}
	type result struct {
		v        Verdict
		panicked bool
	}
	done := make(chan result, 1)
	go func() {
		// The slot and the file are held until the Decider returns,
		// so hung Deciders count against MaxInFlight.
		defer func() { <-g.sem }()
		defer req.File.Close()
		defer func() {
			if recover() != nil {
				done <- result{panicked: true}
			}
		}()
		done <- result{v: g.cfg.Decide(req)}
	}()
	timer := time.NewTimer(g.deadline)
	defer timer.Stop()
	select {
	case r := <-done:
		switch {
		case r.panicked:
			g.panicked.Add(1)
			g.respond(ev.fd, g.failVerdict())
		case r.v == Deny:
			g.denied.Add(1)
			g.respond(ev.fd, Deny)
		default:
			g.allowed.Add(1)
			g.respond(ev.fd, Allow)
		}
	case <-timer.C:
		g.timedOut.Add(1)
		g.respond(ev.fd, g.failVerdict())
	}
}

// respond writes the answer for the event whose file descriptor is fd.
// After Close the write fails, which is fine: the kernel has allowed the
// event when the group was released. A watcher's events take no answer.
func (g *Guard) respond(fd int32, v Verdict) {
	if g.cfg.Notify {
		return
	}
	resp := unix.FAN_ALLOW
	if v == Deny {
		resp = unix.FAN_DENY
	}
	var b [8]byte
	putResponse(b[:], fd, uint32(resp))
	_, _ = g.group.Write(b[:])
}

// containerPath turns the path of an event's file descriptor into the
// path inside the container. Files opened through the container's own
// mount read back as container paths already; files opened through the
// host's mount of the root read back under root.
func containerPath(root, p string) string {
	root = strings.TrimSuffix(root, "/")
	if root != "" && strings.HasPrefix(p, root+"/") {
		return p[len(root):]
	}
	return p
}
