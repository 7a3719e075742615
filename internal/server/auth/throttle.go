package auth

import (
	"strings"
	"sync"
	"time"
)

// maxTracked bounds the number of accounts and client addresses the
// throttles remember, so that requests with random usernames or spoofed
// addresses cannot grow memory without limit.
const maxTracked = 10000

// Lockout counts failed logins per username and locks a username after
// MaxFailures consecutive failures for Duration. It tracks usernames whether
// or not the account exists, so lockout behaviour does not reveal which
// accounts exist. It is safe for concurrent use.
type Lockout struct {
	maxFailures int
	duration    time.Duration
	now         func() time.Time

	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
}

// NewLockout returns a Lockout locking after maxFailures failures for
// duration, reading the time from now.
func NewLockout(maxFailures int, duration time.Duration, now func() time.Time) *Lockout {
	return &Lockout{maxFailures: maxFailures, duration: duration, now: now, entries: map[string]*lockEntry{}}
}

func lockKey(username string) string { return strings.ToLower(username) }

// Locked reports whether username is locked and until when.
func (l *Lockout) Locked(username string) (until time.Time, locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[lockKey(username)]
	if !ok || !l.now().Before(e.lockedUntil) {
		return time.Time{}, false
	}
	return e.lockedUntil, true
}

// Fail records a failed login for username and reports whether this failure
// locked it.
func (l *Lockout) Fail(username string) (locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := lockKey(username)
	e, ok := l.entries[k]
	if !ok {
		l.makeRoom(now)
		e = &lockEntry{}
		l.entries[k] = e
	}
	// Failures older than the lockout duration are forgotten, and a
	// lock that has expired starts a new count.
	if now.Sub(e.lastFailure) >= l.duration || (!e.lockedUntil.IsZero() && !now.Before(e.lockedUntil)) {
		e.failures = 0
		e.lockedUntil = time.Time{}
	}
	e.failures++
	e.lastFailure = now
	if e.failures >= l.maxFailures {
		e.lockedUntil = now.Add(l.duration)
		e.failures = 0
		return true
	}
	return false
}

// Succeed clears the failure count of username after a successful login.
func (l *Lockout) Succeed(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, lockKey(username))
}

// makeRoom drops forgotten entries when the map is full and, if it is still
// full, the entry with the oldest failure. l.mu must be held.
func (l *Lockout) makeRoom(now time.Time) {
	if len(l.entries) < maxTracked {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, e := range l.entries {
		if now.Sub(e.lastFailure) >= l.duration && !now.Before(e.lockedUntil) {
			delete(l.entries, k)
			continue
		}
		if oldestKey == "" || e.lastFailure.Before(oldest) {
			oldestKey, oldest = k, e.lastFailure
		}
	}
	if len(l.entries) >= maxTracked {
		delete(l.entries, oldestKey)
	}
}

// RateLimiter is a per-key token bucket: each key (a client IP address) may
// make Burst requests at once and then Rate requests per second. It is safe
// for concurrent use.
type RateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a RateLimiter refilling rate tokens per second up
// to burst, reading the time from now.
func NewRateLimiter(rate float64, burst int, now func() time.Time) *RateLimiter {
	return &RateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// Allow takes a token from the bucket of key and reports whether one was
// available. When it returns false, retryAfter is how long until the next
// token.
func (r *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b, found := r.buckets[key]
	if !found {
		r.makeRoom(now)
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[key] = b
	}
	b.tokens = r.level(b, now)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / r.rate * float64(time.Second))
}

// level is the number of tokens in b at now.
func (r *RateLimiter) level(b *bucket, now time.Time) float64 {
	elapsed := now.Sub(b.last).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return min(r.burst, b.tokens+elapsed*r.rate)
}

// makeRoom drops full buckets (equivalent to new ones) when the map is full
// and, if it is still full, the least recently used bucket. r.mu must be held.
func (r *RateLimiter) makeRoom(now time.Time) {
	if len(r.buckets) < maxTracked {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, b := range r.buckets {
		if r.level(b, now) >= r.burst {
			delete(r.buckets, k)
			continue
		}
		if oldestKey == "" || b.last.Before(oldest) {
			oldestKey, oldest = k, b.last
		}
	}
	if len(r.buckets) >= maxTracked {
		delete(r.buckets, oldestKey)
	}
}
