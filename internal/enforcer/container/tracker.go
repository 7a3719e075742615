package container

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrNotFound is returned (wrapped) by a Source that has no such container.
var ErrNotFound = errors.New("no such container")

// EventKind says what a runtime event reports.
type EventKind int

// Runtime event kinds.
const (
	// EventStart: a container started.
	EventStart EventKind = iota + 1
	// EventStop: a container stopped (died) or was removed.
	EventStop
	// EventExec: an exec session started in a container.
	EventExec
)

// Event is a runtime's report about one container.
type Event struct {
	Kind EventKind
	ID   string
	Time time.Time
	// Exec describes the session of an EventExec.
	Exec *Exec
}

// Exec is an exec session (docker exec, kubectl exec).
type Exec struct {
	// ID is the runtime's exec id.
	ID string
	// Command is the session's command line.
	Command string
	// PID is the host pid of the session's first process (0: unknown).
	PID int
}

// Source is a container runtime the Tracker asks.
type Source interface {
	// Runtime names the runtime ("docker", "containerd").
	Runtime() string
	// List returns the running containers.
	List(ctx context.Context) ([]*Container, error)
	// Get returns one container, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Container, error)
	// Watch reports events from since on until ctx ends (returning nil) or
	// the runtime's stream fails.
	Watch(ctx context.Context, since time.Time, fn func(Event)) error
}

// ChangeKind says how the live view changed.
type ChangeKind int

// Change kinds.
const (
	Added ChangeKind = iota + 1
	Removed
	// ExecStarted: an exec session started in a tracked container.
	ExecStarted
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case ExecStarted:
		return "exec"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one change of the Tracker's view.
type Change struct {
	Kind ChangeKind
	// Container is a copy of the container (as it was when removed).
	Container *Container
	// Exec is the session of an ExecStarted change.
	Exec *Exec
}

// Tracker holds the live view of the host's containers.
type Tracker struct {
	sources []Source
	// errs is told about failures the tracker recovers from.
	errs func(error)

	mu         sync.Mutex
	containers map[string]*Container
	// notifyMu serialises the calls of the subscribers.
	notifyMu sync.Mutex
	subs     map[int]func(Change)
	nextSub  int
}

// NewTracker returns a tracker over the given runtimes; onError (may be
// nil) is told about runtime failures the tracker recovers from.
func NewTracker(onError func(error), sources ...Source) *Tracker {
	if onError == nil {
		onError = func(error) {}
	}
	return &Tracker{sources: sources, errs: onError, containers: map[string]*Container{}, subs: map[int]func(Change){}}
}

// Subscribe registers fn to be called, in order, with every later change.
// Calls are serialised; fn may read the Tracker but must return quickly,
// as it holds up the following changes. The returned function
// unsubscribes.
func (t *Tracker) Subscribe(fn func(Change)) (cancel func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.nextSub
	t.nextSub++
	t.subs[id] = fn
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.subs, id)
	}
}

// update runs f, which changes the view and returns the resulting changes,
// under the lock, then tells the subscribers outside it but in the order
// of the updates.
func (t *Tracker) update(f func() []Change) {
	t.mu.Lock()
	changes := f()
	ids := make([]int, 0, len(t.subs))
	for id := range t.subs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	subs := make([]func(Change), len(ids))
	for i, id := range ids {
		subs[i] = t.subs[id]
	}
	t.notifyMu.Lock()
	t.mu.Unlock()
	defer t.notifyMu.Unlock()
	for _, ch := range changes {
		for _, fn := range subs {
			fn(ch)
		}
	}
}

// Start seeds the view (Sync) and then follows every source's events in
// the background until ctx ends, re-syncing after a stream failure. It
// fails only when the seeding fails altogether.
func (t *Tracker) Start(ctx context.Context) error {
	since := time.Now()
	if err := t.Sync(ctx); err != nil {
		return err
	}
	for _, s := range t.sources {
		go t.watch(ctx, s, since)
	}
	return nil
}

// watch follows one source, reconnecting with back-off.
func (t *Tracker) watch(ctx context.Context, s Source, since time.Time) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.Watch(ctx, since, func(ev Event) { t.handle(ctx, s, ev) })
		if ctx.Err() != nil {
			return
		}
		t.errs(fmt.Errorf("%s events: %w (reconnecting in %s)", s.Runtime(), err, backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		since = time.Now()
		if err := t.Sync(ctx); err != nil {
			t.errs(err)
		}
	}
}

// handle applies one runtime event.
func (t *Tracker) handle(ctx context.Context, s Source, ev Event) {
	switch ev.Kind {
	case EventStart:
		c, err := s.Get(ctx, ev.ID)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.errs(fmt.Errorf("%s: container %s started: %w", s.Runtime(), ev.ID, err))
			}
			return
		}
		if c.PID <= 0 {
			return // a replayed start of a container that has stopped since
		}
		fillFromProc(c)
		t.update(func() []Change {
			old, ok := t.containers[c.ID]
			switch {
			case !ok:
				t.containers[c.ID] = c
				return []Change{{Kind: Added, Container: c.clone()}}
			case old.FromProc:
				t.containers[c.ID] = c // the runtime knows more than /proc
			}
			return nil
		})
	case EventStop:
		t.update(func() []Change {
			c, ok := t.containers[ev.ID]
			if !ok {
				return nil
			}
			delete(t.containers, ev.ID)
			return []Change{{Kind: Removed, Container: c.clone()}}
		})
	case EventExec:
		t.update(func() []Change {
			c, ok := t.containers[ev.ID]
			if !ok || ev.Exec == nil {
				return nil
			}
			ex := *ev.Exec
			return []Change{{Kind: ExecStarted, Container: c.clone(), Exec: &ex}}
		})
	}
}

// Sync rebuilds the view from the runtimes and /proc, telling subscribers
// what was added and removed. Containers that only /proc shows (a runtime
// the tracker has no source for, or one that does not answer) are added
// with what their cgroup paths say. Containers of a runtime that does not
// answer are kept. It fails only when no source answers and /proc cannot
// be read.
func (t *Tracker) Sync(ctx context.Context) error {
	seen := map[string]*Container{}
	failed := map[string]bool{}
	var errs []error
	for _, s := range t.sources {
		l, err := s.List(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s containers: %w", s.Runtime(), err))
			failed[s.Runtime()] = true
			continue
		}
		for _, c := range l {
			if _, dup := seen[c.ID]; !dup {
				seen[c.ID] = c
			}
		}
	}
	procs, procErr := ScanProc()
	if procErr != nil {
		errs = append(errs, procErr)
		if len(failed) == len(t.sources) {
			return errors.Join(errs...)
		}
	}
	for _, e := range errs {
		t.errs(e)
	}
	for id, ps := range procs {
		c, ok := seen[id]
		if !ok {
			c = containerFromProc(ps)
			seen[id] = c
		}
		if len(c.CgroupIDs) == 0 {
			c.CgroupIDs = cgroupIDsOf(c.PID, ps)
		}
	}
	t.update(func() []Change {
		var changes []Change
		for _, id := range sortedKeys(t.containers) {
			old := t.containers[id]
			if _, ok := seen[id]; ok {
				continue
			}
			if old.FromProc && procErr != nil || !old.FromProc && failed[old.Runtime] {
				continue // its runtime did not answer: keep what we know
			}
			delete(t.containers, id)
			changes = append(changes, Change{Kind: Removed, Container: old.clone()})
		}
		for _, id := range sortedKeys(seen) {
			old, ok := t.containers[id]
			switch {
			case !ok:
				t.containers[id] = seen[id]
				changes = append(changes, Change{Kind: Added, Container: seen[id].clone()})
			case old.FromProc && !seen[id].FromProc:
				t.containers[id] = seen[id]
			}
		}
		return changes
	})
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]*Container) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// containerFromProc describes a container only /proc knows.
func containerFromProc(ps []CgroupProcess) *Container {
	ref := ps[0].Ref
	c := &Container{ID: ref.ID, Runtime: ref.Runtime, PodUID: ref.PodUID, FromProc: true}
	c.PID = initOf(ps)
	if o, ok := overlayOf(c.PID); ok {
		c.UpperDir, c.LowerDirs = o.upper, o.lowers
	}
	return c
}

// cgroupIDsOf returns the cgroup ids of the container's init (or first)
// process among ps.
func cgroupIDsOf(pid int, ps []CgroupProcess) []uint64 {
	m, err := findCgroupMounts()
	if err != nil {
		return nil
	}
	for _, p := range ps {
		if pid == 0 || p.PID == pid {
			ids, _ := cgroupIDs(p.Cgroups, m)
			return ids
		}
	}
	return nil
}

// fillFromProc sets a freshly started container's cgroup ids from its init
// process.
func fillFromProc(c *Container) {
	if c.PID > 0 && len(c.CgroupIDs) == 0 {
		c.CgroupIDs, _ = CgroupIDs(c.PID)
	}
}

// Containers returns a copy of every tracked container with its current
// processes (from one scan of /proc), sorted by id.
func (t *Tracker) Containers() []*Container {
	procs, _ := ScanProc()
	t.mu.Lock()
	out := make([]*Container, 0, len(t.containers))
	for _, c := range t.containers {
		out = append(out, c.clone())
	}
	t.mu.Unlock()
	for _, c := range out {
		c.Processes = nil
		for _, p := range procs[c.ID] {
			c.Processes = append(c.Processes, p.Process)
		}
		slices.SortFunc(c.Processes, func(a, b Process) int { return a.PID - b.PID })
	}
	slices.SortFunc(out, func(a, b *Container) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// Container returns a copy of the tracked container with the id (full, or
// a unique prefix of at least 12 digits).
func (t *Tracker) Container(id string) (*Container, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.containers[id]; ok {
		return c.clone(), true
	}
	if len(id) < 12 {
		return nil, false
	}
	var found *Container
	for cid, c := range t.containers {
		if len(cid) >= len(id) && cid[:len(id)] == id {
			if found != nil {
				return nil, false
			}
			found = c
		}
	}
	if found == nil {
		return nil, false
	}
	return found.clone(), true
}

// ByPID returns the tracked container a process runs in.
func (t *Tracker) ByPID(pid int) (*Container, bool) {
	lines, err := readProcCgroup(pid)
	if err != nil {
		return nil, false
	}
	ref, ok := ContainerOf(lines)
	if !ok {
		return nil, false
	}
	return t.Container(ref.ID)
}

// ExecSession is the package's ExecSession, using the init pid the runtime
// reported for the process's container (which also covers containers that
// share the host pid namespace).
func (t *Tracker) ExecSession(pid int) (bool, error) {
	init := 0
	if c, ok := t.ByPID(pid); ok {
		init = c.PID
	}
	return execSession(pid, init)
}
