package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/server/jobs"
)

// Reason says why an image is queued for a scan.
type Reason string

// Reasons.
const (
	// ReasonPush: a webhook announced the push.
	ReasonPush Reason = "push"
	// ReasonNew: a scheduled scan found a tag not seen before whose
	// digest has no scan.
	ReasonNew Reason = "new"
	// ReasonChanged: a known tag now points to a digest with no scan.
	ReasonChanged Reason = "changed"
	// ReasonUnscanned: the tag did not change but its digest still has no
	// scan (an earlier job failed or is pending).
	ReasonUnscanned Reason = "unscanned"
	// ReasonDBUpdate: the vulnerability database changed.
	ReasonDBUpdate Reason = "db-update"
)

// Priority returns the job priority of a reason: push before schedule
// before database rescans.
func (r Reason) Priority() jobs.Priority {
	switch r {
	case ReasonPush:
		return jobs.PriorityPush
	case ReasonDBUpdate:
		return jobs.PriorityRescan
	}
	return jobs.PrioritySchedule
}

// JobRequest returns the scan request for an image queued for reason.
func JobRequest(img Image, reason Reason) jobs.Request {
	return jobs.Request{Ref: img.Ref(), Digest: img.Digest, Priority: reason.Priority(), Registry: img.Registry}
}

// ScanHistory tells which digests already have a scan.
type ScanHistory interface {
	Scanned(ctx context.Context, digest string) (bool, error)
}

// Clock is the scheduler's time source.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Decision is an image the scheduler queued, and why.
type Decision struct {
	Image  Image
	Reason Reason
}

// Scheduler runs the scheduled registry scans and the rescans after a
// vulnerability database update.
type Scheduler struct {
	// Registries returns the current registry configurations. Required.
	Registries func(ctx context.Context) ([]Registry, error)
	// Discover lists a registry's images (Discover with default Options
	// when nil).
	Discover func(ctx context.Context, r Registry) ([]Image, error)
	// Sink receives each complete discovery. Optional.
	Sink ImageSink
	// History tells which digests were scanned. Required.
	History ScanHistory
	// Enqueue queues a scan. Required.
	Enqueue func(ctx context.Context, img Image, reason Reason) error
	// DBVersion returns the current vulnerability database version.
	// Optional.
	DBVersion func() string
	// Clock is the time source (the system clock when nil).
	Clock Clock
	// Logf reports errors (discarded when nil).
	Logf func(format string, args ...any)

	mu        sync.Mutex
	lastRun   map[string]time.Time // registry name -> last discovery
	tags      map[string]Image     // imageKey -> the image the tag points to
	dbVersion string
}

func (s *Scheduler) clock() Clock {
	if s.Clock == nil {
		return realClock{}
	}
	return s.Clock
}

// Tick runs the discoveries that are due and the database rescans, and
// returns what it queued. Errors of single registries are joined; the
// other registries still run. Ticks are serialized: a slow registry
// delays the next tick.
func (s *Scheduler) Tick(ctx context.Context) ([]Decision, error) {
	if s.Registries == nil || s.History == nil || s.Enqueue == nil {
		return nil, errors.New("scheduler: Registries, History and Enqueue are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	now := s.clock().Now()
	regs, err := s.Registries(ctx)
	if err != nil {
		return nil, fmt.Errorf("scheduler: reading registries: %w", err)
	}
	var out []Decision
	var errs []error
	for _, r := range regs {
		if r.Interval <= 0 {
			continue
		}
		if last, ok := s.lastRun[r.Name]; ok && now.Sub(last) < r.Interval {
			continue
		}
		s.lastRun[r.Name] = now
		d, err := s.scanRegistry(ctx, r)
		out = append(out, d...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.DBVersion != nil {
		v := s.DBVersion()
		if s.dbVersion != "" && v != s.dbVersion {
			d, err := s.rescan(ctx)
			out = append(out, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		s.dbVersion = v
	}
	return out, errors.Join(errs...)
}

// scanRegistry discovers one registry and queues what needs a scan.
func (s *Scheduler) scanRegistry(ctx context.Context, r Registry) ([]Decision, error) {
	discover := s.Discover
	if discover == nil {
		discover = func(ctx context.Context, r Registry) ([]Image, error) { return Discover(ctx, r, Options{}) }
	}
	images, derr := discover(ctx, r)
	if derr == nil && s.Sink != nil {
		if err := s.Sink.SaveImages(ctx, r.Name, images); err != nil {
			return nil, fmt.Errorf("registry %q: saving images: %w", r.Name, err)
		}
	}
	if derr == nil {
		// Forget the tags that are gone.
		current := map[string]bool{}
		for _, img := range images {
			current[imageKey(img)] = true
		}
		for k, img := range s.tags {
			if img.Registry == r.Name && !current[k] {
				delete(s.tags, k)
			}
		}
	}
	var out []Decision
	errs := []error{derr}
	for _, img := range images {
		key := imageKey(img)
		prevImg, seen := s.tags[key]
		prev := prevImg.Digest
		s.tags[key] = img
		scanned, err := s.History.Scanned(ctx, img.Digest)
		if err != nil {
			errs = append(errs, fmt.Errorf("registry %q: scan history of %s: %w", r.Name, img.Digest, err))
			continue
		}
		if scanned {
			continue
		}
		reason := ReasonUnscanned
		switch {
		case !seen:
			reason = ReasonNew
		case prev != img.Digest:
			reason = ReasonChanged
		}
		if err := s.Enqueue(ctx, img, reason); err != nil {
			errs = append(errs, fmt.Errorf("registry %q: queueing %s: %w", r.Name, img.Ref(), err))
			continue
		}
		out = append(out, Decision{Image: img, Reason: reason})
	}
	return out, errors.Join(errs...)
}

// imageKey identifies a tag of a registry.
func imageKey(img Image) string {
	return img.Registry + "\x00" + img.Host + "/" + img.Repository + ":" + img.Tag
}

// init makes the maps. s.mu must be held.
func (s *Scheduler) init() {
	if s.lastRun == nil {
		s.lastRun, s.tags = map[string]time.Time{}, map[string]Image{}
	}
}

// rescan queues every digest a known tag points to after a database
// update, once per digest.
func (s *Scheduler) rescan(ctx context.Context) ([]Decision, error) {
	keys := make([]string, 0, len(s.tags))
	for k := range s.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Decision
	var errs []error
	done := map[string]bool{}
	for _, k := range keys {
		img := s.tags[k]
		if img.Digest == "" || done[img.Digest] {
			continue
		}
		done[img.Digest] = true
		if err := s.Enqueue(ctx, img, ReasonDBUpdate); err != nil {
			errs = append(errs, fmt.Errorf("queueing rescan of %s: %w", img.Ref(), err))
			continue
		}
		out = append(out, Decision{Image: img, Reason: ReasonDBUpdate})
	}
	return out, errors.Join(errs...)
}

// Remember records an image learnt elsewhere (a webhook push), so that
// database updates rescan it too.
func (s *Scheduler) Remember(img Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if img.Digest != "" {
		s.tags[imageKey(img)] = img
	}
}

// Run calls Tick every resolution (1 min when 0) until ctx ends.
func (s *Scheduler) Run(ctx context.Context, resolution time.Duration) error {
	if resolution <= 0 {
		resolution = time.Minute
	}
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for {
		if _, err := s.Tick(ctx); err != nil {
			logf("scheduler: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.clock().After(resolution):
		}
	}
}
