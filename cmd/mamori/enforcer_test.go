package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/events"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/testenv"
)

func TestEnforcerFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"neither mode", []string{"enforcer", "--state-dir", t.TempDir()}, "either --policy"},
		{"both modes", []string{"enforcer", "--policy", "p.json", "--gateway", "127.0.0.1:1", "--state-dir", t.TempDir()}, "either --policy"},
		{"enrolled without token", []string{"enforcer", "--gateway", "127.0.0.1:1", "--state-dir", t.TempDir()}, "--enrollment-token-file"},
		{"tcp docker host", []string{"enforcer", "--policy", "p.json", "--docker-host", "tcp://127.0.0.1:2375", "--state-dir", t.TempDir()}, "only unix sockets"},
		{"host proc of another pid namespace", []string{"enforcer", "--policy", "p.json", "--host-proc", t.TempDir(), "--state-dir", t.TempDir()}, "host's pid namespace"},
		{"missing policy file", []string{"enforcer", "--policy", filepath.Join(t.TempDir(), "none.json"), "--state-dir", t.TempDir(), "--events", filepath.Join(t.TempDir(), "e.jsonl")}, "policy file"},
		{"seccomp without policy", []string{"enforcer", "seccomp-profile"}, "policy"},
		{"learned before learning", []string{"enforcer", "learned", "--state-dir", t.TempDir()}, "no learned policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error = %v (output %q), want it to mention %q", err, out, tt.err)
			}
		})
	}
	if s, err := dockerSocket("unix:///run/d.sock"); err != nil || s != "/run/d.sock" {
		t.Errorf("dockerSocket = %q, %v", s, err)
	}
	if err := checkHostProc("/proc/"); err != nil {
		t.Errorf("checkHostProc(/proc/) = %v", err)
	}
}

func TestEnforcerSeccompProfile(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "p.yaml")
	doc := `- name: sys
  enabled: true
  mode: enforce
  criteria: 'label["app"] == "web"'
  controls:
    blockedSyscalls: [ptrace, kexec_load]
- name: sys-audit
  enabled: true
  controls:
    blockedSyscalls: [mount]
`
	if err := os.WriteFile(policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "enforcer", "seccomp-profile", "--policy", policy, "--label", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(out, "{")
	var p struct {
		DefaultAction string
		Syscalls      []struct {
			Names  []string
			Action string
		}
	}
	if i < 0 || json.Unmarshal([]byte(out[i:]), &p) != nil {
		t.Fatalf("output is not a profile: %q", out)
	}
	if p.DefaultAction != "SCMP_ACT_ALLOW" || len(p.Syscalls) != 1 || strings.Join(p.Syscalls[0].Names, ",") != "kexec_load,ptrace" {
		t.Errorf("profile = %+v", p)
	}
	if !strings.Contains(out, "audit-mode syscall mount") {
		t.Errorf("audit-mode syscall not mentioned: %q", out)
	}
	// A container the enforce policy does not match gets no blocked call.
	out, err = runCLI(t, "", "enforcer", "seccomp-profile", "--policy", policy, "--label", "app=db")
	if err == nil || !strings.Contains(err.Error(), "no enforce-mode blockedSyscalls") || strings.Contains(out, "ptrace") {
		t.Errorf("unmatched container: %q, %v", out, err)
	}
}

func TestEnforcerPreflight(t *testing.T) {
	out, err := runCLI(t, "", "enforcer", "preflight", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var caps []fleet.Capability
	if err := json.Unmarshal([]byte(out), &caps); err != nil || len(caps) < 10 {
		t.Fatalf("preflight --json = %q, %v", out, err)
	}
	out, err = runCLI(t, "", "enforcer", "preflight")
	if err != nil || !strings.HasPrefix(out, "CAPABILITY") || !strings.Contains(out, "pre-exec-deny.fanotify") {
		t.Errorf("preflight table = %q, %v", out, err)
	}
}

// lockedBuffer is a bytes.Buffer safe for the command's concurrent logging.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEnforcerStandalone runs `mamori enforcer --policy` against a real
// container: exec sessions are refused while it runs and allowed again
// once it exits (marks removed), and the block is in the event log.
func TestEnforcerStandalone(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the enforcer needs root")
	}
	testenv.Docker(t)
	label := fmt.Sprintf("cli%d", time.Now().UnixNano())
	id := testenv.RunContainer(t, testenv.BusyboxImage(t), []string{"--label", "mamori.test=" + label}, "sleep", "600")
	dir := t.TempDir()
	policy, evlog := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "events.jsonl")
	doc := fmt.Sprintf("name: cli-test\nenabled: true\nmode: enforce\ncriteria: 'label[\"mamori.test\"] == \"%s\"'\ncontrols:\n  blockExec: {}\n", label)
	if err := os.WriteFile(policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newRoot()
	var out lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"enforcer", "--policy", policy, "--events", evlog, "--state-dir", filepath.Join(dir, "state"), "--docker-host", "unix://" + testenv.Docker(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "true")
		if err != nil && strings.Contains(err.Error(), "operation not permitted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec never refused; enforcer output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("enforcer: %v\n%s", err, out.String())
	}
	stopped = true
	if _, err := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "true"); err != nil {
		t.Errorf("exec still refused after the enforcer exited: %v", err)
	}
	var blocks int
	for e, err := range events.ReadFiles(evlog, 5, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ContainerID == id && e.Status == fleet.StatusBlock && e.Policy == "cli-test" && e.Control == "blockExec" {
			blocks++
		}
	}
	if blocks == 0 {
		t.Errorf("no block event in %s", evlog)
	}
}
