// Package events is the enforcer's event pipeline: a Limiter that
// de-duplicates and rate-limits fleet.Event records under storms, and a
// Log, the standalone local event log (JSON lines, append-only,
// size-rotated, crash-safe).
package events

import (
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// Config tunes a Limiter. Zero fields take the defaults.
type Config struct {
	// Window is how long identical events (same policy, control,
	// container and process path) are folded into one. Default 10s.
	Window time.Duration
	// Rate and Burst are each container's token bucket: events per second
	// and bucket size. Defaults 5/s and 20.
	Rate  float64
	Burst int
	// GlobalRate and GlobalBurst cap all containers together. Defaults
	// 100/s and 500.
	GlobalRate  float64
	GlobalBurst int
	// MaxKeys bounds the events held for folding. When it is reached,
	// events with a new key are dropped and counted. Default 10000.
	MaxKeys int
	// MaxContainers bounds the per-container buckets; containers past it
	// share one bucket. Default 4096.
	MaxContainers int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 5
	}
	if c.Burst <= 0 {
		c.Burst = 20
	}
	if c.GlobalRate <= 0 {
		c.GlobalRate = 100
	}
	if c.GlobalBurst <= 0 {
		c.GlobalBurst = 500
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 10000
	}
	if c.MaxContainers <= 0 {
		c.MaxContainers = 4096
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Stats count what a Limiter did.
type Stats struct {
	// In counts events added (each weighted by its Count).
	In int64
	// Out counts the events represented by emitted records (the sum of
	// their Count).
	Out int64
	// Records counts emitted records.
	Records int64
	// Dropped counts events lost because MaxKeys was reached.
	Dropped int64
	// Pending counts events held, not yet emitted.
	Pending int64
}

type key struct {
	policy, control, container, path string
}

type entry struct {
	ev    fleet.Event // the latest event of the key
	start time.Time   // start of the current window
	count int         // events held, not yet emitted
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Limiter folds identical events and rate-limits the records it emits.
// The first event of a key is emitted at once (when the buckets allow);
// later identical events within the window are counted and emitted as one
// record with Count when Flush finds the window over. A record the
// buckets refuse is kept and retried, so no count is lost except past
// MaxKeys. Memory is bounded by MaxKeys and MaxContainers. It is safe for
// concurrent use.
type Limiter struct {
	mu      sync.Mutex
	cfg     Config
	entries map[key]*entry
	buckets map[string]*bucket
	shared  bucket // containers past MaxContainers
	global  bucket
	stats   Stats
}

// NewLimiter returns a Limiter.
func NewLimiter(cfg Config) *Limiter {
	return &Limiter{cfg: cfg.withDefaults(), entries: map[key]*entry{}, buckets: map[string]*bucket{}}
}

func keyOf(e fleet.Event) key {
	c := e.ContainerID
	if c == "" {
		c = e.Container
	}
	return key{policy: e.Policy, control: e.Control, container: c, path: e.Process.Path}
}

func weight(e fleet.Event) int {
	if e.Count < 1 {
		return 1
	}
	return e.Count
}

// allow takes a token from the container's bucket and the global one.
func (l *Limiter) allow(container string, now time.Time) bool {
	b, ok := l.buckets[container]
	if !ok {
		if len(l.buckets) < l.cfg.MaxContainers {
			b = &bucket{}
			l.buckets[container] = b
		} else {
			b = &l.shared
		}
	}
	// Peek the global bucket first so a refused global token does not
	// consume the container's.
	g := l.global
	if !g.take(now, l.cfg.GlobalRate, l.cfg.GlobalBurst) {
		l.global = g
		return false
	}
	if !b.take(now, l.cfg.Rate, l.cfg.Burst) {
		return false
	}
	l.global = g
	return true
}

// Add takes one event and returns the records to send now (none or one).
func (l *Limiter) Add(e fleet.Event) []fleet.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	n := weight(e)
	l.stats.In += int64(n)
	k := keyOf(e)
	if en, ok := l.entries[k]; ok {
		en.count += n
		en.ev = e
		l.stats.Pending += int64(n)
		return nil
	}
	if len(l.entries) >= l.cfg.MaxKeys {
		l.stats.Dropped += int64(n)
		return nil
	}
	en := &entry{ev: e, start: now}
	l.entries[k] = en
	if l.allow(k.container, now) {
		e.Count = n
		l.emitted(n)
		return []fleet.Event{e}
	}
	en.count = n
	l.stats.Pending += int64(n)
	return nil
}

func (l *Limiter) emitted(n int) {
	l.stats.Out += int64(n)
	l.stats.Records++
}

// Flush returns the folded records whose window is over, and forgets keys
// with nothing held. Call it about once a second.
func (l *Limiter) Flush() []fleet.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flush(false)
}

// Drain returns every held record, whatever the windows and buckets, for
// shutdown.
func (l *Limiter) Drain() []fleet.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flush(true)
}

func (l *Limiter) flush(all bool) []fleet.Event {
	now := l.cfg.Now()
	var out []fleet.Event
	for k, en := range l.entries {
		if !all && now.Sub(en.start) < l.cfg.Window {
			continue
		}
		if en.count == 0 {
			delete(l.entries, k)
			continue
		}
		if !all && !l.allow(k.container, now) {
			continue // retried at the next flush
		}
		ev := en.ev
		ev.Count = en.count
		out = append(out, ev)
		l.emitted(en.count)
		l.stats.Pending -= int64(en.count)
		if all {
			delete(l.entries, k)
			continue
		}
		// Start a new window: more identical events fold into it.
		en.count = 0
		en.start = now
	}
	return out
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
