package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// maxCache bounds each decision cache; a full cache is emptied.
const maxCache = 8192

// procKey names a process across pid reuse: its pid and start time.
type procKey struct {
	pid   int
	start uint64
}

// parseStat returns the parent pid and the start time (clock ticks after
// boot) from the contents of /proc/<pid>/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStat(data []byte) (ppid int, start uint64, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil || ppid < 0 {
		return 0, 0, fmt.Errorf("parent pid %q", f[1])
	}
	if start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("start time %q", f[19])
	}
	return ppid, start, nil
}

func readStat(pid int) (ppid int, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(data)
}

// sessionCache remembers whether container processes belong to an exec
// session. A process's answer is its parent's when the parent is a
// container process already answered, since a child stays in its parent's
// session; processes are keyed by pid and start time so a reused pid is
// not confused with an exited process.
type sessionCache struct {
	mu sync.Mutex
	m  map[procKey]bool
}

// lookup answers for pid from the cache, or with compute (whose answer is
// kept).
// sameContainer tells whether two processes run in the same container.
func (s *sessionCache) lookup(pid int, compute func(int) (bool, error), sameContainer func(a, b int) bool) (bool, error) {
	ppid, start, err := readStat(pid)
	if err != nil {
		return compute(pid)
	}
	s.mu.Lock()
	v, ok := s.m[procKey{pid, start}]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	var pstart uint64
	if ppid > 0 {
		if _, pstart, err = readStat(ppid); err == nil {
			s.mu.Lock()
			v, ok := s.m[procKey{ppid, pstart}]
			s.mu.Unlock()
			if ok {
				s.put(procKey{pid, start}, v)
				return v, nil
			}
		}
	}
	v, err = compute(pid)
	if err != nil {
		return v, err
	}
	s.put(procKey{pid, start}, v)
	// A parent in the same container is in the same session (or the
	// same own tree): its later children are answered from the cache.
	if pstart != 0 && sameContainer(pid, ppid) {
		s.put(procKey{ppid, pstart}, v)
	}
	return v, nil
}

func (s *sessionCache) put(k procKey, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxCache {
		s.m = map[procKey]bool{}
	}
	s.m[k] = v
}

// imageCache remembers the resolved paths (as fanotify reports them: no
// symlinks) of files found in a container's image layers. An answer stays
// valid while the container's writable layer has nothing at that path: a
// file copied in, written or modified in place (copied up) appears there,
// and then FromImage is asked again.
type imageCache struct {
	mu sync.Mutex
	m  map[string]bool // container id + "\x00" + path
}

// fromImage is container.FromImage for a resolved path, cached.
func (ic *imageCache) fromImage(c *container.Container, path string) (bool, error) {
	key := c.ID + "\x00" + path
	upperEmpty := false
	if c.UpperDir != "" && filepath.IsAbs(path) {
		_, err := os.Lstat(filepath.Join(c.UpperDir, path))
		upperEmpty = errors.Is(err, fs.ErrNotExist)
	}
	if upperEmpty {
		ic.mu.Lock()
		hit := ic.m[key]
		ic.mu.Unlock()
		if hit {
			return true, nil
		}
	}
	v, err := container.FromImage(c, path)
	if err == nil && v && upperEmpty {
		ic.mu.Lock()
		if ic.m == nil || len(ic.m) >= maxCache {
			ic.m = map[string]bool{}
		}
		ic.m[key] = true
		ic.mu.Unlock()
	}
	return v, err
}

// parentCache remembers the parent each exec event reported for a process
// (by pid), so that a process that exited before the fanotify watcher
// judged it can still be placed in its process tree; and the watcher's
// decisions that wait for such an event.
type parentCache struct {
	mu      sync.Mutex
	m       map[int]int
	pending map[int]pendingExec
}

// pendingExec is a watcher's decision waiting for the parent of pid.
type pendingExec struct {
	c     *container.Container
	eff   *runtimepolicy.Effective
	x     runtimepolicy.ExecContext
	pid   int
	since time.Time
}

// put records ppid as pid's parent and returns the decision waiting for
// it, if any.
func (pc *parentCache) put(pid, ppid int) (pendingExec, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m == nil || len(pc.m) >= maxCache {
		pc.m = map[int]int{}
	}
	pc.m[pid] = ppid
	p, ok := pc.pending[pid]
	delete(pc.pending, pid)
	return p, ok
}

// get returns the parent recorded for pid.
func (pc *parentCache) get(pid int) (int, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	ppid, ok := pc.m[pid]
	return ppid, ok
}

// park keeps p until put records the parent of its process (parked).
// When the parent is recorded already it returns it instead (found);
// when too many decisions wait, p is not kept and must be finished as
// undecided (neither).
func (pc *parentCache) park(p pendingExec) (ppid int, found, parked bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if ppid, ok := pc.m[p.pid]; ok {
		return ppid, true, false
	}
	if pc.pending == nil {
		pc.pending = map[int]pendingExec{}
	}
	if len(pc.pending) >= maxCache {
		return 0, false, false
	}
	pc.pending[p.pid] = p
	return 0, false, true
}

// expired removes and returns the decisions that waited since before t.
func (pc *parentCache) expired(t time.Time) []pendingExec {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var out []pendingExec
	for pid, p := range pc.pending {
		if p.since.Before(t) {
			out = append(out, p)
			delete(pc.pending, pid)
		}
	}
	return out
}
