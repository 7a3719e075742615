package assurance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/vuln"
)

func TestLoad(t *testing.T) {
	p, err := Load("testdata/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Name:        "production",
		Description: "Images deployed to production clusters.",
		Mode:        ModeEnforce,
		Controls: Controls{
			MaxSeverity:    sevPtr(vuln.SeverityCritical),
			MaxCVSSScore:   floatPtr(9),
			SeverityCounts: map[vuln.Severity]int{vuln.SeverityCritical: 0, vuln.SeverityHigh: 5},
			FixableOnly:    true,
			BlockCVEs:      []string{"CVE-2021-44228", "GHSA-jfh8-c2jp-5v3q"},
			BlockPackages: []PackageRule{
				{Name: "log4j-core", Type: "maven", Versions: []string{"2.14.0", "2.14.1"}},
				{Name: "xz-utils", Versions: []string{"5.6.0", "5.6.1"}},
				{Name: "telnetd"},
			},
			IgnoreUnreachable: true,
		},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Load = %+v\nwant %+v", p, want)
	}
	m, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Controls.MaxSeverity == nil || *m.Controls.MaxSeverity != vuln.SeverityCritical {
		t.Errorf("minimal: max_severity = %v", m.Controls.MaxSeverity)
	}
}

func TestLoadMissingAndTooLarge(t *testing.T) {
	if _, err := Load("testdata/nonexistent.yaml"); err == nil || !strings.Contains(err.Error(), "nonexistent.yaml") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxPolicySize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "big.yaml") || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversize file: %v", err)
	}
}

const header = "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: p\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data string
		// want are substrings of the error.
		want []string
	}{
		{"empty", "", []string{"file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"two documents", header + "controls: {max_severity: HIGH}\n---\n" + header, []string{"more than one YAML document"}},
		{"syntax", header + "controls: [\n", []string{"line"}},
		{"unknown top key", header + "control:\n  max_severity: HIGH\n", []string{`unknown key "control"`, "line 4", "the policy"}},
		{"unknown control", header + "controls:\n  max_severity: HIGH\n  disalow_root: true\n", []string{`unknown key "disalow_root"`, "in controls", "line 6"}},
		{"unknown licenses key", header + "controls:\n  licenses:\n    forbid: [GPL-3.0-only]\n", []string{`unknown key "forbid"`, "in licenses"}},
		{"bad license id", header + "controls:\n  licenses:\n    forbidden: [\"GPL 3\"]\n", []string{"licenses: forbidden[0]", `"GPL 3"`}},
		{"bad license glob", header + "controls:\n  licenses:\n    allowed: [\"*BSD\"]\n", []string{"licenses: allowed[0]"}},
		{"unknown license category", header + "controls:\n  licenses:\n    forbidden_categories: [copyleft]\n", []string{`unknown category "copyleft"`}},
		{"empty misconfiguration id", header + "controls:\n  block_misconfigurations: [\"\"]\n", []string{"block_misconfigurations[0]"}},
		{"unknown block_packages key", header + "controls:\n  block_packages:\n    - name: a\n      version: 1\n", []string{`unknown key "version"`, "block_packages[0]"}},
		{"wrong apiVersion", "apiVersion: v2\nkind: AssurancePolicy\nname: p\ncontrols: {max_severity: HIGH}\n", []string{"apiVersion", `"v2"`}},
		{"wrong kind", "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\ncontrols: {max_severity: HIGH}\n", []string{"kind", `"Policy"`}},
		{"no name", "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\ncontrols: {max_severity: HIGH}\n", []string{"name is missing"}},
		{"no controls", header, []string{"no control is set"}},
		{"bad mode", header + "mode: block\ncontrols: {max_severity: HIGH}\n", []string{"mode", `"block"`}},
		{"schedule on enforce", header + "enforce_from: 2026-12-01\ncontrols: {max_severity: HIGH}\n", []string{"enforce_from", "audit-mode"}},
		{"bad schedule", header + "mode: audit\nenforce_from: next week\ncontrols: {max_severity: HIGH}\n", []string{"enforce_from", `"next week"`}},
		{"enabled not bool", header + "enabled: maybe\ncontrols: {max_severity: HIGH}\n", []string{"bool"}},
		{"only modifiers", header + "controls: {fixable_only: true}\n", []string{"no control is set"}},
		{"bad severity", header + "controls: {max_severity: SEVERE}\n", []string{"max_severity", `"SEVERE"`}},
		{"numeric severity", header + "controls: {max_severity: 3}\n", []string{"max_severity", `"3"`}},
		{"empty severity", header + "controls: {max_severity: ''}\n", []string{"max_severity", "empty"}},
		{"score too high", header + "controls: {max_cvss_score: 11}\n", []string{"max_cvss_score", "11"}},
		{"score negative", header + "controls: {max_cvss_score: -1}\n", []string{"max_cvss_score"}},
		{"score NaN", header + "controls: {max_cvss_score: .nan}\n", []string{"max_cvss_score"}},
		{"score string", header + "controls: {max_cvss_score: high}\n", []string{"float64"}},
		{"negative count", header + "controls: {severity_counts: {HIGH: -1}}\n", []string{"severity_counts", "negative"}},
		{"duplicate count", header + "controls: {severity_counts: {HIGH: 1, important: 2}}\n", []string{"severity_counts", "twice"}},
		{"duplicate key", header + "controls: {max_severity: HIGH, max_severity: LOW}\n", []string{"already defined"}},
		{"bad count key", header + "controls: {severity_counts: {HIHG: 1}}\n", []string{"severity_counts", `"HIHG"`}},
		{"empty cve", header + "controls: {block_cves: ['']}\n", []string{"block_cves[0]"}},
		{"cve with space", header + "controls: {block_cves: [CVE-1 CVE-2]}\n", []string{"block_cves[0]"}},
		{"package without name", header + "controls: {block_packages: [{type: deb}]}\n", []string{"block_packages[0]", "name is missing"}},
		{"package bad type", header + "controls: {block_packages: [{name: a, type: mavne}]}\n", []string{"block_packages[0]", `"mavne"`}},
		{"package empty version", header + "controls: {block_packages: [{name: a, versions: ['']}]}\n", []string{"versions[0]"}},
		{"versions not a list", header + "controls: {block_packages: [{name: a, versions: '< 2.17'}]}\n", []string{"line 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tt.data))
			if err == nil {
				t.Fatalf("no error, policy %+v", p)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "assurance policy policy.yaml: ") {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/production.yaml", "testdata/minimal.yaml", "testdata/image.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(header + "controls: {severity_counts: {HIGH: 1, important: 2}}\n"))
	f.Add([]byte(header + "controls: {block_packages: [{name: a, versions: ['1']}]}\n"))
	f.Add([]byte("&a [*a]"))
	pub, err := os.ReadFile("testdata/cosign.pub")
	if err != nil {
		f.Fatal(err)
	}
	key, err := json.Marshal(string(pub)) // a JSON string is a YAML string
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(header + "controls:\n  max_image_age: 12w\n  required_labels: {a: 'x*'}\n  signature_required: {keys: [" + string(key) + "]}\n" +
		"  trusted_base_images: [{name: debian, layers: [sha256:" + strings.Repeat("a", 64) + "]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			return
		}
		if p.Name == "" || p.Controls.empty() {
			t.Fatalf("accepted policy without name or controls: %+v", p)
		}
		if s := p.Controls.MaxCVSSScore; s != nil && (*s < 0 || *s > 10) {
			t.Fatalf("accepted score %v", *s)
		}
		for _, n := range p.Controls.SeverityCounts {
			if n < 0 {
				t.Fatalf("accepted negative count %d", n)
			}
		}
		if p.Controls.MaxImageAge < 0 {
			t.Fatalf("accepted negative age %v", p.Controls.MaxImageAge)
		}
		if sr := p.Controls.SignatureRequired; sr != nil && len(sr.Keys) == 0 {
			t.Fatal("accepted signature_required without keys")
		}
		for _, b := range p.Controls.TrustedBaseImages {
			if b.Name == "" || checkDiffIDs(b.Layers) != nil {
				t.Fatalf("accepted base image %+v", b)
			}
		}
		// An accepted policy must evaluate without panicking.
		Evaluate(p, Subject{Findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, score(9.8))}})
		Evaluate(p, Subject{Now: time.Unix(1e9, 0), Created: time.Unix(0, 0), Layers: []string{"sha256:x"}, Labels: map[string]string{"a": "xy"},
			Exceptions: []Exception{{ID: "e", Image: "*", Control: ControlLabels, Expires: time.Unix(2e9, 0), Justification: "j"}}})
	})
}

func TestModes(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, doc string
		now       time.Time
		disabled  bool
		mode      string
	}{
		{"default", "", day, false, ModeEnforce},
		{"audit", "mode: audit\n", day, false, ModeAudit},
		{"disabled", "enabled: false\nmode: audit\n", day, true, ModeAudit},
		{"before schedule", "mode: audit\nenforce_from: 2026-12-01\n", day.Add(-time.Second), false, ModeAudit},
		{"at schedule", "mode: audit\nenforce_from: 2026-12-01\n", day, false, ModeEnforce},
		{"rfc3339 schedule", "mode: audit\nenforce_from: 2026-11-30T23:00:00-02:00\n", day, false, ModeAudit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p", []byte(header+tt.doc+"controls: {disallow_malware: true}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Disabled != tt.disabled || p.EffectiveMode(tt.now) != tt.mode {
				t.Errorf("disabled %v, mode at %v %q; want %v, %q", p.Disabled, tt.now, p.EffectiveMode(tt.now), tt.disabled, tt.mode)
			}
			v := &Verdict{Pass: false, Mode: p.EffectiveMode(tt.now)}
			if v.Fails() != (tt.mode == ModeEnforce) {
				t.Errorf("a failing %s verdict Fails() = %v", tt.mode, v.Fails())
			}
		})
	}
}
