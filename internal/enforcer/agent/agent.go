// Package agent is `mamori enforcer`: the host agent that assembles the
// enforcer's mechanism packages into runtime protection of the host's
// containers.
//
// At start it probes the kernel (preflight), reconciles what an earlier
// run left behind (pids limits, firewall tables, read-only mounts; see the state file in
// the state directory) and follows the host's containers (container
// tracker, seeded from the runtime and /proc). For each container it
// computes the runtime policies in force (runtimepolicy.Set.For) and, for
// protected containers only:
//
//   - watches its cgroup ids in the eBPF exec monitor (report mode) and
//     decides each exec seen: detections, kills for reverse shells and
//     miners in enforce mode, learning;
//   - marks its root filesystem in the fanotify guard when an exec control
//     applies in enforce mode, and answers each exec before it happens
//     with runtimepolicy.Effective.Exec: deny for a block decision. When
//     every exec control is in audit mode the root is marked in the
//     fanotify watcher instead (notification events): execs never wait
//     for the agent, which decides and reports them just after they start;
//   - sets its pids.max for an enforce-mode forkGuard (and reports when the
//     count reaches an audit-mode limit);
//   - applies an enforce-mode firewall in its network namespace;
//   - reports writes to fileIntegrity files (fanotify notification
//     events) and, for blockWrites in enforce mode, makes those files
//     read-only in its mount namespace (package fim).
//
// Unprotected and bypassed containers are neither watched nor marked.
// Policy changes (SetBundle, or a standalone policy file that changes)
// apply to running containers at once. Decisions become fleet.Events that
// pass through an events.Limiter to a sink (the local event log or the
// fleet spool). On exit the agent removes the marks, limits and firewall
// tables it applied. A control whose mechanism the host lacks is never
// claimed: Status reports it as not enforceable, with what it degrades to.
//
// Memory: the agent keeps little, so its resident size is mostly the
// program's own pages. What it controls is kept small: the exec monitor's
// ring buffer (monitorRingBytes, resident twice: the kernel maps it twice),
// a soft limit on the Go runtime's memory (DefaultMemoryLimit, see
// Config.MemoryLimit), and the start-up garbage, returned to the kernel
// once the containers are applied.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/bpf"
	"github.com/mamorisec/mamori/internal/enforcer/container"
	"github.com/mamorisec/mamori/internal/enforcer/container/docker"
	"github.com/mamorisec/mamori/internal/enforcer/events"
	"github.com/mamorisec/mamori/internal/enforcer/fanotify"
	"github.com/mamorisec/mamori/internal/enforcer/fim"
	"github.com/mamorisec/mamori/internal/enforcer/firewall"
	"github.com/mamorisec/mamori/internal/enforcer/limits"
	"github.com/mamorisec/mamori/internal/enforcer/preflight"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// Capability names the agent depends on (see package preflight).
const (
	preflightExecEvents = preflight.ExecEventsTPBTF
	preflightFanotify   = preflight.PreExecFanotify
	preflightPids       = preflight.PidsCgroup
	preflightNFT        = preflight.NFTables
)

// sessionRetries bounds the retries of an exec-session check whose
// process's parent is exiting (1 ms apart).
const sessionRetries = 20

// DefaultMemoryLimit is the soft limit (debug.SetMemoryLimit) on the Go
// runtime's memory that Run sets when Config.MemoryLimit is 0 and the
// GOMEMLIMIT environment variable is unset: the garbage collector works
// harder rather than let the heap grow past it. The agent's heap is a few
// MiB when idle.
const DefaultMemoryLimit = 32 << 20

// monitorRingBytes is the exec monitor's kernel ring buffer: about 1800
// exec events, drained every 64 events or 50 ms.
const monitorRingBytes = 1 << 20

// monitorEventBuffer is the capacity of the exec monitor's event channel.
const monitorEventBuffer = 1024

// LearnedFile is the file in the state directory holding the learned
// policies (a JSON list, runtimepolicy.ExportBundle).
const LearnedFile = "learned-policies.json"

// Config configures an Agent.
type Config struct {
	// Hostname names the host in events and policies; os.Hostname when
	// empty.
	Hostname string
	// Version is the agent's version, for Status.
	Version string
	// AgentID returns the fleet agent id for events and status (empty
	// standalone); may be nil.
	AgentID func() string
	// DockerSocket is the Docker Engine socket; docker.DefaultSocket when
	// empty.
	DockerSocket string
	// StateDir holds the state file and the learned policies. Required.
	StateDir string
	// Sink receives every event record. Required.
	Sink func(fleet.Event) error
	// Bundle is the policy bundle to start with; nil starts with no
	// policy (until SetBundle or PolicyFile).
	Bundle *fleet.PolicyBundle
	// PolicyFile, when set, is a standalone policy file (ParsePolicyFile)
	// read at start and re-read whenever its modification time changes
	// (polled every PollInterval).
	PolicyFile string
	// PollInterval is how often the policy file and the fork counters are
	// checked; default 1s.
	PollInterval time.Duration
	// Capabilities, when set, are the host's preflight results (probed
	// by the caller, or changed by tests of degraded hosts); nil runs
	// preflight.Run when Run starts.
	Capabilities []fleet.Capability
	// Limiter tunes event de-duplication and rate limits.
	Limiter events.Config
	// EventsBuffered reports how many events wait for delivery (the
	// spool), for Status; may be nil.
	EventsBuffered func() int
	// Logger; slog.Default when nil.
	Logger *slog.Logger
	// MemoryLimit is the soft limit on the Go runtime's memory set while
	// Run runs (debug.SetMemoryLimit); 0 means DefaultMemoryLimit unless
	// GOMEMLIMIT is set, and a negative value leaves the limit alone.
	MemoryLimit int64
}

// protected is the agent's view of one tracked container.
type protected struct {
	c   *container.Container
	eff *runtimepolicy.Effective
	// watched are the cgroup ids in the exec monitor; marked is set when
	// the fanotify guard (or, with async, the watcher) marks its root.
	watched []uint64
	marked  bool
	async   bool
	// limit is the pids.max the agent set (0: none); pids is its group.
	limit int64
	pids  limits.Group
	// audit-mode fork limit: the count crossed it already.
	forkAudit     int64
	forkAuditSeen bool
	hits          int64
	firewalled    bool
	// fimWatched: the file-integrity watcher marks its root; locked are
	// the files made read-only in its mount namespace.
	fimWatched bool
	locked     []string
}

// Agent is a running enforcer.
type Agent struct {
	cfg  Config
	host string
	log  *slog.Logger

	caps []fleet.Capability
	have map[string]bool

	limiter *events.Limiter
	learner *runtimepolicy.Learner
	client  *docker.Client
	tracker *container.Tracker
	monitor *bpf.Monitor

	bundles chan fleet.PolicyBundle

	mu          sync.RWMutex
	set         *runtimepolicy.Set
	bundle      fleet.PolicyBundle
	guard       *fanotify.Guard
	watcher     *fanotify.Guard // notification events, for audit-only containers
	failClosed  bool
	prot        map[string]*protected
	byCgroup    map[uint64]string
	state       stateFile
	notes       map[string]string // container id → degradation note (firewall)
	fimw        *fim.Watcher      // file-integrity watcher; nil when unavailable
	fimPatterns []string          // fileIntegrity globs of the bundle's policies

	sinkMu sync.Mutex

	sessions    sessionCache
	images      imageCache
	execParents parentCache
}

// New checks cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("enforcer agent: no state directory")
	}
	if cfg.Sink == nil {
		return nil, errors.New("enforcer agent: no event sink")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("enforcer agent: state directory: %w", err)
	}
	if cfg.DockerSocket == "" {
		cfg.DockerSocket = docker.DefaultSocket
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{
		cfg:      cfg,
		host:     host,
		log:      log,
		limiter:  events.NewLimiter(cfg.Limiter),
		learner:  runtimepolicy.NewLearner(0, 0),
		bundles:  make(chan fleet.PolicyBundle, 1),
		prot:     map[string]*protected{},
		byCgroup: map[uint64]string{},
		notes:    map[string]string{},
	}
	if cfg.Capabilities != nil {
		a.setCaps(cfg.Capabilities)
	}
	a.client = docker.New(cfg.DockerSocket)
	a.tracker = container.NewTracker(func(err error) { log.Warn("enforcer: container runtime", "err", err) }, container.NewDockerSource(a.client))
	if cfg.Bundle != nil {
		if err := a.compile(*cfg.Bundle); err != nil {
			return nil, fmt.Errorf("enforcer agent: %w", err)
		}
	}
	if cfg.PolicyFile != "" {
		b, err := ReadPolicyFile(cfg.PolicyFile)
		if err != nil {
			return nil, fmt.Errorf("enforcer agent: %w", err)
		}
		if err := a.compile(b); err != nil {
			return nil, fmt.Errorf("enforcer agent: policy file %s: %w", cfg.PolicyFile, err)
		}
	}
	return a, nil
}

// compile replaces the policy set.
func (a *Agent) compile(b fleet.PolicyBundle) error {
	set, err := runtimepolicy.Compile(b, time.Now())
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.set, a.bundle, a.fimPatterns = set, b, fimPatterns(b)
	a.mu.Unlock()
	return nil
}

// setCaps records the host's capabilities.
func (a *Agent) setCaps(caps []fleet.Capability) {
	have := map[string]bool{}
	for _, c := range caps {
		have[c.Name] = c.Available
	}
	a.mu.Lock()
	a.caps, a.have = caps, have
	a.mu.Unlock()
}

// SetBundle hands the agent a new policy bundle; it applies to the running
// containers within a poll interval. A bundle that does not compile is
// logged and the previous one stays in force.
func (a *Agent) SetBundle(b fleet.PolicyBundle) {
	select {
	case <-a.bundles:
	default:
	}
	a.bundles <- b
}

func (a *Agent) agentID() string {
	if a.cfg.AgentID == nil {
		return ""
	}
	return a.cfg.AgentID()
}

// Capabilities returns the preflight results (after Run started).
func (a *Agent) Capabilities() []fleet.Capability {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]fleet.Capability(nil), a.caps...)
}

// Status returns the agent's heartbeat: the host's capabilities, followed
// by one "enforce.<control>" entry per enforce-mode control in force
// saying whether this host enforces it or what it degrades to.
func (a *Agent) Status() fleet.Heartbeat {
	a.mu.RLock()
	defer a.mu.RUnlock()
	hb := fleet.Heartbeat{AgentID: a.agentID(), Hostname: a.host, Version: a.cfg.Version, Containers: len(a.prot)}
	hb.Capabilities = append(hb.Capabilities, a.caps...)
	active := map[string]bool{}
	for _, p := range a.prot {
		if p.eff == nil {
			continue
		}
		for _, x := range p.eff.Active {
			if x.Mode == runtimepolicy.Enforce {
				active[x.Control] = true
			}
		}
	}
	hb.Capabilities = append(hb.Capabilities, controlCapabilities(active, func(n string) bool { return a.have[n] })...)
	ids := make([]string, 0, len(a.notes))
	for id := range a.notes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		hb.Capabilities = append(hb.Capabilities, fleet.Capability{Name: "enforce.firewall." + shortID(id), Detail: a.notes[id]})
	}
	if a.set != nil {
		hb.PolicyRevision = a.set.Revision()
	}
	if a.cfg.EventsBuffered != nil {
		hb.EventsBuffered = a.cfg.EventsBuffered()
	}
	return hb
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Inventory returns the host's containers with the policies protecting
// each.
func (a *Agent) Inventory() fleet.Inventory {
	inv := fleet.Inventory{AgentID: a.agentID(), Host: a.host, Time: time.Now().UTC()}
	for _, c := range a.tracker.Containers() {
		fc := c.Fleet()
		a.mu.RLock()
		if p, ok := a.prot[c.ID]; ok && p.eff != nil {
			fc.Protected = append([]string(nil), p.eff.Policies...)
		}
		a.mu.RUnlock()
		inv.Containers = append(inv.Containers, fc)
	}
	return inv
}

// Run runs the agent until ctx ends, then removes what it applied. It
// fails when the container runtime cannot be followed at all.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Capabilities == nil {
		a.setCaps(preflight.Run(ctx))
	}
	a.mu.RLock()
	have := maps.Clone(a.have)
	a.mu.RUnlock()

	st, err := loadState(a.cfg.StateDir)
	if err != nil {
		a.log.Warn("enforcer: state file unreadable, starting afresh", "err", err)
	}
	a.state = st
	a.reconcile()

	if lim := a.memoryLimit(); lim > 0 {
		prev := debug.SetMemoryLimit(lim)
		defer debug.SetMemoryLimit(prev)
	}
	if have[preflightExecEvents] {
		m, err := bpf.Open(bpf.Options{RingBufferBytes: monitorRingBytes, EventBuffer: monitorEventBuffer})
		if err != nil {
			a.log.Warn("enforcer: exec monitor unavailable: detection off", "err", err)
		} else {
			a.monitor = m
			defer m.Close()
		}
	}
	defer a.closeGuard()
	a.startFIM()
	defer a.closeFIM()

	defer a.client.Close()
	changes := make(chan container.Change, 1024)
	cancelSub := a.tracker.Subscribe(func(c container.Change) {
		if c.Kind != container.ExecStarted {
			changes <- c
		}
	})
	defer cancelSub()
	tctx, cancelTracker := context.WithCancel(ctx)
	defer cancelTracker()
	if err := a.tracker.Start(tctx); err != nil {
		return fmt.Errorf("enforcer: following containers: %w", err)
	}
	defer a.cleanup()

	var evs <-chan bpf.Event
	if a.monitor != nil {
		evs = a.monitor.Events()
	}
	var fileMod time.Time
	if a.cfg.PolicyFile != "" {
		if fi, err := os.Stat(a.cfg.PolicyFile); err == nil {
			fileMod = fi.ModTime()
		}
	}
	tick := time.NewTicker(a.cfg.PollInterval)
	defer tick.Stop()
	lastCompile, lastLearned := time.Now(), time.Now()
	a.applyAll()
	// Start-up (preflight probes, the runtime's container list, package
	// initialisation) leaves garbage the runtime would return to the
	// kernel only slowly.
	debug.FreeOSMemory()
	for {
		select {
		case <-ctx.Done():
			a.writeLearned()
			for _, e := range a.limiter.Drain() {
				a.sink(e)
			}
			return nil
		case ch := <-changes:
			switch ch.Kind {
			case container.Added:
				a.apply(ch.Container)
			case container.Removed:
				a.forget(ch.Container.ID)
			}
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			a.onExec(ev)
		case b := <-a.bundles:
			if err := a.compile(b); err != nil {
				a.log.Error("enforcer: policy bundle refused, keeping the previous one", "err", err)
				continue
			}
			lastCompile = time.Now()
			a.applyAll()
		case now := <-tick.C:
			if a.cfg.PolicyFile != "" {
				if fi, err := os.Stat(a.cfg.PolicyFile); err == nil && !fi.ModTime().Equal(fileMod) {
					fileMod = fi.ModTime()
					b, err := ReadPolicyFile(a.cfg.PolicyFile)
					if err == nil {
						err = a.compile(b)
					}
					if err != nil {
						a.log.Error("enforcer: policy file refused, keeping the previous policies", "err", err)
					} else {
						lastCompile = now
						a.applyAll()
					}
				}
			}
			// Schedules come due with time: recompile every minute.
			if now.Sub(lastCompile) > time.Minute {
				lastCompile = now
				a.mu.RLock()
				b := a.bundle
				a.mu.RUnlock()
				if err := a.compile(b); err == nil {
					a.applyAll()
				}
			}
			a.checkForks()
			for _, p := range a.execParents.expired(now.Add(-goneWait)) {
				a.resume(p, 0, false)
			}
			for _, e := range a.limiter.Flush() {
				a.sink(e)
			}
			if now.Sub(lastLearned) > 10*time.Second {
				lastLearned = now
				a.writeLearned()
			}
		}
	}
}

// memoryLimit is the soft memory limit Run sets; 0 for none.
func (a *Agent) memoryLimit() int64 {
	switch {
	case a.cfg.MemoryLimit > 0:
		return a.cfg.MemoryLimit
	case a.cfg.MemoryLimit < 0 || os.Getenv("GOMEMLIMIT") != "":
		return 0
	}
	return DefaultMemoryLimit
}

// sink hands a record to the configured sink.
func (a *Agent) sink(e fleet.Event) {
	a.sinkMu.Lock()
	defer a.sinkMu.Unlock()
	if err := a.cfg.Sink(e); err != nil {
		a.log.Error("enforcer: event lost", "err", err, "policy", e.Policy, "control", e.Control)
	}
}

// emit passes an event through the limiter.
func (a *Agent) emit(e fleet.Event) {
	e.Time = time.Now().UTC()
	e.AgentID = a.agentID()
	for _, r := range a.limiter.Add(e) {
		a.sink(r)
	}
}

// reconcile undoes the pids limits and firewall tables a previous run left.
func (a *Agent) reconcile() {
	for dir, prev := range a.state.Pids {
		g := limits.Group{Dir: dir, Version: 2}
		if isV1(dir) {
			g.Version = 1
		}
		if _, err := os.Stat(dir); err == nil {
			if err := restoreMax(g, prev); err != nil {
				a.log.Warn("enforcer: stale pids limit not removed", "dir", dir, "err", err)
			}
		}
		delete(a.state.Pids, dir)
	}
	for id, pid := range a.state.Firewalls {
		if err := firewall.Remove(pid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Debug("enforcer: stale firewall not removed (container gone?)", "container", id, "err", err)
		}
		delete(a.state.Firewalls, id)
	}
	for id, l := range a.state.Locks {
		if ns, err := fim.MountNS(l.PID); err != nil || ns != l.MountNS {
			a.log.Debug("enforcer: stale read-only files dropped (container gone)", "container", id, "err", err)
		} else if err := fim.Unlock(l.PID, l.Paths); err != nil {
			a.log.Debug("enforcer: stale read-only files not restored (container gone?)", "container", id, "err", err)
		}
		delete(a.state.Locks, id)
	}
	a.saveState()
}

// isV1 reports whether a pids cgroup directory is in the v1 hierarchy.
func isV1(dir string) bool {
	return strings.HasPrefix(dir, "/sys/fs/cgroup/pids/")
}

func restoreMax(g limits.Group, prev int64) error {
	if prev < 0 {
		return g.ClearMax()
	}
	return g.SetMax(prev)
}

func (a *Agent) saveState() {
	if err := saveState(a.cfg.StateDir, a.state); err != nil {
		a.log.Warn("enforcer: state file not written", "err", err)
	}
}

// applyAll recomputes every tracked container's policies.
func (a *Agent) applyAll() {
	a.ensureGuard()
	seen := map[string]bool{}
	for _, c := range a.tracker.Containers() {
		seen[c.ID] = true
		a.apply(c)
	}
	a.mu.RLock()
	var gone []string
	for id := range a.prot {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	a.mu.RUnlock()
	for _, id := range gone {
		a.forget(id)
	}
}

// ensureGuard (re)creates the fanotify guard with the group's fail-closed
// setting.
func (a *Agent) ensureGuard() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.have[preflightFanotify] {
		return
	}
	if a.watcher == nil {
		w, err := fanotify.New(fanotify.Config{Decide: a.decide, Notify: true})
		if err != nil {
			a.log.Warn("enforcer: fanotify watcher unavailable: audit-mode exec controls use permission events", "err", err)
		} else {
			a.watcher = w
		}
	}
	fc := a.set != nil && a.set.Settings().FailClosed
	if a.guard != nil && fc == a.failClosed {
		return
	}
	if a.guard != nil {
		_ = a.guard.Close()
		a.guard = nil
		for _, p := range a.prot {
			if !p.async {
				p.marked = false
			}
		}
	}
	g, err := fanotify.New(fanotify.Config{Decide: a.decide, FailClosed: fc})
	if err != nil {
		a.log.Error("enforcer: fanotify guard unavailable: exec controls degrade to detect", "err", err)
		a.have[preflightFanotify] = false
		return
	}
	a.guard, a.failClosed = g, fc
}

func (a *Agent) closeGuard() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.guard != nil {
		_ = a.guard.Close()
		a.guard = nil
	}
	if a.watcher != nil {
		_ = a.watcher.Close()
		a.watcher = nil
	}
}

// group returns the fanotify group that marks (or would mark) a
// container: the watcher for async, else the guard; nil when it is
// unavailable.
func (a *Agent) group(async bool) *fanotify.Guard {
	if async {
		return a.watcher
	}
	return a.guard
}

// apply brings one container in line with the policies.
func (a *Agent) apply(c *container.Container) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var eff *runtimepolicy.Effective
	if a.set != nil {
		w := workload(c, a.host)
		if a.set.Protects(w) && !a.set.Bypassed(w) {
			eff = a.set.For(w)
		}
	}
	p := a.prot[c.ID]
	if p == nil {
		if eff == nil {
			return
		}
		p = &protected{}
		a.prot[c.ID] = p
	}
	p.c, p.eff = c, eff
	if eff == nil {
		a.release(c.ID, p)
		delete(a.prot, c.ID)
		return
	}
	// Exec monitor.
	if a.monitor != nil && len(p.watched) == 0 {
		for _, id := range c.CgroupIDs {
			if err := a.monitor.Watch(id, bpf.ActionReport); err != nil {
				a.log.Warn("enforcer: cgroup not watched", "container", c.Name, "err", err)
				continue
			}
			p.watched = append(p.watched, id)
			a.byCgroup[id] = c.ID
		}
	}
	// Pre-exec guard, or the watcher when no exec control enforces (the
	// guard stands in if the watcher is unavailable).
	async := auditOnly(eff) && a.watcher != nil
	want := needsGuard(eff) && a.group(async) != nil && c.MergedDir != ""
	if p.marked && (!want || p.async != async) {
		if g := a.group(p.async); g != nil {
			_ = g.Unprotect(c.ID)
		}
		p.marked = false
	}
	if want && !p.marked {
		if err := a.group(async).Protect(c.ID, c.MergedDir); err != nil {
			a.log.Warn("enforcer: container root not marked: exec controls degrade to detect", "container", c.Name, "err", err)
		} else {
			p.marked, p.async = true, async
		}
	}
	a.applyFork(p)
	a.applyFirewall(p)
	a.applyFIM(p)
}

func (a *Agent) applyFork(p *protected) {
	lim, ok := p.eff.ForkLimit()
	enforce := ok && lim.Mode == runtimepolicy.Enforce && a.have[preflightPids]
	p.forkAudit = 0
	if ok && !enforce {
		p.forkAudit = int64(lim.Max)
	}
	switch {
	case enforce && p.limit != int64(lim.Max):
		g := p.pids
		if g.Dir == "" {
			var err error
			if g, err = limits.Find(p.c.PID); err != nil {
				a.log.Warn("enforcer: fork guard not applied", "container", p.c.Name, "err", err)
				return
			}
		}
		if _, recorded := a.state.Pids[g.Dir]; !recorded {
			prev, err := g.Max()
			if err != nil {
				a.log.Warn("enforcer: fork guard not applied", "container", p.c.Name, "err", err)
				return
			}
			a.state.Pids[g.Dir] = prev
		}
		if err := g.SetMax(int64(lim.Max)); err != nil {
			a.log.Warn("enforcer: fork guard not applied", "container", p.c.Name, "err", err)
			return
		}
		p.pids, p.limit = g, int64(lim.Max)
		p.hits, _ = g.MaxHits()
		a.saveState()
	case !enforce && p.limit != 0:
		a.restoreFork(p)
	}
	if p.forkAudit > 0 && p.pids.Dir == "" {
		p.pids, _ = limits.Find(p.c.PID)
	}
}

func (a *Agent) restoreFork(p *protected) {
	if p.limit == 0 {
		return
	}
	prev, ok := a.state.Pids[p.pids.Dir]
	if !ok {
		prev = -1
	}
	if err := restoreMax(p.pids, prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("enforcer: pids limit not restored", "container", p.c.Name, "err", err)
	}
	delete(a.state.Pids, p.pids.Dir)
	p.limit = 0
	a.saveState()
}

func (a *Agent) applyFirewall(p *protected) {
	pol, ok, note := firewallPolicy(p.eff.Firewall())
	if note != "" {
		a.notes[p.c.ID] = note
	} else {
		delete(a.notes, p.c.ID)
	}
	if ok && !a.have[preflightNFT] {
		a.notes[p.c.ID] = "nftables unavailable: firewall not applied"
		ok = false
	}
	switch {
	case ok:
		if err := firewall.Apply(p.c.PID, pol); err != nil {
			a.notes[p.c.ID] = "firewall not applied: " + err.Error()
			return
		}
		p.firewalled = true
		a.state.Firewalls[p.c.ID] = p.c.PID
		a.saveState()
	case p.firewalled:
		a.removeFirewall(p)
	}
}

func (a *Agent) removeFirewall(p *protected) {
	if err := firewall.Remove(p.c.PID); err != nil {
		a.log.Debug("enforcer: firewall not removed", "container", p.c.Name, "err", err)
	}
	p.firewalled = false
	delete(a.state.Firewalls, p.c.ID)
	a.saveState()
}

// release undoes everything applied to a container (a.mu held).
func (a *Agent) release(id string, p *protected) {
	for _, cg := range p.watched {
		if a.monitor != nil {
			_ = a.monitor.Unwatch(cg)
		}
		delete(a.byCgroup, cg)
	}
	p.watched = nil
	if g := a.group(p.async); p.marked && g != nil {
		_ = g.Unprotect(id)
	}
	p.marked = false
	a.restoreFork(p)
	if p.firewalled {
		a.removeFirewall(p)
	}
	a.releaseFIM(id, p)
	delete(a.notes, id)
}

// forget drops a container that stopped.
func (a *Agent) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.prot[id]
	if !ok {
		return
	}
	a.release(id, p)
	delete(a.prot, id)
}

// cleanup removes everything the agent applied, at exit.
func (a *Agent) cleanup() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, p := range a.prot {
		a.release(id, p)
	}
	a.prot = map[string]*protected{}
	a.saveState()
}

// checkForks reads the pids counters of containers with a fork limit.
func (a *Agent) checkForks() {
	a.mu.Lock()
	var evs []fleet.Event
	for _, p := range a.prot {
		if p.pids.Dir == "" || (p.limit == 0 && p.forkAudit == 0) {
			continue
		}
		lim, _ := p.eff.ForkLimit()
		d := runtimepolicy.Decision{Policy: lim.Policy, Control: runtimepolicy.ControlForkGuard}
		proc := fleet.Process{PID: p.c.PID}
		if p.limit > 0 {
			hits, err := p.pids.MaxHits()
			if err == nil && hits > p.hits {
				d.Action = runtimepolicy.Block
				d.Reason = fmt.Sprintf("%d forks refused at the limit of %d processes", hits-p.hits, p.limit)
				p.hits = hits
				evs = append(evs, newEvent(d, fleet.StatusBlock, p.c, a.host, proc, nil, ""))
			}
			continue
		}
		cur, err := p.pids.Current()
		if err != nil {
			continue
		}
		if cur >= p.forkAudit && !p.forkAuditSeen {
			d.Action = runtimepolicy.Detect
			d.Reason = fmt.Sprintf("%d processes, reaching the limit of %d", cur, p.forkAudit)
			evs = append(evs, newEvent(d, fleet.StatusDetect, p.c, a.host, proc, nil, ""))
		}
		p.forkAuditSeen = cur >= p.forkAudit
	}
	a.mu.Unlock()
	for _, e := range evs {
		a.emit(e)
	}
}

// lookup returns the protected container with the id.
func (a *Agent) lookup(id string) (*container.Container, *runtimepolicy.Effective, bool, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	p, ok := a.prot[id]
	if !ok || p.eff == nil {
		return nil, nil, false, false
	}
	return p.c, p.eff, p.marked, true
}

// execContext fills what eff's controls need to decide an exec of path
// by pid in c. Facts that cannot be read fail open: not an exec session,
// from the image.
// resolved says that the guard or the watcher asks: path has no symlinks,
// so the image cache may answer, and an undecided exec session is retried
// (the guard's process waits for the answer). A process that exited
// before the watcher read its event is judged from the parent its exec
// event reported (goneSession); pending says that event has not arrived
// yet, and ExecSession is then left false.
func (a *Agent) execContext(c *container.Container, eff *runtimepolicy.Effective, pid int, path string, args []string, resolved bool) (x runtimepolicy.ExecContext, pending bool) {
	x = runtimepolicy.ExecContext{Path: path, Args: args, FromImage: true}
	if eff.Has(runtimepolicy.ControlBlockExec) {
		// The first process of a docker exec is forked by a runc stage
		// that exits at once: until the kernel re-parents it, its
		// parent cannot be read. The guard (whose process waits) retries
		// briefly, then fails as the group says (open: not a session).
		retries := 0
		if resolved {
			retries = sessionRetries
		}
		s, err := a.sessions.lookup(pid, a.tracker.ExecSession, a.sameContainer)
		for i := 0; err != nil && i < retries && !exited(pid); i++ {
			time.Sleep(time.Millisecond)
			s, err = a.sessions.lookup(pid, a.tracker.ExecSession, a.sameContainer)
		}
		if err != nil && resolved && exited(pid) {
			ppid, ok := a.execParents.get(pid)
			if !ok {
				pending = true
			} else {
				s, err = a.goneSession(c, pid, ppid)
			}
		}
		if err != nil && !pending {
			a.mu.RLock()
			s = a.failClosed
			a.mu.RUnlock()
			a.log.Debug("enforcer: exec session undecided", "pid", pid, "err", err, "session", s)
		}
		x.ExecSession = s
	}
	if eff.Has(runtimepolicy.ControlDriftPrevention) {
		var from bool
		var err error
		if resolved {
			from, err = a.images.fromImage(c, path)
		} else {
			from, err = container.FromImage(c, path)
		}
		if err != nil {
			from = !errors.Is(err, fs.ErrNotExist)
		}
		x.FromImage = from
	}
	return x, pending
}

// exited reports whether process pid is gone.
func exited(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, fs.ErrNotExist)
}

// goneWait bounds how long a watcher's decision waits for the exec event
// of a process that exited first: the exec monitor delivers events within
// its MaxLatency (50 ms). Waiting decisions are finished by onExec, or as
// undecided by the poll after goneWait.
const goneWait = time.Second

// goneSession decides whether pid, a process of c that exited before the
// watcher read its exec, was in an exec session, from the parent ppid its
// exec event (eBPF monitor) reported: a parent in the same container
// passes on its own answer; a parent outside it made pid the top of its
// process tree, which is an exec session unless pid is the container's
// init.
func (a *Agent) goneSession(c *container.Container, pid, ppid int) (bool, error) {
	if pc, ok := a.tracker.ByPID(ppid); ok && pc.ID == c.ID {
		return a.sessions.lookup(ppid, a.tracker.ExecSession, a.sameContainer)
	}
	return pid != c.PID, nil
}

// resume finishes a watcher's decision that waited for the parent ppid of
// its process (ok false: it never came).
func (a *Agent) resume(p pendingExec, ppid int, ok bool) {
	var s bool
	err := fmt.Errorf("process %d exited before its exec was judged, and no exec event gave its parent", p.pid)
	if ok {
		s, err = a.goneSession(p.c, p.pid, ppid)
	}
	if err != nil {
		a.mu.RLock()
		s = a.failClosed
		a.mu.RUnlock()
		a.log.Debug("enforcer: exec session undecided", "pid", p.pid, "err", err, "session", s)
	}
	p.x.ExecSession = s
	a.finish(p.c, p.eff, p.x, p.pid)
}

// sameContainer reports whether processes p and q run in the same
// tracked container.
func (a *Agent) sameContainer(p, q int) bool {
	cp, ok := a.tracker.ByPID(p)
	if !ok {
		return false
	}
	cq, ok := a.tracker.ByPID(q)
	return ok && cp.ID == cq.ID
}

// parents reads the parent chain of pid inside its container, nearest
// first (at most 8).
func parents(pid int, cid string, tr *container.Tracker) []fleet.Process {
	var out []fleet.Process
	p, err := container.ReadProcess(pid)
	if err != nil {
		return nil
	}
	for ppid := p.PPID; ppid > 1 && len(out) < 8; {
		pp, err := container.ReadProcess(ppid)
		if err != nil {
			break
		}
		out = append(out, fleet.Process{PID: pp.PID, Path: pp.Exe, Args: pp.Args, UID: pp.UID})
		if c, ok := tr.ByPID(ppid); !ok || c.ID != cid {
			break // the first parent outside the container ends the chain
		}
		ppid = pp.PPID
	}
	return out
}

// decide is the Decider of the fanotify guard and of the watcher (whose
// verdicts are not enforced: its containers' exec controls only audit).
func (a *Agent) decide(req fanotify.Request) fanotify.Verdict {
	c, eff, _, ok := a.lookup(req.Container)
	if !ok {
		return fanotify.Allow
	}
	x, pending := a.execContext(c, eff, req.PID, req.Path, nil, true)
	if pending && req.Notify {
		// The process exited before the watcher read its exec: the
		// decision waits for the exec event giving its parent.
		p := pendingExec{c: c, eff: eff, x: x, pid: req.PID, since: time.Now()}
		if ppid, found, parked := a.execParents.park(p); !parked {
			a.resume(p, ppid, found)
		}
		return fanotify.Allow
	}
	return a.finish(c, eff, x, req.PID)
}

// finish decides the exec x of pid in c with the facts gathered, and
// reports it when the guard acts on the decision.
func (a *Agent) finish(c *container.Container, eff *runtimepolicy.Effective, x runtimepolicy.ExecContext, pid int) fanotify.Verdict {
	d := eff.Exec(x)
	if !guardActs(d) {
		return fanotify.Allow
	}
	proc := fleet.Process{PID: pid, Path: x.Path}
	if pr, err := container.ReadProcess(pid); err == nil {
		proc.UID = pr.UID
	}
	status := fleet.StatusDetect
	verdict := fanotify.Allow
	if d.Action == runtimepolicy.Block {
		status, verdict = fleet.StatusBlock, fanotify.Deny
	}
	a.emit(newEvent(d, status, c, a.host, proc, parents(pid, c.ID, a.tracker), ""))
	return verdict
}

// onExec decides an exec the monitor saw.
func (a *Agent) onExec(ev bpf.Event) {
	a.mu.RLock()
	id, ok := a.byCgroup[ev.CgroupID]
	a.mu.RUnlock()
	if !ok {
		return
	}
	c, eff, marked, ok := a.lookup(id)
	if !ok {
		return
	}
	pid := int(ev.TGID)
	if p, ok := a.execParents.put(pid, int(ev.PPID)); ok {
		a.resume(p, int(ev.PPID), true)
	}
	path := ev.Filename
	if !filepath.IsAbs(path) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
			path = exe
		}
	}
	if eff.Learning() {
		a.learner.Record(workload(c, a.host), path)
	}
	// In a guarded container the guard decided the pre-exec controls with
	// the exec session and drift facts; only the controls it cannot
	// decide (arguments: reverse shells, miners) are left, which need
	// neither fact.
	x := runtimepolicy.ExecContext{Path: path, Args: ev.Args, FromImage: true}
	if !marked {
		x, _ = a.execContext(c, eff, pid, path, ev.Args, false)
	}
	d := eff.Exec(x)
	o := afterExec(d, marked)
	if !o.Report {
		return
	}
	if o.Kill {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			o.Note = "kill failed: " + err.Error()
		}
	}
	proc := fleet.Process{PID: pid, Path: path, Args: ev.Args, UID: int(ev.UID)}
	a.emit(newEvent(d, o.Status, c, a.host, proc, parents(pid, c.ID, a.tracker), o.Note))
}

// writeLearned writes the learned policies to the state directory.
func (a *Agent) writeLearned() {
	imgs := a.learner.Images()
	if len(imgs) == 0 {
		return
	}
	var ps []runtimepolicy.Policy
	for _, img := range imgs {
		p, err := a.learner.Policy(img, time.Now())
		if err != nil {
			a.log.Warn("enforcer: learned policy", "image", img, "err", err)
			continue
		}
		ps = append(ps, p)
	}
	data, err := runtimepolicy.ExportBundle(ps)
	if err == nil {
		err = writeFileAtomic(filepath.Join(a.cfg.StateDir, LearnedFile), data)
	}
	if err != nil {
		a.log.Warn("enforcer: learned policies not written", "err", err)
	}
}
