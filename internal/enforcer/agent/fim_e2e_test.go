package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fim"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// waitLocked waits until the agent made files of container id read-only.
func (h *harness) waitLocked(t *testing.T, id string, locked bool) {
	t.Helper()
	waitFor(t, 15*time.Second, "files of "+id[:12]+" locked", func() bool {
		h.a.mu.RLock()
		defer h.a.mu.RUnlock()
		p, ok := h.a.prot[id]
		if !locked {
			return !ok || len(p.locked) == 0
		}
		return ok && p.fimWatched && len(p.locked) > 0
	})
}

func TestE2EFileIntegrityEnforce(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	h := startAgent(t, policyJSON(label, "enforce", `{"fileIntegrity": {"paths": ["/etc/passwd", "/etc/mamori-*.conf"], "blockWrites": true}}`), nil)
	id := startTarget(t, label)
	h.waitLocked(t, id, true)
	out, code := dockerExec(t, id, "sh", "-c", "echo x >> /etc/passwd")
	if code == 0 || !strings.Contains(strings.ToLower(out), "read-only") {
		t.Fatalf("write to /etc/passwd: exit %d, output %q; want read-only file system", code, out)
	}
	wantRuns(t, id, "sh", "-c", "echo x >> /tmp/free")
	e := h.waitEvent(t, "fileIntegrity block event", func(e fleet.Event) bool {
		return e.Control == runtimepolicy.ControlFileIntegrity && e.Status == fleet.StatusBlock && e.ContainerID == id
	})
	if !strings.Contains(e.Message, "/etc/passwd") {
		t.Errorf("block event message %q does not name /etc/passwd", e.Message)
	}
	// A protected file created after the policy applied is not read-only:
	// its write is reported.
	wantRuns(t, id, "sh", "-c", "echo x > /etc/mamori-new.conf")
	h.waitEvent(t, "fileIntegrity detect event for a new file", func(e fleet.Event) bool {
		return e.Control == runtimepolicy.ControlFileIntegrity && e.Status == fleet.StatusDetect &&
			strings.Contains(e.Message, "/etc/mamori-new.conf") && e.Process.PID > 0
	})
	hb := h.a.Status()
	found := false
	for _, c := range hb.Capabilities {
		if c.Name == "enforce.fileIntegrity" {
			found = c.Available
		}
	}
	if !found {
		t.Errorf("enforce.fileIntegrity not reported available: %+v", hb.Capabilities)
	}
	// Stopping the agent restores writability.
	h.stop()
	wantRuns(t, id, "sh", "-c", "echo x >> /etc/passwd")
}

func TestE2EFileIntegrityAudit(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	h := startAgent(t, policyJSON(label, "audit", `{"fileIntegrity": {"paths": ["/etc/passwd"], "blockWrites": true}}`), nil)
	id := startTarget(t, label)
	waitFor(t, 15*time.Second, "container watched", func() bool {
		h.a.mu.RLock()
		defer h.a.mu.RUnlock()
		p, ok := h.a.prot[id]
		return ok && p.fimWatched
	})
	wantRuns(t, id, "sh", "-c", "echo x >> /tmp/free; echo x >> /etc/passwd")
	e := h.waitEvent(t, "fileIntegrity detect event", func(e fleet.Event) bool {
		return e.Control == runtimepolicy.ControlFileIntegrity && e.ContainerID == id
	})
	if e.Status != fleet.StatusDetect || !strings.Contains(e.Message, "/etc/passwd") || e.Process.PID == 0 {
		t.Errorf("event = %+v; want detect of /etc/passwd", e)
	}
	for _, e := range h.readEvents(t) {
		if strings.Contains(e.Message, "/tmp/free") {
			t.Errorf("event for unprotected file: %+v", e)
		}
	}
	h.a.mu.RLock()
	n := len(h.a.prot[id].locked)
	h.a.mu.RUnlock()
	if n != 0 {
		t.Errorf("audit mode locked %d files", n)
	}
}

func TestE2EFileIntegrityReconcile(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	pid := initPID(t, id)
	locked, err := fim.Lock(pid, []string{"/etc/passwd"})
	if err != nil {
		_ = fim.Unlock(pid, locked)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fim.Unlock(pid, locked) })
	if _, code := dockerExec(t, id, "sh", "-c", "echo x >> /etc/passwd"); code == 0 {
		t.Fatal("locked /etc/passwd writable")
	}
	// A previous run's state file names the lock; a new agent undoes it.
	dir := t.TempDir()
	ns, err := fim.MountNS(pid)
	if err != nil {
		t.Fatal(err)
	}
	s := stateFile{Pids: map[string]int64{}, Firewalls: map[string]int{}, Locks: map[string]fimLock{id: {PID: pid, MountNS: ns, Paths: locked}}}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveState(filepath.Join(dir, "state"), s); err != nil {
		t.Fatal(err)
	}
	h := startAgentIn(t, dir, "[]", nil)
	waitFor(t, 10*time.Second, "stale lock removed", func() bool {
		_, code := dockerExec(t, id, "sh", "-c", "echo x >> /etc/passwd")
		return code == 0
	})
	h.stop()
	st, err := loadState(filepath.Join(dir, "state"))
	if err != nil || len(st.Locks) != 0 {
		t.Errorf("state after reconcile = %+v, %v", st, err)
	}
}

func TestFIMPatternsAndCapability(t *testing.T) {
	b := fleet.PolicyBundle{Policies: []json.RawMessage{
		json.RawMessage(`{"name": "a", "enabled": true, "controls": {"fileIntegrity": {"paths": ["/etc/**", "/bin/*"]}}}`),
		json.RawMessage(`{"name": "b", "enabled": true, "controls": {"fileIntegrity": {"paths": ["/etc/**"]}}}`),
		json.RawMessage(`{"name": "c", "enabled": true, "controls": {"forkGuard": {"maxProcesses": 10}}}`),
		json.RawMessage(`not json`),
	}}
	if got, want := fimPatterns(b), []string{"/bin/*", "/etc/**"}; !slices.Equal(got, want) {
		t.Errorf("fimPatterns = %q, want %q", got, want)
	}
	active := map[string]bool{runtimepolicy.ControlFileIntegrity: true}
	for _, have := range []bool{true, false} {
		got := controlCapabilities(active, func(n string) bool { return have && n == haveFIM })
		if len(got) != 1 || got[0].Name != "enforce.fileIntegrity" || got[0].Available != have || got[0].Detail == "" {
			t.Errorf("have %v: capabilities = %+v", have, got)
		}
	}
}
