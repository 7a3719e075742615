package agent

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/firewall"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

func TestParsePolicyFile(t *testing.T) {
	yamlFile, err := os.ReadFile("testdata/bundle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		data       string
		policies   int
		bypass     []string
		failClosed bool
		err        string
	}{
		{name: "list", data: `[{"name": "a", "enabled": true, "controls": {"reverseShell": true}}, {"name": "b", "enabled": true, "controls": {}}]`, policies: 2},
		{name: "one policy", data: `{"name": "a", "enabled": true, "controls": {"cryptoMiner": true}}`, policies: 1},
		{name: "yaml list", data: "- name: a\n  enabled: true\n  controls: {driftPrevention: {}}\n", policies: 1},
		{name: "object", data: string(yamlFile), policies: 1, bypass: []string{"mamori.bypass"}, failClosed: true},
		{name: "empty", data: "  ", err: "empty policy file"},
		{name: "scalar", data: `42`, err: "want a list of policies"},
		{name: "unknown top-level field", data: `{"policies": [], "extra": 1}`, err: "unknown field"},
		{name: "bad policy", data: `[{"name": "a", "enabled": true, "controls": {"forkGuard": {"maxProcesses": 0}}}]`, err: "maxProcesses"},
		{name: "duplicate names", data: `[{"name": "a", "controls": {}}, {"name": "a", "controls": {}}]`, err: "used twice"},
		{name: "bad yaml", data: "a: [", err: "not JSON or YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParsePolicyFile([]byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Policies) != tt.policies {
				t.Errorf("%d policies, want %d", len(b.Policies), tt.policies)
			}
			if tt.bypass != nil && strings.Join(b.Bypass.Labels, ",") != strings.Join(tt.bypass, ",") {
				t.Errorf("bypass labels = %v, want %v", b.Bypass.Labels, tt.bypass)
			}
			if tt.bypass == nil && len(b.Bypass.Namespaces) == 0 {
				t.Error("no default bypass")
			}
			if b.Settings.FailClosed != tt.failClosed || !b.Settings.ContainerProtection {
				t.Errorf("settings = %+v", b.Settings)
			}
			if _, err := runtimepolicy.Compile(b, time.Now()); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func FuzzParsePolicyFile(f *testing.F) {
	if data, err := os.ReadFile("testdata/bundle.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{`[]`, `{"name": "a", "controls": {}}`, `{"policies": [], "bypass": {"labels": ["x"]}}`, "- name: a\n", `null`, `{"policies": null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParsePolicyFile(data)
		if err != nil {
			return
		}
		// Whatever parses must compile: the policies were validated.
		if _, err := runtimepolicy.Compile(b, time.Now()); err != nil {
			t.Fatalf("parsed bundle does not compile: %v", err)
		}
	})
}

func TestAfterExec(t *testing.T) {
	block := func(c string) runtimepolicy.Decision {
		return runtimepolicy.Decision{Action: runtimepolicy.Block, Control: c, Policy: "p"}
	}
	detect := func(c string) runtimepolicy.Decision {
		return runtimepolicy.Decision{Action: runtimepolicy.Detect, Control: c, Policy: "p"}
	}
	tests := []struct {
		name    string
		d       runtimepolicy.Decision
		guarded bool
		want    outcome
	}{
		{"allow", runtimepolicy.Decision{}, false, outcome{}},
		{"guarded exec control was decided pre-exec", block(runtimepolicy.ControlBlockExec), true, outcome{}},
		{"guarded audit exec control too", detect(runtimepolicy.ControlDriftPrevention), true, outcome{}},
		{"unguarded detect", detect(runtimepolicy.ControlBlockExec), false, outcome{Report: true, Status: fleet.StatusDetect}},
		{"unguarded block degrades to detect", block(runtimepolicy.ControlAllowedExecutables), false,
			outcome{Report: true, Status: fleet.StatusDetect, Note: "not blocked: pre-exec denial (fanotify) unavailable for this container"}},
		{"reverse shell enforce kills", block(runtimepolicy.ControlReverseShell), true, outcome{Report: true, Status: fleet.StatusBlock, Kill: true, Note: "killed after exec"}},
		{"miner enforce kills", block(runtimepolicy.ControlCryptoMiner), false, outcome{Report: true, Status: fleet.StatusBlock, Kill: true, Note: "killed after exec"}},
		{"miner audit", detect(runtimepolicy.ControlCryptoMiner), true, outcome{Report: true, Status: fleet.StatusDetect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := afterExec(tt.d, tt.guarded); got != tt.want {
				t.Errorf("afterExec = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// effective compiles policies and returns what applies to a workload
// labelled app=web.
func effective(t *testing.T, policies string) *runtimepolicy.Effective {
	t.Helper()
	b, err := ParsePolicyFile([]byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	set, err := runtimepolicy.Compile(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return set.For(runtimepolicy.Workload{Container: "web-1", Image: "nginx:1.27", Labels: map[string]string{"app": "web"}})
}

func TestNeedsGuardAndExecDecision(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		guard  bool
		x      runtimepolicy.ExecContext
		want   runtimepolicy.Action
	}{
		{"exec session blocked", `{"name": "p", "enabled": true, "mode": "enforce", "controls": {"blockExec": {}}}`, true,
			runtimepolicy.ExecContext{Path: "/bin/sh", ExecSession: true, FromImage: true}, runtimepolicy.Block},
		{"own process allowed", `{"name": "p", "enabled": true, "mode": "enforce", "controls": {"blockExec": {}}}`, true,
			runtimepolicy.ExecContext{Path: "/bin/sh", FromImage: true}, runtimepolicy.Allow},
		{"drift detected in audit", `{"name": "p", "enabled": true, "controls": {"driftPrevention": {}}}`, true,
			runtimepolicy.ExecContext{Path: "/tmp/x"}, runtimepolicy.Detect},
		{"fork guard needs no guard", `{"name": "p", "enabled": true, "controls": {"forkGuard": {"maxProcesses": 5}}}`, false,
			runtimepolicy.ExecContext{Path: "/tmp/x"}, runtimepolicy.Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eff := effective(t, tt.policy)
			if got := needsGuard(eff); got != tt.guard {
				t.Errorf("needsGuard = %v, want %v", got, tt.guard)
			}
			if got := eff.Exec(tt.x).Action; got != tt.want {
				t.Errorf("Exec = %v, want %v", got, tt.want)
			}
		})
	}
	if needsGuard(nil) {
		t.Error("needsGuard(nil) = true")
	}
}

func TestAuditOnly(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   bool
	}{
		{"audit exec controls", `{"name": "p", "enabled": true, "mode": "audit", "controls": {"blockExec": {}, "driftPrevention": {}}}`, true},
		{"enforce exec control", `{"name": "p", "enabled": true, "mode": "enforce", "controls": {"blockExec": {}}}`, false},
		{"mixed modes", `[{"name": "p", "enabled": true, "mode": "audit", "controls": {"blockExec": {}}},
			{"name": "q", "enabled": true, "mode": "enforce", "controls": {"driftPrevention": {}}}]`, false},
		{"enforce miner", `{"name": "p", "enabled": true, "mode": "enforce", "controls": {"cryptoMiner": true}}`, false},
		{"enforce fork guard only", `{"name": "p", "enabled": true, "mode": "enforce", "controls": {"forkGuard": {"maxProcesses": 5}}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auditOnly(effective(t, tt.policy)); got != tt.want {
				t.Errorf("auditOnly = %v, want %v", got, tt.want)
			}
		})
	}
	if auditOnly(nil) {
		t.Error("auditOnly(nil) = true")
	}
}

func TestFirewallPolicy(t *testing.T) {
	fw := func(p, mode, out string) string {
		return `{"name": "` + p + `", "enabled": true, "mode": "` + mode + `", "controls": {"firewall": {"allowOutbound": ` + out + `}}}`
	}
	t.Run("one enforce", func(t *testing.T) {
		p, ok, note := firewallPolicy(effective(t, "["+fw("a", "enforce", `["tcp/443", "192.0.2.0/24"]`)+"]").Firewall())
		want := []firewall.Rule{
			{Direction: firewall.Outbound, Protocol: firewall.TCP, Port: 443},
			{Direction: firewall.Outbound, Remote: netip.MustParsePrefix("192.0.2.0/24")},
		}
		if !ok || note != "" || !p.FilterOutbound || p.FilterInbound || len(p.Allow) != 2 || p.Allow[0] != want[0] || p.Allow[1] != want[1] {
			t.Errorf("firewallPolicy = %+v, %v, %q", p, ok, note)
		}
	})
	t.Run("audit only", func(t *testing.T) {
		_, ok, note := firewallPolicy(effective(t, "["+fw("a", "audit", `[]`)+"]").Firewall())
		if ok || !strings.Contains(note, "audit") {
			t.Errorf("ok %v note %q", ok, note)
		}
	})
	t.Run("two differing", func(t *testing.T) {
		_, ok, note := firewallPolicy(effective(t, "["+fw("a", "enforce", `["tcp/443"]`)+","+fw("b", "enforce", `["tcp/80"]`)+"]").Firewall())
		if ok || !strings.Contains(note, "differ") {
			t.Errorf("ok %v note %q", ok, note)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, ok, note := firewallPolicy(nil); ok || note != "" {
			t.Errorf("ok %v note %q", ok, note)
		}
	})
}

func TestControlCapabilities(t *testing.T) {
	active := map[string]bool{runtimepolicy.ControlBlockExec: true, runtimepolicy.ControlForkGuard: true, runtimepolicy.ControlBlockedSyscalls: true}
	got := controlCapabilities(active, func(n string) bool { return n == preflightPids })
	want := map[string]bool{"enforce.blockExec": false, "enforce.forkGuard": true, "enforce.blockedSyscalls": false}
	if len(got) != len(want) {
		t.Fatalf("capabilities = %+v", got)
	}
	for _, c := range got {
		if w, ok := want[c.Name]; !ok || w != c.Available || c.Detail == "" {
			t.Errorf("capability %+v, want available %v", c, w)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := loadState(dir)
	if err != nil || len(s.Pids) != 0 {
		t.Fatalf("fresh state = %+v, %v", s, err)
	}
	s.Pids["/sys/fs/cgroup/pids/docker/x"] = -1
	s.Firewalls["abc"] = 42
	if err := saveState(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil || got.Pids["/sys/fs/cgroup/pids/docker/x"] != -1 || got.Firewalls["abc"] != 42 {
		t.Errorf("loaded %+v, %v", got, err)
	}
	if err := os.WriteFile(dir+"/"+stateName, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(dir); err == nil || !strings.Contains(err.Error(), stateName) {
		t.Errorf("corrupt state error = %v", err)
	}
	if !isV1("/sys/fs/cgroup/pids/docker/x") || isV1("/sys/fs/cgroup/unified/x") {
		t.Error("isV1")
	}
}

func TestGuardActs(t *testing.T) {
	tests := []struct {
		d    runtimepolicy.Decision
		want bool
	}{
		{runtimepolicy.Decision{}, false},
		{runtimepolicy.Decision{Action: runtimepolicy.Detect, Control: runtimepolicy.ControlBlockExec}, true},
		{runtimepolicy.Decision{Action: runtimepolicy.Block, Control: runtimepolicy.ControlDriftPrevention}, true},
		{runtimepolicy.Decision{Action: runtimepolicy.Block, Control: runtimepolicy.ControlCryptoMiner}, true},
		{runtimepolicy.Decision{Action: runtimepolicy.Detect, Control: runtimepolicy.ControlCryptoMiner}, false},
		{runtimepolicy.Decision{Action: runtimepolicy.Block, Control: runtimepolicy.ControlReverseShell}, false},
	}
	for _, tt := range tests {
		if got := guardActs(tt.d); got != tt.want {
			t.Errorf("guardActs(%+v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
