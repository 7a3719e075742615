// Package progress renders the walk's progress on a terminal. It draws a
// single, redrawn status line on a TTY and stays silent otherwise, so piped
// output and CI logs are not cluttered.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar is a walk.Progress that draws to a terminal.
type Bar struct {
	w       io.Writer
	mu      sync.Mutex
	total   int
	done    int
	cached  int
	entries int
	last    time.Time
	active  map[int]string
}

// New returns a Bar writing to f if f is a terminal, or nil otherwise (a nil
// *Bar must not be passed as a walk.Progress; use Enabled).
func New(f *os.File) *Bar {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newBar(f)
}

func newBar(w io.Writer) *Bar { return &Bar{w: w, active: map[int]string{}} }

// LayerStart implements walk.Progress.
func (b *Bar) LayerStart(index, total int, diffID string, cached bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
	if cached {
		b.cached++
	}
	b.active[index] = short(diffID)
	b.draw(true)
}

// Entries implements walk.Progress.
func (b *Bar) Entries(_ int, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries += n
	b.draw(false)
}

// LayerDone implements walk.Progress.
func (b *Bar) LayerDone(index int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done++
	delete(b.active, index)
	b.draw(true)
}

// Finish clears the status line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprint(b.w, "\r\033[K")
}

func (b *Bar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last = now
	var act []string
	for _, d := range b.active {
		act = append(act, d)
	}
	line := fmt.Sprintf("layers %d/%d (%d cached)  files %d  %s", b.done, b.total, b.cached, b.entries, strings.Join(act, " "))
	fmt.Fprintf(b.w, "\r\033[K%s", line)
}

func short(diffID string) string {
	_, h, ok := strings.Cut(diffID, ":")
	if !ok {
		h = diffID
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}
