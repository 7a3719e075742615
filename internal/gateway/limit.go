package gateway

import (
	"sync"
	"time"
)

// maxBuckets bounds the limiter's memory; idle agents are forgotten first.
const maxBuckets = 100000

// limiter is a token bucket per agent.
type limiter struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// take removes n tokens from agent's bucket and returns 0, or leaves the
// bucket and returns how long until n tokens are there.
func (l *limiter) take(agent string, n int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[agent]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[agent] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if need := float64(n) - b.tokens; need > 0 {
		return time.Duration(need / l.rate * float64(time.Second))
	}
	b.tokens -= float64(n)
	return 0
}

// prune forgets the buckets that have refilled (their agents have been idle
// long enough that forgetting them changes nothing), or all of them.
func (l *limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
