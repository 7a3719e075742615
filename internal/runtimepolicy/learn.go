package runtimepolicy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Learner records the executables each image runs, to propose an
// allow-list policy. It is safe for concurrent use and bounded: past
// maxImages images or maxExecutables per image, new entries are dropped
// and counted.
type Learner struct {
	mu             sync.Mutex
	maxImages      int
	maxExecutables int
	seen           map[string]map[string]struct{}
	dropped        int
}

// NewLearner returns a Learner with the given bounds (values below 1 mean
// 1024).
func NewLearner(maxImages, maxExecutables int) *Learner {
	if maxImages < 1 {
		maxImages = 1024
	}
	if maxExecutables < 1 {
		maxExecutables = 1024
	}
	return &Learner{maxImages: maxImages, maxExecutables: maxExecutables, seen: map[string]map[string]struct{}{}}
}

// Record notes that w ran the executable at path. It returns false when
// the entry was dropped because a bound was reached, or the path is not
// an absolute path a policy can name.
func (l *Learner) Record(w Workload, path string) bool {
	repo, _ := Repository(w.Image)
	if repo == "" || !strings.HasPrefix(path, "/") || len(path) > 512 || strings.ContainsAny(path, "*?[]{}\\ \t\n") {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	set, ok := l.seen[repo]
	if !ok {
		if len(l.seen) >= l.maxImages {
			l.dropped++
			return false
		}
		set = map[string]struct{}{}
		l.seen[repo] = set
	}
	if _, ok := set[path]; ok {
		return true
	}
	if len(set) >= l.maxExecutables {
		l.dropped++
		return false
	}
	set[path] = struct{}{}
	return true
}

// Dropped returns how many entries were dropped at a bound.
func (l *Learner) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Images returns the repositories with recorded executables, sorted.
func (l *Learner) Images() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.seen))
	for r := range l.seen {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Policy returns the allow-list policy learned for image (a reference or
// repository name): named "learned-<repository>", disabled and in audit
// mode for review, applying to that repository through its criteria, and
// allowing exactly the executables recorded.
func (l *Learner) Policy(image string, now time.Time) (Policy, error) {
	repo, _ := Repository(image)
	l.mu.Lock()
	set := l.seen[repo]
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	l.mu.Unlock()
	if len(paths) == 0 {
		return Policy{}, fmt.Errorf("learned policy for %q: no executable was recorded", image)
	}
	slices.Sort(paths)
	name := "learned-" + repo
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	p := Policy{
		Name:        name,
		Description: fmt.Sprintf("Executables learned for %s; review before enabling.", repo),
		Mode:        Audit,
		Criteria:    fmt.Sprintf("image == %q", repo),
		Controls:    Controls{AllowedExecutables: &List{Items: paths}},
		Created:     now.UTC(),
		Updated:     now.UTC(),
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("learned policy for %q: %w", image, err)
	}
	return p, nil
}
