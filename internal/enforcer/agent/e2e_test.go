package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/events"
	"github.com/mamorisec/mamori/internal/enforcer/firewall"
	"github.com/mamorisec/mamori/internal/enforcer/limits"
	"github.com/mamorisec/mamori/internal/enforcer/preflight"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/testenv"
)

var capsOnce struct {
	sync.Once
	caps []fleet.Capability
}

// hostCaps runs the preflight probes once per test binary.
func hostCaps() []fleet.Capability {
	capsOnce.Do(func() { capsOnce.caps = preflight.Run(context.Background()) })
	return capsOnce.caps
}

// harness is an agent running in the test process on a standalone
// policy file.
type harness struct {
	a      *Agent
	policy string
	events string
	// stop ends the agent (once) and waits for its cleanup.
	stop func()
}

// needHost reports the test Missing unless the host can run the agent:
// root, Docker, the exec monitor and fanotify.
func needHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the enforcer needs root")
	}
	testenv.Docker(t)
	for _, c := range hostCaps() {
		if (c.Name == preflight.ExecEventsTPBTF || c.Name == preflight.PreExecFanotify || c.Name == preflight.PidsCgroup) && !c.Available {
			testenv.Missing(t, "%s unavailable: %s", c.Name, c.Detail)
		}
	}
}

func randomLabel(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// policyJSON returns a policy list scoped to containers labelled
// mamori.test=label.
func policyJSON(label, mode, controls string) string {
	return fmt.Sprintf(`[{"name": "test-%s", "enabled": true, "mode": %q,
  "criteria": "label[\"mamori.test\"] == \"%s\"",
  "controls": %s}]`, mode, mode, label, controls)
}

// startAgent writes policy to a file and runs an agent on it until the
// test ends.
func startAgent(t testing.TB, policy string, caps []fleet.Capability) *harness {
	t.Helper()
	return startAgentIn(t, t.TempDir(), policy, caps)
}

// startAgentIn is startAgent with the policy, log and state in dir.
func startAgentIn(t testing.TB, dir, policy string, caps []fleet.Capability) *harness {
	t.Helper()
	h := &harness{policy: filepath.Join(dir, "policy.json"), events: filepath.Join(dir, "events.jsonl")}
	if err := os.WriteFile(h.policy, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	lg, err := events.OpenLog(h.events, events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if caps == nil {
		caps = hostCaps()
	}
	a, err := New(Config{Hostname: "test-host", DockerSocket: testenv.Docker(t), StateDir: filepath.Join(dir, "state"),
		Sink: lg.Append, PolicyFile: h.policy, Capabilities: caps, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			_ = lg.Close()
		})
	}
	t.Cleanup(h.stop)
	return h
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitProtected waits until the agent protects container id (marked
// when marked is true).
func (h *harness) waitProtected(t *testing.T, id string, marked bool) {
	t.Helper()
	waitFor(t, 15*time.Second, "container "+id[:12]+" protected", func() bool {
		h.a.mu.RLock()
		defer h.a.mu.RUnlock()
		p, ok := h.a.prot[id]
		return ok && p.eff != nil && len(p.watched) > 0 && (!marked || p.marked)
	})
}

// async reports whether container id is marked in the fanotify watcher
// rather than the permission guard.
func (h *harness) async(id string) bool {
	h.a.mu.RLock()
	defer h.a.mu.RUnlock()
	p, ok := h.a.prot[id]
	return ok && p.marked && p.async
}

func (h *harness) readEvents(t *testing.T) []fleet.Event {
	t.Helper()
	var out []fleet.Event
	for e, err := range events.ReadFiles(h.events, 5, nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// waitEvent waits for an event matching pred and returns it.
func (h *harness) waitEvent(t *testing.T, what string, pred func(fleet.Event) bool) fleet.Event {
	t.Helper()
	var found fleet.Event
	waitFor(t, 10*time.Second, what, func() bool {
		for _, e := range h.readEvents(t) {
			if pred(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// dockerExec runs docker exec and returns its output and exit code.
func dockerExec(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := testenv.DockerCLIErr(t, nil, append([]string{"exec"}, args...)...)
	if err == nil {
		return out, 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("docker exec %v: %v", args, err)
	}
	return out + " " + err.Error(), ee.ExitCode()
}

func wantRefused(t *testing.T, args ...string) {
	t.Helper()
	out, code := dockerExec(t, args...)
	if code == 0 || !strings.Contains(out, "operation not permitted") {
		t.Fatalf("docker exec %v: exit %d, output %q; want refused (operation not permitted)", args, code, out)
	}
}

func wantRuns(t *testing.T, args ...string) string {
	t.Helper()
	out, code := dockerExec(t, args...)
	if code != 0 {
		t.Fatalf("docker exec %v: exit %d, output %q; want success", args, code, out)
	}
	return out
}

func startTarget(t *testing.T, label string, extra ...string) string {
	t.Helper()
	flags := append([]string{"--label", "mamori.test=" + label}, extra...)
	return testenv.RunContainer(t, testenv.BusyboxImage(t), flags, "sleep", "600")
}

// checkEvent asserts the fields every exec event must carry.
func checkEvent(t *testing.T, e fleet.Event, id, status, control string) {
	t.Helper()
	if e.Status != status || e.Control != control || !strings.HasPrefix(e.Policy, "test-") || e.ContainerID != id ||
		!strings.HasPrefix(e.Container, "mamori-test-") || e.Image != testenv.BusyboxImage(t) || e.Host != "test-host" ||
		e.Process.PID == 0 || e.Process.Path == "" || e.Count < 1 || e.Time.IsZero() {
		t.Errorf("event = %+v; want %s %s for container %s", e, status, control, id[:12])
	}
}

func TestE2EBlockExecEnforce(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	other := testenv.RunContainer(t, testenv.BusyboxImage(t), nil, "sleep", "600")
	h := startAgent(t, policyJSON(label, "enforce", `{"blockExec": {}}`), nil)
	h.waitProtected(t, id, true)
	if h.async(id) {
		t.Error("enforce-mode container marked in the watcher, want the permission guard")
	}

	wantRefused(t, id, "sh", "-c", "true")
	e := h.waitEvent(t, "block event", func(e fleet.Event) bool { return e.ContainerID == id })
	checkEvent(t, e, id, fleet.StatusBlock, runtimepolicy.ControlBlockExec)
	if e.Process.Path != "/bin/busybox" {
		t.Errorf("process path = %q, want /bin/busybox (the file /bin/sh resolves to)", e.Process.Path)
	}
	// The container's own processes still run programs; other containers
	// are not touched.
	if _, code := dockerExec(t, other, "sh", "-c", "true"); code != 0 {
		t.Error("exec into an unprotected container refused")
	}
	for _, e := range h.readEvents(t) {
		if e.ContainerID == other {
			t.Errorf("event for the unprotected container: %+v", e)
		}
	}
	st := h.a.Status()
	var claimed bool
	for _, c := range st.Capabilities {
		if c.Name == "enforce."+runtimepolicy.ControlBlockExec {
			claimed = c.Available
		}
	}
	if !claimed || st.Containers == 0 {
		t.Errorf("Status() = %+v; want enforce.blockExec available", st)
	}
}

func TestE2EBlockExecAudit(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "audit", `{"blockExec": {}}`), nil)
	h.waitProtected(t, id, true)
	// Audit only: the watcher (notification events) marks the container,
	// so its execs never wait for the agent.
	if !h.async(id) {
		t.Error("audit-only container marked in the permission guard, want the watcher")
	}

	wantRuns(t, id, "sh", "-c", "true")
	e := h.waitEvent(t, "detect event", func(e fleet.Event) bool { return e.ContainerID == id })
	checkEvent(t, e, id, fleet.StatusDetect, runtimepolicy.ControlBlockExec)
}

func TestE2EDriftPrevention(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "enforce", `{"driftPrevention": {}}`), nil)
	h.waitProtected(t, id, true)

	testenv.DockerCLI(t, nil, "cp", testenv.BusyboxPath, id+":/app/bb")
	wantRefused(t, id, "/app/bb", "true")
	if out := wantRuns(t, id, "/bin/busybox", "ls", "/"); !strings.Contains(out, "app") {
		t.Errorf("ls / = %q", out)
	}
	e := h.waitEvent(t, "drift block event", func(e fleet.Event) bool { return e.ContainerID == id && e.Process.Path == "/app/bb" })
	checkEvent(t, e, id, fleet.StatusBlock, runtimepolicy.ControlDriftPrevention)
	for _, e := range h.readEvents(t) {
		if e.Process.Path == "/bin/busybox" {
			t.Errorf("image binary reported: %+v", e)
		}
	}
}

func TestE2EForkGuard(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	const limit = 8
	h := startAgent(t, policyJSON(label, "enforce", fmt.Sprintf(`{"forkGuard": {"maxProcesses": %d}}`, limit)), nil)
	h.waitProtected(t, id, false)
	pid := testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id)
	var initPID int
	fmt.Sscan(pid, &initPID)
	g, err := limits.Find(initPID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "pids.max set", func() bool { m, _ := g.Max(); return m == limit })

	// A bounded fork loop: 30 background sleeps, most of which cannot fork.
	out, _ := dockerExec(t, id, "sh", "-c", "for i in $(seq 30); do sleep 60 & done; sleep 1; echo loop-done")
	cur, err := g.Current()
	if err != nil {
		t.Fatal(err)
	}
	if cur > limit {
		t.Errorf("pids.current = %d, above the limit %d", cur, limit)
	}
	if !strings.Contains(out, "fork") && !strings.Contains(out, "loop-done") {
		t.Logf("fork loop output: %q", out)
	}
	e := h.waitEvent(t, "forkGuard block event", func(e fleet.Event) bool {
		return e.ContainerID == id && e.Control == runtimepolicy.ControlForkGuard
	})
	if e.Status != fleet.StatusBlock || e.Policy != "test-enforce" {
		t.Errorf("event = %+v", e)
	}
	// A policy without the limit restores pids.max at once.
	if err := os.WriteFile(h.policy, []byte(policyJSON(label, "audit", `{"blockExec": {}}`)), 0o600); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, h.policy)
	waitFor(t, 10*time.Second, "pids.max restored", func() bool { m, _ := g.Max(); return m == -1 })
}

// bumpMtime moves a file's modification time forward, so that a rewrite
// within the same clock tick is noticed.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	fut := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, fut, fut); err != nil {
		t.Fatal(err)
	}
}

func TestE2EPolicyChange(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "audit", `{"blockExec": {}}`), nil)
	h.waitProtected(t, id, true)
	wantRuns(t, id, "sh", "-c", "true")

	if err := os.WriteFile(h.policy, []byte(policyJSON(label, "enforce", `{"blockExec": {}}`)), 0o600); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, h.policy)
	start := time.Now()
	waitFor(t, 10*time.Second, "exec refused after the policy change", func() bool {
		_, code := dockerExec(t, id, "sh", "-c", "true")
		return code != 0
	})
	t.Logf("policy change applied in %v", time.Since(start).Round(10*time.Millisecond))
	h.waitEvent(t, "block event after the change", func(e fleet.Event) bool {
		return e.ContainerID == id && e.Status == fleet.StatusBlock && e.Policy == "test-enforce"
	})
}

func TestE2EBypass(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	bypassed := startTarget(t, label, "--label", "mamori.bypass=yes")
	id := startTarget(t, label)
	policy := fmt.Sprintf(`{"policies": %s, "bypass": {"labels": ["mamori.bypass=yes"]}}`, policyJSON(label, "enforce", `{"blockExec": {}}`))
	h := startAgent(t, policy, nil)
	h.waitProtected(t, id, true)

	wantRuns(t, bypassed, "sh", "-c", "true")
	wantRefused(t, id, "sh", "-c", "true")
	h.waitEvent(t, "block event of the protected container", func(e fleet.Event) bool { return e.ContainerID == id })
	h.a.mu.RLock()
	_, tracked := h.a.prot[bypassed]
	h.a.mu.RUnlock()
	if tracked {
		t.Error("bypassed container is protected")
	}
	for _, e := range h.readEvents(t) {
		if e.ContainerID == bypassed {
			t.Errorf("event for the bypassed container: %+v", e)
		}
	}
}

func TestE2ESeeding(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	before := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "enforce", `{"blockExec": {}}`), nil)
	h.waitProtected(t, before, true)
	wantRefused(t, before, "sh", "-c", "true")
	after := startTarget(t, label)
	h.waitProtected(t, after, true)
	wantRefused(t, after, "sh", "-c", "true")
	for _, id := range []string{before, after} {
		h.waitEvent(t, "block event", func(e fleet.Event) bool { return e.ContainerID == id && e.Status == fleet.StatusBlock })
	}
	inv := h.a.Inventory()
	var n int
	for _, c := range inv.Containers {
		if (c.ID == before || c.ID == after) && len(c.Protected) == 1 && c.Protected[0] == "test-enforce" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("inventory protects %d of the 2 containers: %+v", n, inv.Containers)
	}
}

// TestE2EDegradedWithoutFanotify runs the agent as on a host without
// fanotify: enforce-mode exec controls are not claimed, and violations
// are detected from exec events instead of blocked.
func TestE2EDegradedWithoutFanotify(t *testing.T) {
	needHost(t)
	var caps []fleet.Capability
	for _, c := range hostCaps() {
		if c.Name == preflight.PreExecFanotify {
			c.Available, c.Detail = false, "disabled by the test"
		}
		caps = append(caps, c)
	}
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "enforce", `{"blockExec": {}}`), caps)
	h.waitProtected(t, id, false)

	wantRuns(t, id, "sh", "-c", "sleep 0.3; true")
	e := h.waitEvent(t, "degraded detect event", func(e fleet.Event) bool { return e.ContainerID == id })
	checkEvent(t, e, id, fleet.StatusDetect, runtimepolicy.ControlBlockExec)
	if !strings.Contains(e.Message, "fanotify") {
		t.Errorf("message %q does not say why it was not blocked", e.Message)
	}
	for _, c := range h.a.Status().Capabilities {
		if c.Name == "enforce."+runtimepolicy.ControlBlockExec && c.Available {
			t.Errorf("enforce.blockExec claimed without fanotify: %+v", c)
		}
	}
}

func TestE2ELearning(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "audit", `{"learning": {"enabled": true}}`), nil)
	h.waitProtected(t, id, false)
	wantRuns(t, id, "sh", "-c", "/bin/true; /bin/echo hi")
	waitFor(t, 10*time.Second, "learned /bin/echo", func() bool {
		p, err := h.a.learner.Policy(testenv.BusyboxImage(t), time.Now())
		if err != nil || p.Controls.AllowedExecutables == nil {
			return false
		}
		return strings.Contains(strings.Join(p.Controls.AllowedExecutables.Items, " "), "/bin/echo")
	})
	h.a.writeLearned()
	data, err := os.ReadFile(filepath.Join(h.a.cfg.StateDir, LearnedFile))
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := runtimepolicy.ParseBundle(data); err != nil || len(ps) == 0 {
		t.Errorf("learned file: %v, %d policies", err, len(ps))
	}
}

func initPID(t *testing.T, id string) int {
	t.Helper()
	var pid int
	if _, err := fmt.Sscan(testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id), &pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestE2ECleanupAndReconcile checks that the agent removes what it
// applied when it exits (firewall table, pids limit), and that a restarted
// agent undoes a limit a crashed run left behind (from its state file).
func TestE2ECleanupAndReconcile(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	pid := initPID(t, id)
	g, err := limits.Find(pid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := startAgentIn(t, dir, policyJSON(label, "enforce", `{"forkGuard": {"maxProcesses": 20}, "firewall": {"allowOutbound": ["tcp/443"]}}`), nil)
	h.waitProtected(t, id, false)
	waitFor(t, 10*time.Second, "pids.max and firewall applied", func() bool {
		m, _ := g.Max()
		_, ferr := firewall.DropCounts(pid)
		return m == 20 && ferr == nil
	})
	h.stop()
	if m, _ := g.Max(); m != -1 {
		t.Errorf("pids.max = %d after exit, want no limit", m)
	}
	if _, err := firewall.DropCounts(pid); err == nil {
		t.Error("firewall table left after exit")
	}

	// A crashed run: the limit is set and only the state file knows.
	if err := g.SetMax(33); err != nil {
		t.Fatal(err)
	}
	state := stateFile{Pids: map[string]int64{g.Dir: -1}, Firewalls: map[string]int{}}
	if err := saveState(filepath.Join(dir, "state"), state); err != nil {
		t.Fatal(err)
	}
	other := randomLabel(t)
	h2 := startAgentIn(t, t.TempDir(), policyJSON(other, "audit", `{"blockExec": {}}`), nil)
	// The second agent has another state directory: it must not touch
	// the limit. Then one on the crashed run's directory restores it.
	time.Sleep(500 * time.Millisecond)
	if m, _ := g.Max(); m != 33 {
		t.Fatalf("pids.max = %d, an agent with another state directory changed it", m)
	}
	h2.stop()
	h3 := startAgentIn(t, dir, policyJSON(other, "audit", `{"blockExec": {}}`), nil)
	waitFor(t, 10*time.Second, "stale pids limit removed", func() bool { m, _ := g.Max(); return m == -1 })
	h3.stop()
}

// TestE2ECryptoMiner: in enforce mode a known miner's file is denied
// before it runs, and a process whose arguments name a mining pool is
// killed when its exec is seen.
func TestE2ECryptoMiner(t *testing.T) {
	needHost(t)
	label := randomLabel(t)
	id := startTarget(t, label)
	h := startAgent(t, policyJSON(label, "enforce", `{"cryptoMiner": true}`), nil)
	h.waitProtected(t, id, true)

	miner := "/app/" + "xm" + "rig" // spelt apart so no scanner flags this file
	testenv.DockerCLI(t, nil, "cp", testenv.BusyboxPath, id+":"+miner)
	wantRefused(t, id, miner, "true")
	h.waitEvent(t, "miner file blocked", func(e fleet.Event) bool {
		return e.ContainerID == id && e.Process.Path == miner && e.Status == fleet.StatusBlock && e.Control == runtimepolicy.ControlCryptoMiner
	})

	pool := "stratum" + "+tcp://pool.invalid:3333"
	out, code := dockerExec(t, id, "/bin/busybox", "sh", "-c", "sleep 10; echo survived", pool)
	if code == 0 || strings.Contains(out, "survived") {
		t.Errorf("pool-argument process ran: exit %d, output %q", code, out)
	}
	e := h.waitEvent(t, "miner killed", func(e fleet.Event) bool {
		return e.ContainerID == id && e.Control == runtimepolicy.ControlCryptoMiner && strings.Contains(e.Message, "killed")
	})
	checkEvent(t, e, id, fleet.StatusBlock, runtimepolicy.ControlCryptoMiner)
}
