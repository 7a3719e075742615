package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func digest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// fakeScan returns a minimal valid scan of ref.
func fakeScan(ref string) *report.Scan {
	return &report.Scan{SchemaVersion: report.SchemaVersion,
		Inventory: &inventory.Report{Image: inventory.ImageInfo{Ref: ref, Source: "registry", Name: ref}}}
}

func TestPriorityAndDedupe(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	reqs := []Request{
		{Ref: "r/a@" + digest(1), Digest: digest(1), Priority: PriorityRescan},
		{Ref: "r/b@" + digest(2), Digest: digest(2), Priority: PrioritySchedule},
		{Ref: "r/c@" + digest(3), Digest: digest(3), Priority: PriorityPush},
		{Ref: "r/d@" + digest(4), Digest: digest(4), Priority: PrioritySchedule},
		// Same digest as a: merged, priority raised to push.
		{Ref: "r/a2@" + digest(1), Digest: digest(1), Priority: PriorityPush},
		// Same digest as b with a lower priority: merged, unchanged.
		{Ref: "r/b@" + digest(2), Digest: digest(2), Priority: PriorityRescan},
		// No digest: merged by ref.
		{Ref: "r/e:latest", Priority: PriorityRescan},
		{Ref: "r/e:latest", Priority: PriorityRescan},
	}
	created := 0
	for _, r := range reqs {
		_, c, err := q.Enqueue(r)
		if err != nil {
			t.Fatal(err)
		}
		if c {
			created++
		}
	}
	if created != 5 {
		t.Errorf("created %d jobs, want 5", created)
	}
	// a was queued first, so at equal priority it goes before c.
	want := []string{"r/a@" + digest(1), "r/c@" + digest(3), "r/b@" + digest(2), "r/d@" + digest(4), "r/e:latest"}
	for i, w := range want {
		l, _ := q.TryLease("w")
		if l == nil {
			t.Fatalf("lease %d: none", i)
		}
		if l.Job.Ref != w {
			t.Errorf("lease %d: got %s (priority %v), want %s", i, l.Job.Ref, l.Job.Priority, w)
		}
	}
	if l, _ := q.TryLease("w"); l != nil {
		t.Errorf("extra lease %v", l.Job)
	}
	// A running job still dedupes.
	if _, c, _ := q.Enqueue(Request{Ref: "x", Digest: digest(3)}); c {
		t.Error("running job was not deduplicated")
	}
	if _, _, err := q.Enqueue(Request{}); err == nil {
		t.Error("empty ref accepted")
	}
}

func TestRetryBackoffAndFailure(t *testing.T) {
	clk := newFakeClock()
	q := NewQueue(Config{Sink: &MemorySink{}, Now: clk.Now, MaxAttempts: 3,
		RetryBackoff: func(n int) time.Duration { return time.Duration(n) * time.Minute }})
	job, _, _ := q.Enqueue(Request{Ref: "img", Digest: digest(1)})
	for attempt := 1; attempt <= 3; attempt++ {
		l, next := q.TryLease("w")
		if l == nil {
			t.Fatalf("attempt %d: not leasable (next %v)", attempt, next)
		}
		if l.Job.Attempts != attempt {
			t.Errorf("attempts = %d, want %d", l.Job.Attempts, attempt)
		}
		if err := q.Fail(job.ID, l.Token, "registry said 503", true); err != nil {
			t.Fatal(err)
		}
		j, _ := q.Get(job.ID)
		if attempt == 3 {
			if j.State != StateFailed {
				t.Fatalf("after %d attempts state %s, want failed", attempt, j.State)
			}
			break
		}
		if j.State != StateQueued {
			t.Fatalf("state %s, want queued", j.State)
		}
		if l, next := q.TryLease("w"); l != nil || !next.Equal(clk.Now().Add(time.Duration(attempt)*time.Minute)) {
			t.Fatalf("retry not delayed: lease %v next %v", l, next)
		}
		clk.Add(time.Duration(attempt) * time.Minute)
	}
	// A permanent failure is not retried.
	job2, _, _ := q.Enqueue(Request{Ref: "img2", Digest: digest(2)})
	l, _ := q.TryLease("w")
	if err := q.Fail(job2.ID, l.Token, "no such image", false); err != nil {
		t.Fatal(err)
	}
	if j, _ := q.Get(job2.ID); j.State != StateFailed || j.Error != "no such image" {
		t.Errorf("permanent failure: %+v", j)
	}
	// A finished digest can be queued again.
	if _, c, _ := q.Enqueue(Request{Ref: "img2", Digest: digest(2)}); !c {
		t.Error("failed job blocked a new one")
	}
}

func TestLeaseExpiryRequeues(t *testing.T) {
	clk := newFakeClock()
	sink := &MemorySink{}
	q := NewQueue(Config{Sink: sink, Now: clk.Now, LeaseDuration: time.Minute, MaxAttempts: 2})
	job, _, _ := q.Enqueue(Request{Ref: "img", Digest: digest(1)})
	dead, _ := q.TryLease("dead-worker")
	clk.Add(40 * time.Second)
	if _, err := q.Heartbeat(job.ID, dead.Token); err != nil {
		t.Fatalf("heartbeat within lease: %v", err)
	}
	clk.Add(61 * time.Second)
	if _, err := q.Heartbeat(job.ID, dead.Token); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("heartbeat after expiry: %v, want ErrLeaseLost", err)
	}
	j, _ := q.Get(job.ID)
	if j.State != StateQueued {
		t.Fatalf("expired job state %s, want queued", j.State)
	}
	alive, _ := q.TryLease("alive-worker")
	if alive == nil || alive.Job.ID != job.ID || alive.Job.Attempts != 2 {
		t.Fatalf("re-lease: %+v", alive)
	}
	if err := q.Complete(context.Background(), job.ID, dead.Token, fakeScan("img")); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("stale worker's result: %v, want ErrLeaseLost", err)
	}
	if err := q.Complete(context.Background(), job.ID, alive.Token, fakeScan("img")); err != nil {
		t.Fatal(err)
	}
	if j, _ := q.Get(job.ID); j.State != StateDone || sink.Len() != 1 {
		t.Errorf("state %s, %d results", j.State, sink.Len())
	}
	// Out of attempts: an expired lease fails the job.
	job2, _, _ := q.Enqueue(Request{Ref: "img2", Digest: digest(2)})
	for range 2 {
		if l, _ := q.TryLease("w"); l == nil {
			t.Fatal("no lease")
		}
		clk.Add(2 * time.Minute)
	}
	q.Reap()
	if j, _ := q.Get(job2.ID); j.State != StateFailed {
		t.Errorf("job out of attempts: state %s", j.State)
	}
}

func TestCancel(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	queued, _, _ := q.Enqueue(Request{Ref: "a", Digest: digest(1), Priority: PriorityRescan})
	if err := q.Cancel(queued.ID); err != nil {
		t.Fatal(err)
	}
	if j, _ := q.Get(queued.ID); j.State != StateCanceled {
		t.Errorf("state %s", j.State)
	}
	if err := q.Cancel(queued.ID); err == nil {
		t.Error("canceling a canceled job succeeded")
	}
	if err := q.Cancel("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	// A running local scan is interrupted.
	started := make(chan string, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		q.RunWorkers(ctx, func(ctx context.Context, ref string) (*report.Scan, error) {
			started <- ref
			<-ctx.Done()
			return nil, ctx.Err()
		}, PoolOptions{Workers: 1})
	})
	running, _, _ := q.Enqueue(Request{Ref: "b", Digest: digest(2)})
	<-started
	if err := q.Cancel(running.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, q, running.ID, StateCanceled)
	stop()
	wg.Wait()
}

func waitState(t *testing.T, q *Queue, id string, want State) Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, _ := q.Get(id)
		if j.State == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: state %s (%s), want %s", id, j.State, j.Error, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLocalPoolRetriesTransient(t *testing.T) {
	sink := &MemorySink{}
	q := NewQueue(Config{Sink: sink, RetryBackoff: func(int) time.Duration { return 10 * time.Millisecond }})
	var calls, running, peak atomic.Int32
	scan := func(ctx context.Context, ref string) (*report.Scan, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		switch {
		case ref == "flaky" && calls.Add(1) == 1:
			return nil, &transport.Error{StatusCode: http.StatusServiceUnavailable}
		case ref == "broken":
			return nil, errors.New("manifest unknown")
		}
		return fakeScan(ref), nil
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { q.RunWorkers(ctx, scan, PoolOptions{Workers: 2}) })
	var ids []string
	for i, ref := range []string{"flaky", "broken", "a", "b", "c"} {
		j, _, _ := q.Enqueue(Request{Ref: ref, Digest: digest(i)})
		ids = append(ids, j.ID)
	}
	if j := waitState(t, q, ids[0], StateDone); j.Attempts != 2 {
		t.Errorf("flaky job took %d attempts, want 2", j.Attempts)
	}
	if j := waitState(t, q, ids[1], StateFailed); j.Attempts != 1 {
		t.Errorf("broken job took %d attempts, want 1 (not transient)", j.Attempts)
	}
	for _, id := range ids[2:] {
		waitState(t, q, id, StateDone)
	}
	stop()
	wg.Wait()
	if peak.Load() > 2 {
		t.Errorf("%d scans ran at once with 2 workers", peak.Load())
	}
	if sink.Len() != 4 {
		t.Errorf("%d results saved, want 4", sink.Len())
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("manifest unknown"), false},
		{&transport.Error{StatusCode: 429}, true},
		{fmt.Errorf("wrapped: %w", &transport.Error{StatusCode: 502}), true},
		{&transport.Error{StatusCode: 404}, false},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{Permanent(&transport.Error{StatusCode: 503}), false},
		{&net.OpError{Op: "dial", Err: &timeoutErr{}}, true},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestLeaseLongPollWakes(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	got := make(chan *Lease)
	go func() {
		l, _ := q.Lease(context.Background(), "w", 10*time.Second)
		got <- l
	}()
	time.Sleep(50 * time.Millisecond)
	q.Enqueue(Request{Ref: "img", Digest: digest(1)})
	select {
	case l := <-got:
		if l == nil || l.Job.Ref != "img" {
			t.Fatalf("lease %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake on enqueue")
	}
	start := time.Now()
	if l, err := q.Lease(context.Background(), "w", 50*time.Millisecond); l != nil || err != nil {
		t.Fatalf("empty queue lease: %v %v", l, err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("long poll returned early")
	}
}

func TestMaxJobsForgetsFinished(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}, MaxJobs: 3})
	for i := range 3 {
		j, _, _ := q.Enqueue(Request{Ref: "r", Digest: digest(i)})
		q.Cancel(j.ID)
	}
	for i := 3; i < 6; i++ {
		if _, _, err := q.Enqueue(Request{Ref: "r", Digest: digest(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(q.List()); n != 3 {
		t.Errorf("%d jobs kept, want 3", n)
	}
	if _, _, err := q.Enqueue(Request{Ref: "r", Digest: digest(9)}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("full queue: %v", err)
	}
}

func TestMemorySinkHistory(t *testing.T) {
	sink := &MemorySink{}
	q := NewQueue(Config{Sink: sink})
	j, _, _ := q.Enqueue(Request{Ref: "r@" + digest(1), Digest: digest(1)})
	l, _ := q.TryLease("w")
	if ok, _ := sink.Scanned(context.Background(), digest(1)); ok {
		t.Fatal("scanned before the result")
	}
	if err := q.Complete(context.Background(), j.ID, l.Token, fakeScan("r")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := sink.Scanned(context.Background(), digest(1)); !ok {
		t.Error("not scanned after the result")
	}
}

func TestPriorityJSON(t *testing.T) {
	for _, p := range []Priority{PriorityRescan, PrioritySchedule, PriorityPush} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got Priority
		if err := json.Unmarshal(b, &got); err != nil || got != p {
			t.Errorf("%s: round trip %s gave %v, %v", p, b, got, err)
		}
	}
	var p Priority
	if err := json.Unmarshal([]byte(`"urgent"`), &p); err == nil {
		t.Error("unknown priority accepted")
	}
}
