package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/server/jobs"
)

// fakeClock is a clock the test moves; After fires when the test says.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	after chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(time.Duration) <-chan time.Time { return c.after }

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type history map[string]bool

func (h history) Scanned(_ context.Context, d string) (bool, error) { return h[d], nil }

func dg(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func decisions(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s:%s=%s", d.Image.Repository, d.Image.Tag, d.Reason))
	}
	sort.Strings(out)
	return out
}

func TestSchedulerDecisions(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	hourly := Registry{Name: "hourly", URL: "r.example.com", Type: TypeGeneric, Interval: time.Hour}
	daily := Registry{Name: "daily", URL: "d.example.com", Type: TypeGeneric, Interval: 24 * time.Hour}
	manual := Registry{Name: "manual", URL: "m.example.com", Type: TypeGeneric}
	// The registries' current contents, changed by the test.
	contents := map[string][]Image{
		"hourly": {
			{Registry: "hourly", Host: "r.example.com", Repository: "app", Tag: "1", Digest: dg(1)},
			{Registry: "hourly", Host: "r.example.com", Repository: "app", Tag: "2", Digest: dg(2)},
			{Registry: "hourly", Host: "r.example.com", Repository: "lib", Tag: "1", Digest: dg(3)},
		},
		"daily": {{Registry: "daily", Host: "d.example.com", Repository: "d", Tag: "1", Digest: dg(10)}},
	}
	discovered := map[string]int{}
	hist := history{dg(3): true} // lib:1 was scanned before
	dbVersion := "db-1"
	sink := &MemoryImages{}
	q := jobs.NewQueue(jobs.Config{Sink: &jobs.MemorySink{}})
	s := &Scheduler{
		Registries: func(context.Context) ([]Registry, error) { return []Registry{hourly, daily, manual}, nil },
		Discover: func(_ context.Context, r Registry) ([]Image, error) {
			discovered[r.Name]++
			return contents[r.Name], nil
		},
		Sink:    sink,
		History: hist,
		Enqueue: func(_ context.Context, img Image, reason Reason) error {
			_, _, err := q.Enqueue(JobRequest(img, reason))
			return err
		},
		DBVersion: func() string { return dbVersion },
		Clock:     clk,
	}
	ctx := context.Background()
	steps := []struct {
		name    string
		advance time.Duration
		before  func()
		want    []string
	}{
		{"first tick: unscanned tags are new", 0, nil, []string{"app:1=new", "app:2=new", "d:1=new"}},
		{"not due yet", 30 * time.Minute, nil, nil},
		{"due, nothing changed but app still unscanned", 30 * time.Minute, func() { hist[dg(2)] = true }, []string{"app:1=unscanned"}},
		{"tag moved", time.Hour, func() {
			hist[dg(1)] = true
			contents["hourly"][1].Digest = dg(4)
			contents["hourly"] = append(contents["hourly"], Image{Registry: "hourly", Host: "r.example.com", Repository: "app", Tag: "3", Digest: dg(1)})
		}, []string{"app:2=changed"}},
		{"database update rescans every known image", time.Minute, func() {
			hist[dg(4)] = true
			dbVersion = "db-2"
		}, []string{"app:1=db-update", "app:2=db-update", "d:1=db-update", "lib:1=db-update"}},
	}
	for _, st := range steps {
		clk.Add(st.advance)
		if st.before != nil {
			st.before()
		}
		got, err := s.Tick(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if fmt.Sprint(decisions(got)) != fmt.Sprint(st.want) {
			t.Errorf("%s: got %v, want %v", st.name, decisions(got), st.want)
		}
	}
	if discovered["hourly"] != 3 || discovered["daily"] != 1 || discovered["manual"] != 0 {
		t.Errorf("discoveries %v, want hourly 3, daily 1, manual 0", discovered)
	}
	if n := len(sink.Images("hourly")); n != 4 {
		t.Errorf("sink holds %d hourly images, want 4", n)
	}
	// The rescans queued at the lowest priority, after the schedule jobs.
	pending := q.Pending()
	if len(pending) == 0 || pending[len(pending)-1].Priority != jobs.PriorityRescan || pending[0].Priority != jobs.PrioritySchedule {
		t.Errorf("pending order %+v", pending)
	}
}

func TestSchedulerErrorsKeepOthers(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	var queued []string
	s := &Scheduler{
		Registries: func(context.Context) ([]Registry, error) {
			return []Registry{{Name: "bad", Interval: time.Hour}, {Name: "good", Interval: time.Hour}}, nil
		},
		Discover: func(_ context.Context, r Registry) ([]Image, error) {
			if r.Name == "bad" {
				return nil, errors.New(`registry "bad": listing repositories: HTTP 401`)
			}
			return []Image{{Registry: "good", Host: "h", Repository: "a", Tag: "1", Digest: dg(1)}}, nil
		},
		History: history{},
		Enqueue: func(_ context.Context, img Image, _ Reason) error {
			queued = append(queued, img.Ref())
			return nil
		},
		Clock: clk,
	}
	_, err := s.Tick(context.Background())
	if err == nil || !strings.Contains(err.Error(), `registry "bad"`) {
		t.Errorf("error %v", err)
	}
	if len(queued) != 1 || queued[0] != "h/a@"+dg(1) {
		t.Errorf("queued %v", queued)
	}
}

func TestSchedulerRun(t *testing.T) {
	clk := &fakeClock{now: time.Now(), after: make(chan time.Time)}
	ticks := make(chan struct{}, 10)
	s := &Scheduler{
		Registries: func(context.Context) ([]Registry, error) {
			ticks <- struct{}{}
			return nil, nil
		},
		History: history{},
		Enqueue: func(context.Context, Image, Reason) error { return nil },
		Clock:   clk,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, time.Minute) }()
	<-ticks
	clk.after <- clk.Now()
	<-ticks
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

func TestReasonPriority(t *testing.T) {
	tests := []struct {
		r    Reason
		want jobs.Priority
	}{
		{ReasonPush, jobs.PriorityPush},
		{ReasonNew, jobs.PrioritySchedule},
		{ReasonChanged, jobs.PrioritySchedule},
		{ReasonUnscanned, jobs.PrioritySchedule},
		{ReasonDBUpdate, jobs.PriorityRescan},
	}
	for _, tt := range tests {
		if got := tt.r.Priority(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.r, got, tt.want)
		}
	}
	req := JobRequest(Image{Registry: "r", Host: "h:5000", Repository: "a/b", Tag: "1", Digest: dg(1)}, ReasonPush)
	if req.Ref != "h:5000/a/b@"+dg(1) || req.Digest != dg(1) || req.Priority != jobs.PriorityPush || req.Registry != "r" {
		t.Errorf("JobRequest %+v", req)
	}
}

var _ ScanHistory = (*jobs.MemorySink)(nil)
