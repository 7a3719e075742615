package events

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)} }

func event(container, path string) fleet.Event {
	return fleet.Event{Status: fleet.StatusBlock, Policy: "p", Control: "cryptoMiner", ContainerID: container,
		Process: fleet.Process{Path: path}}
}

func sum(evs []fleet.Event) int {
	n := 0
	for _, e := range evs {
		n += e.Count
	}
	return n
}

func TestLimiterStorm(t *testing.T) {
	c := newClock()
	l := NewLimiter(Config{Window: 10 * time.Second, Now: c.Now})
	var out []fleet.Event
	const storm = 100_000
	for i := range storm {
		out = append(out, l.Add(event("c1", "/usr/bin/xmrig"))...)
		if i%1000 == 0 {
			c.Add(time.Millisecond * 100) // 100k events over 10s
			out = append(out, l.Flush()...)
		}
	}
	c.Add(10 * time.Second)
	out = append(out, l.Flush()...)
	if len(out) > 5 {
		t.Errorf("%d records for a storm of identical events, want a handful", len(out))
	}
	if got := sum(out); got != storm {
		t.Errorf("counts sum to %d, want %d", got, storm)
	}
	if out[0].Count != 1 {
		t.Errorf("first record Count = %d, want 1 (sent at once)", out[0].Count)
	}
	st := l.Stats()
	if st.In != storm || st.Out != storm || st.Dropped != 0 || st.Pending != 0 || st.Records != int64(len(out)) {
		t.Errorf("Stats = %+v", st)
	}
	// With nothing held, the next flush forgets the key.
	c.Add(11 * time.Second)
	if got := l.Flush(); len(got) != 0 || len(l.entries) != 0 {
		t.Errorf("idle flush = %v, %d keys left", got, len(l.entries))
	}
}

func TestLimiterRateLimitsDistinctEvents(t *testing.T) {
	c := newClock()
	l := NewLimiter(Config{Window: time.Second, Rate: 1, Burst: 3, GlobalRate: 1000, GlobalBurst: 1000, Now: c.Now})
	var out []fleet.Event
	for i := range 10 {
		out = append(out, l.Add(event("noisy", "/bin/p"+strconv.Itoa(i)))...)
	}
	if len(out) != 3 {
		t.Fatalf("%d records at once, want the burst of 3", len(out))
	}
	// Another container has its own bucket.
	if got := l.Add(event("quiet", "/bin/p0")); len(got) != 1 {
		t.Errorf("other container limited: %v", got)
	}
	// Held records come out as tokens refill; none is lost.
	for range 20 {
		c.Add(time.Second)
		out = append(out, l.Flush()...)
	}
	if got := sum(out); got != 10 {
		t.Errorf("counts sum to %d, want 10", got)
	}
}

func TestLimiterGlobalCapAndBounds(t *testing.T) {
	c := newClock()
	l := NewLimiter(Config{Window: time.Second, Rate: 100, Burst: 100, GlobalRate: 1, GlobalBurst: 5, MaxKeys: 50, MaxContainers: 4, Now: c.Now})
	var out []fleet.Event
	for i := range 100 {
		out = append(out, l.Add(event("c"+strconv.Itoa(i), "/bin/x"))...)
	}
	if len(out) != 5 {
		t.Errorf("%d records past the global cap of 5", len(out))
	}
	st := l.Stats()
	if st.Dropped != 50 || len(l.entries) != 50 || len(l.buckets) > 4 {
		t.Errorf("Stats = %+v, %d keys, %d buckets; want 50 dropped and bounded maps", st, len(l.entries), len(l.buckets))
	}
	out = append(out, l.Drain()...)
	if got := sum(out); got != 50 {
		t.Errorf("drained counts sum to %d, want 50", got)
	}
	if st := l.Stats(); st.Pending != 0 || st.Out != 50 {
		t.Errorf("after Drain: %+v", st)
	}
}

func TestLimiterKeys(t *testing.T) {
	c := newClock()
	l := NewLimiter(Config{Now: c.Now})
	base := event("c1", "/bin/x")
	variants := []fleet.Event{base}
	for _, f := range []func(*fleet.Event){
		func(e *fleet.Event) { e.Policy = "q" },
		func(e *fleet.Event) { e.Control = "drift" },
		func(e *fleet.Event) { e.ContainerID = "c2" },
		func(e *fleet.Event) { e.Process.Path = "/bin/y" },
	} {
		e := base
		f(&e)
		variants = append(variants, e)
	}
	for i, e := range variants {
		if got := l.Add(e); len(got) != 1 {
			t.Errorf("variant %d folded into another key", i)
		}
	}
	// Same key, different PID and args: folded; a Count in the input is
	// kept.
	e := base
	e.Process.PID, e.Count = 99, 4
	if got := l.Add(e); len(got) != 0 {
		t.Error("identical event not folded")
	}
	c.Add(time.Minute)
	got := l.Flush()
	if len(got) != 1 || got[0].Count != 4 || got[0].Process.PID != 99 {
		t.Errorf("Flush = %+v", got)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(Config{Window: time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				out := l.Add(event("c"+strconv.Itoa(g), "/bin/"+strconv.Itoa(i%7)))
				out = append(out, l.Flush()...)
				mu.Lock()
				total += sum(out)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total += sum(l.Drain())
	if total != 8000 {
		t.Errorf("total = %d, want 8000", total)
	}
}
