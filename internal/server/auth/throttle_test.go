package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLockout(t *testing.T) {
	type step struct {
		advance    time.Duration
		op         string // "fail", "succeed"
		wantLocked bool   // result of Fail, or Locked() after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"locks after 3", []step{{0, "fail", false}, {0, "fail", false}, {0, "fail", true}}},
		{"still locked before expiry", []step{{0, "fail", false}, {0, "fail", false}, {0, "fail", true}, {9 * time.Minute, "check", true}}},
		{"unlocks after expiry", []step{{0, "fail", false}, {0, "fail", false}, {0, "fail", true}, {10 * time.Minute, "check", false}, {0, "fail", false}}},
		{"success resets", []step{{0, "fail", false}, {0, "fail", false}, {0, "succeed", false}, {0, "fail", false}, {0, "fail", false}}},
		{"old failures forgotten", []step{{0, "fail", false}, {0, "fail", false}, {11 * time.Minute, "fail", false}, {0, "fail", false}}},
		{"case-insensitive", []step{{0, "fail", false}, {0, "fail", false}, {0, "FAIL", true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			l := NewLockout(3, 10*time.Minute, clk.Now)
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				var got bool
				switch s.op {
				case "fail":
					got = l.Fail("alice")
				case "FAIL":
					got = l.Fail("ALICE")
				case "succeed":
					l.Succeed("alice")
				case "check":
					_, got = l.Locked("Alice")
				}
				if got != s.wantLocked {
					t.Fatalf("step %d (%s after %v): locked = %v, want %v", i, s.op, s.advance, got, s.wantLocked)
				}
			}
		})
	}
}

func TestLockoutBounded(t *testing.T) {
	clk := newFakeClock()
	l := NewLockout(3, time.Minute, clk.Now)
	for i := range maxTracked + 50 {
		l.Fail(fmt.Sprintf("user%d", i))
	}
	if n := len(l.entries); n > maxTracked {
		t.Errorf("lockout tracks %d entries, limit %d", n, maxTracked)
	}
}

func TestRateLimiter(t *testing.T) {
	clk := newFakeClock()
	r := NewRateLimiter(0.5, 3, clk.Now) // 1 token every 2 s, burst 3
	for _, s := range []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true}, {0, "a", true}, {0, "a", true}, {0, "a", false},
		{0, "b", true}, // other keys have their own bucket
		{time.Second, "a", false},
		{time.Second, "a", true}, {0, "a", false},
		{time.Hour, "a", true}, {0, "a", true}, {0, "a", true}, {0, "a", false}, // refills only to burst
	} {
		clk.Advance(s.advance)
		ok, retry := r.Allow(s.key)
		if ok != s.want {
			t.Fatalf("at %v key %s: Allow = %v, want %v", clk.Now(), s.key, ok, s.want)
		}
		if !ok && (retry <= 0 || retry > 2*time.Second) {
			t.Errorf("retryAfter = %v, want in (0, 2s]", retry)
		}
	}
}

func TestRateLimiterBounded(t *testing.T) {
	clk := newFakeClock()
	r := NewRateLimiter(1, 2, clk.Now)
	for i := range maxTracked + 50 {
		r.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := len(r.buckets); n > maxTracked {
		t.Errorf("limiter tracks %d buckets, limit %d", n, maxTracked)
	}
}
