package runtimepolicy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const fullJSON = `{
  "name": "web",
  "description": "web tier",
  "enabled": true,
  "mode": "audit",
  "schedule": {"enforceFrom": "2026-12-01T00:00:00Z", "enforceAfterDays": 30},
  "scopes": ["team-a"],
  "criteria": "namespace == \"prod*\" && label[\"app\"] == \"web\"",
  "controls": {
    "blockExec": {"allowedProcesses": ["/bin/ls", "ps"], "mode": "enforce"},
    "driftPrevention": {"allowed": ["/tmp/*.so"]},
    "allowedExecutables": {"items": ["/usr/bin/*", "/bin/*"], "mode": "enforce"},
    "blockedExecutables": ["/usr/bin/nc", "wget"],
    "forkGuard": {"maxProcesses": 100},
    "blockUnapprovedImages": true,
    "fileIntegrity": {"paths": ["/etc/**"], "blockWrites": true},
    "blockedSyscalls": ["ptrace", "mount"],
    "reverseShell": {"enabled": true, "mode": "enforce"},
    "cryptoMiner": true,
    "learning": {"enabled": true},
    "firewall": {"allowOutbound": ["tcp/443", "udp/53", "192.0.2.0/24"], "allowInbound": ["tcp/8080"]}
  },
  "created": "2026-11-01T00:00:00Z"
}`

const fullYAML = `
name: web
description: web tier
enabled: true
mode: audit
schedule:
  enforceFrom: 2026-12-01T00:00:00Z
  enforceAfterDays: 30
scopes: [team-a]
criteria: 'namespace == "prod*" && label["app"] == "web"'
controls:
  blockExec: {allowedProcesses: [/bin/ls, ps], mode: enforce}
  driftPrevention: {allowed: ["/tmp/*.so"]}
  allowedExecutables: {items: ["/usr/bin/*", "/bin/*"], mode: enforce}
  blockedExecutables: [/usr/bin/nc, wget]
  forkGuard: {maxProcesses: 100}
  blockUnapprovedImages: true
  fileIntegrity: {paths: ["/etc/**"], blockWrites: true}
  blockedSyscalls: [ptrace, mount]
  reverseShell: {enabled: true, mode: enforce}
  cryptoMiner: true
  learning: {enabled: true}
  firewall:
    allowOutbound: [tcp/443, udp/53, 192.0.2.0/24]
    allowInbound: [tcp/8080]
created: 2026-11-01T00:00:00Z
`

func TestParseJSONAndYAML(t *testing.T) {
	pj, err := Parse([]byte(fullJSON))
	if err != nil {
		t.Fatalf("Parse(JSON): %v", err)
	}
	py, err := Parse([]byte(fullYAML))
	if err != nil {
		t.Fatalf("Parse(YAML): %v", err)
	}
	if !reflect.DeepEqual(pj, py) {
		t.Errorf("JSON and YAML differ:\n%+v\n%+v", pj, py)
	}
	if pj.Controls.ReverseShell.Mode != Enforce || !pj.Controls.CryptoMiner.Enabled || pj.Controls.AllowedExecutables.Mode != Enforce {
		t.Errorf("toggle or list forms not decoded: %+v", pj.Controls)
	}
	// Export and parse again: the same policy.
	out, err := pj.Export()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Export): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(pj, back) {
		t.Errorf("round trip differs:\n%+v\n%+v", pj, back)
	}
}

func TestParseDefaultsModeToAudit(t *testing.T) {
	p, err := Parse([]byte(`{"name": "x", "controls": {"cryptoMiner": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != Audit || p.Enabled {
		t.Errorf("got mode %q enabled %v, want audit and disabled", p.Mode, p.Enabled)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", "  ", "document is empty"},
		{"unknown top field", `{"name": "x", "colour": 1, "controls": {}}`, `unknown field "colour"`},
		{"unknown control", `{"name": "x", "controls": {"blockEverything": true}}`, `unknown field "blockEverything"`},
		{"unknown control field yaml", "name: x\ncontrols:\n  forkGuard: {max: 3}\n", `unknown field "max"`},
		{"unknown toggle field", `{"name": "x", "controls": {"cryptoMiner": {"on": true}}}`, `unknown field "on"`},
		{"toggle wrong type", `{"name": "x", "controls": {"cryptoMiner": "yes"}}`, "want true, false"},
		{"list wrong type", `{"name": "x", "controls": {"blockedSyscalls": "ptrace"}}`, "want a list of strings"},
		{"no name", `{"controls": {}}`, "name: must be 1 to 128"},
		{"bad name", `{"name": "a\tb", "controls": {}}`, "name: character"},
		{"bad mode", `{"name": "x", "mode": "block", "controls": {}}`, `mode: "block" is not audit or enforce`},
		{"bad control mode", `{"name": "x", "controls": {"forkGuard": {"maxProcesses": 5, "mode": "on"}}}`, "controls.forkGuard.mode"},
		{"fork zero", `{"name": "x", "controls": {"forkGuard": {"maxProcesses": 0}}}`, "controls.forkGuard.maxProcesses: 0"},
		{"bad glob", `{"name": "x", "controls": {"blockedExecutables": ["/bin/[ab]"]}}`, "controls.blockedExecutables[0]"},
		{"bad exec glob", `{"name": "x", "controls": {"blockExec": {"allowedProcesses": [""]}}}`, "controls.blockExec.allowedProcesses[0]"},
		{"empty allow list", `{"name": "x", "controls": {"allowedExecutables": []}}`, "controls.allowedExecutables: empty"},
		{"fim no paths", `{"name": "x", "controls": {"fileIntegrity": {"blockWrites": true}}}`, "controls.fileIntegrity.paths: empty"},
		{"bad syscall", `{"name": "x", "controls": {"blockedSyscalls": ["Ptrace!"]}}`, "controls.blockedSyscalls[0]"},
		{"bad port", `{"name": "x", "controls": {"firewall": {"allowOutbound": ["tcp/70000"]}}}`, "controls.firewall.allowOutbound[0]"},
		{"bad cidr", `{"name": "x", "controls": {"firewall": {"allowInbound": ["192.0.2.1/24"]}}}`, "host bits are set"},
		{"bad rule", `{"name": "x", "controls": {"firewall": {"allowInbound": ["icmp"]}}}`, "controls.firewall.allowInbound[0]"},
		{"schedule on enforce", `{"name": "x", "mode": "enforce", "schedule": {"enforceAfterDays": 3}, "controls": {}}`, "schedule: the policy already enforces"},
		{"schedule empty", `{"name": "x", "schedule": {}, "controls": {}}`, "schedule: set enforceFrom"},
		{"schedule negative", `{"name": "x", "schedule": {"enforceAfterDays": -1}, "created": "2026-01-01T00:00:00Z", "controls": {}}`, "enforceAfterDays: -1"},
		{"bad criteria", `{"name": "x", "criteria": "namespace = \"a\"", "controls": {}}`, "criteria: column 11"},
		{"empty scope", `{"name": "x", "scopes": [""], "controls": {}}`, "scopes[0]"},
		{"trailing", `{"name": "x", "controls": {}} {}`, "trailing data"},
		{"two yaml docs", "name: x\n---\nname: y\n", "more than one YAML document"},
		{"yaml alias", "name: &a x\ndescription: *a\ncontrols: {}\n", "aliases are not supported"},
		{"yaml dup key", "name: x\nname: y\n", `key "name" is repeated`},
		{"yaml number as name", "name: 3\ncontrols: {}\n", "cannot unmarshal number"},
		{"too large", `{"name": "` + strings.Repeat("a", MaxPolicySize) + `"}`, "larger than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseBundle(t *testing.T) {
	data, err := ExportBundle(Builtins())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps, Builtins()) {
		t.Errorf("bundle round trip differs")
	}
	yml := "- name: a\n  controls: {cryptoMiner: true}\n- name: b\n  controls: {reverseShell: true}\n"
	if ps, err := ParseBundle([]byte(yml)); err != nil || len(ps) != 2 {
		t.Errorf("ParseBundle(YAML) = %d, %v", len(ps), err)
	}
	for _, tc := range []struct{ doc, want string }{
		{`[{"name": "a", "controls": {}}, {"name": "a", "controls": {}}]`, `runtime policies[1]: name "a" is used twice`},
		{`[{"name": "a", "controls": {}}, {"controls": {}}]`, "runtime policies[1]: runtime policy"},
		{`{"name": "a"}`, "want a list of policies"},
	} {
		if _, err := ParseBundle([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseBundle(%s) error = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestEnforcesAt(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		p    Policy
		now  time.Time
		want Mode
	}{
		{"audit", Policy{Mode: Audit}, from, Audit},
		{"enforce", Policy{Mode: Enforce}, created, Enforce},
		{"before from", Policy{Mode: Audit, Schedule: &Schedule{EnforceFrom: &from}}, from.Add(-time.Second), Audit},
		{"at from", Policy{Mode: Audit, Schedule: &Schedule{EnforceFrom: &from}}, from, Enforce},
		{"before days", Policy{Mode: Audit, Created: created, Schedule: &Schedule{EnforceAfterDays: 10}}, created.AddDate(0, 0, 9), Audit},
		{"after days", Policy{Mode: Audit, Created: created, Schedule: &Schedule{EnforceAfterDays: 10}}, created.AddDate(0, 0, 10), Enforce},
		{"days without created", Policy{Mode: Audit, Schedule: &Schedule{EnforceAfterDays: 1}}, from, Audit},
		{"earlier of both", Policy{Mode: Audit, Created: created, Schedule: &Schedule{EnforceFrom: &from, EnforceAfterDays: 10}}, created.AddDate(0, 0, 11), Enforce},
	} {
		if got := tc.p.EnforcesAt(tc.now); got != tc.want {
			t.Errorf("%s: EnforcesAt = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	for _, s := range []string{"tcp/443", "udp/53", "tcp/*", "192.0.2.0/24", "2001:db8::/32", "192.0.2.7"} {
		r, err := ParseRule(s)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", s, err)
			continue
		}
		want := s
		if s == "192.0.2.7" {
			want = "192.0.2.7/32"
		}
		if r.String() != want {
			t.Errorf("ParseRule(%q).String() = %q", s, r.String())
		}
	}
	for _, s := range []string{"", "tcp/0", "tcp/080", "sctp/1", "tcp", "fe80::1%eth0", "300.1.1.1", "tcp/-1"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q) succeeded", s)
		}
	}
}

func TestBuiltinsGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Builtins() {
		if err := p.Validate(); err != nil {
			t.Errorf("built-in %q: %v", p.Name, err)
		}
		if seen[p.Name] {
			t.Errorf("built-in %q twice", p.Name)
		}
		seen[p.Name] = true
		if p.Mode != Audit {
			t.Errorf("built-in %q is not in audit mode", p.Name)
		}
		got, err := p.Export()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		golden := filepath.Join("testdata", "builtin-"+p.Name+".json")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("built-in %q export differs from %s (run go test -update):\n%s", p.Name, golden, got)
		}
		back, err := Parse(want)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("built-in %q: Parse(golden) = %+v, %v", p.Name, back, err)
		}
	}
	if !seen[BuiltinDefault] || !seen[BuiltinCIS] || !seen[BuiltinNIST] || !seen[BuiltinPCI] || !seen[BuiltinHIPAA] {
		t.Errorf("missing built-ins: %v", seen)
	}
}
