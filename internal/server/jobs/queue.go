package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/report"
)

// Priority orders queued jobs: higher runs first.
type Priority int

// Priorities, lowest first.
const (
	// PriorityRescan is a rescan of a known image after the vulnerability
	// database changed.
	PriorityRescan Priority = iota
	// PrioritySchedule is an image found by a scheduled registry scan.
	PrioritySchedule
	// PriorityPush is an image announced by a registry push webhook.
	PriorityPush
)

// String returns the priority's name.
func (p Priority) String() string {
	switch p {
	case PriorityRescan:
		return "rescan"
	case PrioritySchedule:
		return "schedule"
	case PriorityPush:
		return "push"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// MarshalText encodes the priority as its name.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes a priority name.
func (p *Priority) UnmarshalText(b []byte) error {
	for _, c := range []Priority{PriorityRescan, PrioritySchedule, PriorityPush} {
		if c.String() == string(b) {
			*p = c
			return nil
		}
	}
	return fmt.Errorf("unknown job priority %q (want push, schedule or rescan)", b)
}

// State is where a job is in its life.
type State string

// Job states.
const (
	StateQueued   State = "queued"
	StateRunning  State = "running"
	StateDone     State = "done"
	StateFailed   State = "failed"
	StateCanceled State = "canceled"
)

// Request asks for a scan.
type Request struct {
	// Ref is the image reference to scan, preferably pinned by digest
	// (registry/repo@sha256:...).
	Ref string
	// Digest is the manifest digest; jobs for the same digest are merged.
	// When empty, jobs are merged by Ref.
	Digest string
	// Priority orders the job.
	Priority Priority
	// Registry names the registry the image came from, if any.
	Registry string
}

// Job is a snapshot of a scan job.
type Job struct {
	ID       string   `json:"id"`
	Ref      string   `json:"ref"`
	Digest   string   `json:"digest,omitempty"`
	Registry string   `json:"registry,omitempty"`
	Priority Priority `json:"priority"`
	State    State    `json:"state"`
	// Attempts counts the leases handed out so far.
	Attempts int `json:"attempts"`
	// Error is the last failure, when there was one.
	Error string `json:"error,omitempty"`
	// Worker is the worker holding or last holding the job.
	Worker  string    `json:"worker,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// NotBefore delays a retry.
	NotBefore time.Time `json:"notBefore,omitzero"`
	// LeaseExpires is when a running job goes back to the queue unless
	// its worker sends a heartbeat.
	LeaseExpires time.Time `json:"leaseExpires,omitzero"`
}

// ResultSink stores the result of a finished job.
type ResultSink interface {
	SaveScan(ctx context.Context, job Job, scan *report.Scan) error
}

// MemorySink is a ResultSink that keeps results in memory, for tests. It
// also answers which digests were scanned (registry.ScanHistory).
type MemorySink struct {
	mu      sync.Mutex
	results map[string]*report.Scan
	digests map[string]bool
}

// SaveScan records scan under job.ID.
func (m *MemorySink) SaveScan(_ context.Context, job Job, scan *report.Scan) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.results == nil {
		m.results, m.digests = map[string]*report.Scan{}, map[string]bool{}
	}
	m.results[job.ID] = scan
	if job.Digest != "" {
		m.digests[job.Digest] = true
	}
	return nil
}

// Scanned reports whether a job for digest saved a result.
func (m *MemorySink) Scanned(_ context.Context, digest string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.digests[digest], nil
}

// Result returns the scan saved for a job ID.
func (m *MemorySink) Result(id string) (*report.Scan, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.results[id]
	return s, ok
}

// Len returns the number of saved results.
func (m *MemorySink) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.results)
}

// Config configures a Queue.
type Config struct {
	// Sink receives results. Required.
	Sink ResultSink
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxAttempts bounds the leases of one job (3 when 0).
	MaxAttempts int
	// RetryBackoff is the delay before attempt n+1 after n failed
	// attempts (1 s doubling, at most 5 min, when nil).
	RetryBackoff func(attempts int) time.Duration
	// LeaseDuration is how long a lease lasts without a heartbeat (2 min
	// when 0).
	LeaseDuration time.Duration
	// MaxJobs bounds the jobs kept, finished ones being forgotten first
	// (10000 when 0).
	MaxJobs int
}

// Errors returned by Queue methods.
var (
	// ErrNotFound: no job has this ID.
	ErrNotFound = errors.New("no such job")
	// ErrLeaseLost: the lease expired, was handed to another worker or
	// the job was canceled; the worker must stop and drop its result.
	ErrLeaseLost = errors.New("lease lost: the job expired, was canceled or belongs to another worker")
	// ErrQueueFull: too many unfinished jobs.
	ErrQueueFull = errors.New("scan queue is full")
)

// Queue is an in-memory scan queue. It is safe for concurrent use.
type Queue struct {
	cfg Config

	mu      sync.Mutex
	jobs    map[string]*entry
	byKey   map[string]*entry // unfinished jobs by dedupe key
	order   []*entry          // all jobs in creation order
	seq     uint64
	changed chan struct{} // closed and replaced when a job may be leasable
}

// entry is a job and its private lease state.
type entry struct {
	Job
	key    string
	seq    uint64
	token  string
	cancel context.CancelFunc // cancels a local scan in progress
}

// NewQueue returns an empty queue.
func NewQueue(cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = DefaultBackoff
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 2 * time.Minute
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 10000
	}
	return &Queue{cfg: cfg, jobs: map[string]*entry{}, byKey: map[string]*entry{}, changed: make(chan struct{})}
}

// DefaultBackoff waits 1 s after the first failure, doubling up to 5 min.
func DefaultBackoff(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// LeaseDuration returns how long leases last.
func (q *Queue) LeaseDuration() time.Duration { return q.cfg.LeaseDuration }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// notify wakes the workers waiting for a job. q.mu must be held.
func (q *Queue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Enqueue adds a job, or returns the queued or running job for the same
// digest (or the same Ref when Digest is empty), raising its priority to
// req.Priority if that is higher. created reports whether a job was added.
func (q *Queue) Enqueue(req Request) (job Job, created bool, err error) {
	if req.Ref == "" {
		return Job{}, false, errors.New("enqueue: empty image reference")
	}
	key := req.Digest
	if key == "" {
		key = "ref:" + req.Ref
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.byKey[key]; ok {
		if req.Priority > e.Priority {
			e.Priority = req.Priority
			e.Updated = q.cfg.Now()
		}
		return e.Job, false, nil
	}
	if len(q.byKey) >= q.cfg.MaxJobs {
		return Job{}, false, ErrQueueFull
	}
	q.forget()
	now := q.cfg.Now()
	q.seq++
	e := &entry{
		Job: Job{ID: randomID(8), Ref: req.Ref, Digest: req.Digest, Registry: req.Registry,
			Priority: req.Priority, State: StateQueued, Created: now, Updated: now},
		key: key, seq: q.seq,
	}
	q.jobs[e.ID] = e
	q.byKey[key] = e
	q.order = append(q.order, e)
	q.notify()
	return e.Job, true, nil
}

// forget drops the oldest finished jobs while over MaxJobs. q.mu must be
// held.
func (q *Queue) forget() {
	if len(q.order) < q.cfg.MaxJobs {
		return
	}
	kept := q.order[:0]
	drop := len(q.order) - q.cfg.MaxJobs + 1
	for _, e := range q.order {
		if drop > 0 && finished(e.State) {
			delete(q.jobs, e.ID)
			drop--
			continue
		}
		kept = append(kept, e)
	}
	clear(q.order[len(kept):])
	q.order = kept
}

func finished(s State) bool {
	return s == StateDone || s == StateFailed || s == StateCanceled
}

// Get returns a job by ID.
func (q *Queue) Get(id string) (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	if !ok {
		return Job{}, false
	}
	return e.Job, true
}

// List returns every job kept, oldest first.
func (q *Queue) List() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Job, len(q.order))
	for i, e := range q.order {
		out[i] = e.Job
	}
	return out
}

// Cancel cancels a queued or running job. A running local scan has its
// context canceled; a remote worker learns it at its next heartbeat and
// its result is refused. Canceling a finished job is an error.
func (q *Queue) Cancel(id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	if !ok {
		return fmt.Errorf("cancel job %q: %w", id, ErrNotFound)
	}
	if finished(e.State) {
		return fmt.Errorf("cancel job %q: it is already %s", id, e.State)
	}
	if e.cancel != nil {
		e.cancel()
	}
	q.finish(e, StateCanceled, "canceled")
	return nil
}

// finish ends a job. q.mu must be held.
func (q *Queue) finish(e *entry, s State, msg string) {
	e.State = s
	e.Error = msg
	e.token = ""
	e.cancel = nil
	e.LeaseExpires = time.Time{}
	e.Updated = q.cfg.Now()
	if q.byKey[e.key] == e {
		delete(q.byKey, e.key)
	}
}

// Lease is a job handed to one worker.
type Lease struct {
	Job Job
	// Token proves the lease in Heartbeat, Complete and Fail.
	Token string
}

// Reap re-queues running jobs whose lease expired (or fails them when
// they ran out of attempts). Lease calls it; a server may also call it
// periodically.
func (q *Queue) Reap() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reap(q.cfg.Now())
}

func (q *Queue) reap(now time.Time) {
	requeued := false
	for _, e := range q.byKey {
		if e.State != StateRunning || now.Before(e.LeaseExpires) {
			continue
		}
		if e.cancel != nil {
			e.cancel()
		}
		msg := fmt.Sprintf("lease of worker %q expired", e.Worker)
		if e.Attempts >= q.cfg.MaxAttempts {
			q.finish(e, StateFailed, msg+fmt.Sprintf(" after %d attempts", e.Attempts))
			continue
		}
		e.State, e.Error, e.token, e.cancel = StateQueued, msg, "", nil
		e.LeaseExpires, e.Updated = time.Time{}, now
		requeued = true
	}
	if requeued {
		q.notify()
	}
}

// TryLease leases the most urgent ready job to worker, or returns nil
// when none is ready, with the time the next delayed retry becomes ready
// (zero if none).
func (q *Queue) TryLease(worker string) (*Lease, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Now()
	q.reap(now)
	var best *entry
	var next time.Time
	for _, e := range q.byKey {
		if e.State != StateQueued {
			continue
		}
		if now.Before(e.NotBefore) {
			if next.IsZero() || e.NotBefore.Before(next) {
				next = e.NotBefore
			}
			continue
		}
		if best == nil || e.Priority > best.Priority || (e.Priority == best.Priority && e.seq < best.seq) {
			best = e
		}
	}
	if best == nil {
		return nil, next
	}
	best.State = StateRunning
	best.Attempts++
	best.Worker = worker
	best.token = randomID(16)
	best.LeaseExpires = now.Add(q.cfg.LeaseDuration)
	best.Updated = now
	return &Lease{Job: best.Job, Token: best.token}, time.Time{}
}

// Lease waits up to wait for a job (long poll) and leases it to worker.
// It returns nil, nil when none became ready in time.
func (q *Queue) Lease(ctx context.Context, worker string, wait time.Duration) (*Lease, error) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		q.mu.Lock()
		changed := q.changed
		q.mu.Unlock()
		l, next := q.TryLease(worker)
		if l != nil {
			return l, nil
		}
		// Wake for a retry becoming ready or an expiring lease.
		poll := q.nextDeadline(next)
		var pollC <-chan time.Time
		var pollT *time.Timer
		if poll > 0 {
			pollT = time.NewTimer(poll)
			pollC = pollT.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, nil
		case <-changed:
		case <-pollC:
		}
		if pollT != nil {
			pollT.Stop()
		}
	}
}

// nextDeadline returns how long until the earliest of next and any lease
// expiry, or 0 when there is none.
func (q *Queue) nextDeadline(next time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.byKey {
		if e.State == StateRunning && (next.IsZero() || e.LeaseExpires.Before(next)) {
			next = e.LeaseExpires
		}
	}
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(q.cfg.Now()), time.Millisecond)
}

// leased returns the running job id held with token. q.mu must be held.
func (q *Queue) leased(id, token string) (*entry, error) {
	e, ok := q.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	if e.State != StateRunning || token == "" || e.token != token {
		return nil, fmt.Errorf("job %q: %w", id, ErrLeaseLost)
	}
	if !q.cfg.Now().Before(e.LeaseExpires) {
		q.reap(q.cfg.Now())
		return nil, fmt.Errorf("job %q: %w", id, ErrLeaseLost)
	}
	return e, nil
}

// Heartbeat renews a lease and returns its new expiry.
func (q *Queue) Heartbeat(id, token string) (time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.leased(id, token)
	if err != nil {
		return time.Time{}, err
	}
	e.LeaseExpires = q.cfg.Now().Add(q.cfg.LeaseDuration)
	return e.LeaseExpires, nil
}

// Complete stores the result of a leased job and marks it done. If the
// sink fails the job stays running, so the worker may retry.
func (q *Queue) Complete(ctx context.Context, id, token string, scan *report.Scan) error {
	if scan == nil {
		return fmt.Errorf("job %q: no scan result", id)
	}
	if q.cfg.Sink == nil {
		return fmt.Errorf("job %q: the queue has no result sink", id)
	}
	q.mu.Lock()
	e, err := q.leased(id, token)
	var job Job
	if err == nil {
		job = e.Job
	}
	q.mu.Unlock()
	if err != nil {
		return err
	}
	if err := q.cfg.Sink.SaveScan(ctx, job, scan); err != nil {
		return fmt.Errorf("job %q: saving result: %w", id, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	// The lease may have been lost while saving; the result is stored
	// either way, so the job is done unless it was canceled.
	if e.State == StateCanceled {
		return fmt.Errorf("job %q: %w", id, ErrLeaseLost)
	}
	q.finish(e, StateDone, "")
	return nil
}

// Fail reports a failed attempt. A transient failure is retried after a
// backoff while attempts remain; otherwise the job fails.
func (q *Queue) Fail(id, token, msg string, transient bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.leased(id, token)
	if err != nil {
		return err
	}
	if !transient || e.Attempts >= q.cfg.MaxAttempts {
		if transient {
			msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, e.Attempts)
		}
		q.finish(e, StateFailed, msg)
		return nil
	}
	now := q.cfg.Now()
	e.State, e.Error, e.token, e.cancel = StateQueued, msg, "", nil
	e.LeaseExpires, e.Updated = time.Time{}, now
	e.NotBefore = now.Add(q.cfg.RetryBackoff(e.Attempts))
	q.notify()
	return nil
}

// setCancel records the cancel function of a local scan. It reports
// false if the lease is already lost.
func (q *Queue) setCancel(id, token string, cancel context.CancelFunc) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.leased(id, token)
	if err != nil {
		return false
	}
	e.cancel = cancel
	return true
}

// Counts returns the number of jobs in each state.
func (q *Queue) Counts() map[State]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := map[State]int{}
	for _, e := range q.order {
		c[e.State]++
	}
	return c
}

// Pending returns the queued jobs in the order they would be leased
// (ignoring retry delays).
func (q *Queue) Pending() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var es []*entry
	for _, e := range q.byKey {
		if e.State == StateQueued {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].Priority != es[j].Priority {
			return es[i].Priority > es[j].Priority
		}
		return es[i].seq < es[j].seq
	})
	out := make([]Job, len(es))
	for i, e := range es {
		out[i] = e.Job
	}
	return out
}
