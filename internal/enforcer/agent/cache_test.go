package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container"
)

func TestParseStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4242 0 0"
	tests := []struct {
		name  string
		data  string
		ppid  int
		start uint64
		ok    bool
	}{
		{"plain", "12 (sh) S 7" + tail, 7, 4242, true},
		{"name with spaces and parens", "12 (a) b (c) R 9" + tail, 9, 4242, true},
		{"no name", "12 sh S 7" + tail, 0, 0, false},
		{"short", "12 (sh) S 7 0 0", 0, 0, false},
		{"bad ppid", "12 (sh) S x" + tail, 0, 0, false},
		{"bad start", "12 (sh) S 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 y 0 0", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ppid, start, err := parseStat([]byte(tt.data))
			if (err == nil) != tt.ok || ppid != tt.ppid || start != tt.start {
				t.Errorf("parseStat = %d, %d, %v; want %d, %d, ok %v", ppid, start, err, tt.ppid, tt.start, tt.ok)
			}
		})
	}
	ppid, start, err := readStat(os.Getpid())
	if err != nil || ppid != os.Getppid() || start == 0 {
		t.Errorf("readStat(self) = %d, %d, %v", ppid, start, err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("12 (sh) S 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4242 0 0"))
	f.Add([]byte("1 ((x)) R -1"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		ppid, _, err := parseStat(data)
		if err == nil && ppid < 0 {
			t.Fatalf("negative parent pid %d", ppid)
		}
	})
}

func TestSessionCache(t *testing.T) {
	var s sessionCache
	calls := 0
	compute := func(int) (bool, error) { calls++; return true, nil }
	same := func(a, b int) bool { return true }
	self := os.Getpid()
	for range 3 {
		if v, err := s.lookup(self, compute, same); err != nil || !v {
			t.Fatalf("lookup = %v, %v", v, err)
		}
	}
	if calls != 1 {
		t.Errorf("compute called %d times, want 1 (then cached)", calls)
	}
	// The parent was cached with the answer, so a sibling is answered
	// without computing: ask for the parent itself.
	if v, _ := s.lookup(os.Getppid(), func(int) (bool, error) { return false, errors.New("not cached") }, same); !v {
		t.Error("parent in the same container not cached")
	}
	// An error from compute is passed on and nothing is cached.
	var e sessionCache
	if _, err := e.lookup(self, func(int) (bool, error) { return false, errors.New("boom") }, same); err == nil {
		t.Error("compute error lost")
	}
	if len(e.m) != 0 {
		t.Errorf("cached after an error: %v", e.m)
	}
}

func TestImageCache(t *testing.T) {
	dir := t.TempDir()
	lower, upper, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "merged")
	for _, d := range []string{filepath.Join(lower, "bin"), upper, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "bin", "x"), []byte("image"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &container.Container{ID: "c1", UpperDir: upper, LowerDirs: []string{lower}, MergedDir: merged}
	var ic imageCache
	for range 2 {
		if v, err := ic.fromImage(c, "/bin/x"); err != nil || !v {
			t.Fatalf("fromImage(/bin/x) = %v, %v; want true", v, err)
		}
	}
	if !ic.m["c1\x00/bin/x"] {
		t.Error("image file not cached")
	}
	// Modified in place: the upper layer has it now, so the cached
	// answer is not used.
	if err := os.MkdirAll(filepath.Join(upper, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "bin", "x"), []byte("drift"), 0o755); err != nil {
		t.Fatal(err)
	}
	if v, err := ic.fromImage(c, "/bin/x"); err != nil || v {
		t.Errorf("fromImage after copy-up = %v, %v; want false", v, err)
	}
}

func TestParentCache(t *testing.T) {
	var pc parentCache
	if _, ok := pc.get(10); ok {
		t.Error("get found a parent in an empty cache")
	}
	if _, ok := pc.put(10, 1); ok {
		t.Error("put returned a waiting decision that was never parked")
	}
	if p, ok := pc.get(10); !ok || p != 1 {
		t.Errorf("get(10) = %d, %v; want 1, true", p, ok)
	}
	// A decision about a recorded process is not kept.
	if ppid, found, parked := pc.park(pendingExec{pid: 10}); !found || parked || ppid != 1 {
		t.Errorf("park(10) = %d, %v, %v; want 1, found", ppid, found, parked)
	}
	// A decision waits for its parent, then put hands it back.
	start := time.Now()
	if _, found, parked := pc.park(pendingExec{pid: 11, since: start}); found || !parked {
		t.Fatalf("park(11) = found %v, parked %v; want parked", found, parked)
	}
	if p, ok := pc.put(11, 7); !ok || p.pid != 11 {
		t.Errorf("put(11) = %+v, %v; want the parked decision", p, ok)
	}
	// Decisions whose parent never comes expire.
	pc.park(pendingExec{pid: 12, since: start})
	pc.park(pendingExec{pid: 13, since: start.Add(time.Hour)})
	if got := pc.expired(start.Add(time.Minute)); len(got) != 1 || got[0].pid != 12 {
		t.Errorf("expired = %+v, want the decision about 12", got)
	}
	// The caches stay bounded.
	for i := range 2 * maxCache {
		pc.put(100+i, 1)
		pc.park(pendingExec{pid: 1<<20 + i})
	}
	if n, w := len(pc.m), len(pc.pending); n > maxCache || w > maxCache {
		t.Errorf("cache holds %d parents and %d waiting decisions, want at most %d each", n, w, maxCache)
	}
}
