package agent

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/container"
	"github.com/mamorisec/mamori/internal/enforcer/fim"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// haveFIM is the key in Agent.have set when the file-integrity mechanism
// works on this host (a fanotify notification group and mount namespace
// entry; see fim.Available).
const haveFIM = "mamori.fileIntegrity"

// fimLock is a container whose files the agent made read-only.
type fimLock struct {
	PID int `json:"pid"`
	// MountNS identifies the mount namespace of PID when the files were
	// locked; a stale entry whose pid now names another namespace is
	// dropped without touching it.
	MountNS uint64   `json:"mountNS"`
	Paths   []string `json:"paths"`
}

// fimPatterns returns the fileIntegrity path globs of every policy in the
// bundle; they only tell fim.Expand where to search, the container's
// Effective decides which files are protected.
func fimPatterns(b fleet.PolicyBundle) []string {
	var out []string
	for _, raw := range b.Policies {
		p, err := runtimepolicy.Parse(raw)
		if err != nil || p.Controls.FileIntegrity == nil {
			continue
		}
		out = append(out, p.Controls.FileIntegrity.Paths...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// startFIM opens the file-integrity watcher when the mechanism works.
func (a *Agent) startFIM() {
	err := fim.Available()
	var w *fim.Watcher
	if err == nil {
		w, err = fim.NewWatcher(a.onWrite)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.log.Warn("enforcer: file integrity unavailable: fileIntegrity not enforced", "err", err)
		return
	}
	a.fimw = w
	a.have[haveFIM] = true
}

// closeFIM closes the file-integrity watcher.
func (a *Agent) closeFIM() {
	a.mu.Lock()
	w := a.fimw
	a.fimw = nil
	a.mu.Unlock()
	if w != nil {
		_ = w.Close()
	}
}

// applyFIM watches the container's writes and makes its blockWrites files
// read-only (a.mu held).
func (a *Agent) applyFIM(p *protected) {
	c, eff := p.c, p.eff
	want := eff.Has(runtimepolicy.ControlFileIntegrity) && a.fimw != nil && c.MergedDir != ""
	switch {
	case want:
		if err := a.fimw.Watch(c.ID, c.MergedDir, func(path string) bool { return eff.FileWrite(path).Action != runtimepolicy.Allow }); err != nil {
			a.log.Warn("enforcer: file writes not watched", "container", c.Name, "err", err)
		} else {
			p.fimWatched = true
		}
	case p.fimWatched:
		if a.fimw != nil {
			_ = a.fimw.Unwatch(c.ID)
		}
		p.fimWatched = false
	}
	var files []string
	more := 0
	if want && c.PID > 0 {
		var err error
		files, more, err = fim.Expand(c.PID, a.fimPatterns, func(path string) bool {
			return eff.FileWrite(path).Action == runtimepolicy.Block
		})
		if err != nil {
			a.log.Warn("enforcer: protected files not found", "container", c.Name, "err", err)
			return
		}
	}
	if slices.Equal(files, p.locked) {
		return
	}
	a.unlockFIM(p)
	if len(files) == 0 {
		return
	}
	locked, err := fim.Lock(c.PID, files)
	p.locked = locked
	ns, _ := fim.MountNS(c.PID)
	a.state.Locks[c.ID] = fimLock{PID: c.PID, MountNS: ns, Paths: locked}
	a.saveState()
	if err != nil {
		a.log.Warn("enforcer: protected files not made read-only", "container", c.Name, "err", err)
	}
	if len(locked) == 0 {
		return
	}
	d := eff.FileWrite(locked[0])
	d.Reason = fmt.Sprintf("writes blocked: %d files made read-only (%s)", len(locked), strings.Join(locked[:min(len(locked), 5)], ", "))
	if more > 0 || len(locked) < len(files) {
		d.Reason += fmt.Sprintf("; %d matching files not protected (limit %d)", more+len(files)-len(locked), fim.MaxLocked)
	}
	// One event per change of the locked set: it bypasses the limiter, so
	// that it is never folded into the detections of the container.
	e := newEvent(d, fleet.StatusBlock, c, a.host, fleet.Process{PID: c.PID}, nil, "")
	e.Time, e.AgentID = time.Now().UTC(), a.agentID()
	a.sink(e)
}

// unlockFIM removes the read-only mounts of a container (a.mu held).
func (a *Agent) unlockFIM(p *protected) {
	if len(p.locked) == 0 {
		return
	}
	if err := fim.Unlock(p.c.PID, p.locked); err != nil {
		a.log.Debug("enforcer: read-only files not restored (container gone?)", "container", p.c.Name, "err", err)
	}
	p.locked = nil
	delete(a.state.Locks, p.c.ID)
	a.saveState()
}

// releaseFIM stops watching and unlocks a container (a.mu held).
func (a *Agent) releaseFIM(id string, p *protected) {
	if p.fimWatched && a.fimw != nil {
		_ = a.fimw.Unwatch(id)
	}
	p.fimWatched = false
	a.unlockFIM(p)
}

// onWrite reports a write to a protected file. A blockWrites file that was
// written was not read-only (created after the policy applied, or beyond
// fim.MaxLocked), so the write is reported as detected.
func (a *Agent) onWrite(ev fim.Event) {
	c, eff, _, ok := a.lookup(ev.Container)
	if !ok {
		return
	}
	d := eff.FileWrite(ev.Path)
	if d.Action == runtimepolicy.Allow {
		return
	}
	note := ""
	if d.Action == runtimepolicy.Block {
		note = "not blocked: the file was not read-only"
	}
	proc := fleet.Process{PID: ev.PID}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ev.PID)); err == nil {
		proc.Path = exe
	}
	if pr, err := container.ReadProcess(ev.PID); err == nil {
		proc.UID = pr.UID
	}
	a.emit(newEvent(d, fleet.StatusDetect, c, a.host, proc, nil, note))
}
