package assurance

import (
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

func TestRunsAsRoot(t *testing.T) {
	for user, want := range map[string]bool{
		"": true, "root": true, "0": true, "0:0": true, "root:wheel": true, " 00 ": true,
		"1000": false, "app": false, "nobody:nogroup": false, "10": false, "1000:0": false,
	} {
		if got := RunsAsRoot(user); got != want {
			t.Errorf("RunsAsRoot(%q) = %v, want %v", user, got, want)
		}
	}
}

// TestContentControls checks the secret, malware, root, misconfiguration
// and license controls, allow and deny for each.
func TestContentControls(t *testing.T) {
	secret := inventory.Finding{Kind: inventory.KindSecret, RuleID: "aws-access-key-id", Path: "/app/.env"}
	mal := inventory.Finding{Kind: inventory.KindMalware, RuleID: "Eicar-Test-Signature", Path: "/tmp/eicar"}
	mis := inventory.Finding{Kind: inventory.KindMisconfig, RuleID: "MISC-001", Category: "CIS-4.1"}
	licenses := func(problems ...LicenseProblem) func(LicenseControls) []LicenseProblem {
		return func(LicenseControls) []LicenseProblem { return problems }
	}
	tests := []struct {
		name     string
		controls Controls
		subject  Subject
		want     string // control of the only violation, "" for a pass
		message  string
	}{
		{"no malware", Controls{DisallowMalware: true}, Subject{Secrets: []inventory.Finding{secret}}, "", ""},
		{"malware", Controls{DisallowMalware: true}, Subject{Malware: []inventory.Finding{mal}}, ControlMalware, "Eicar-Test-Signature at /tmp/eicar"},
		{"secret", Controls{DisallowSecrets: true}, Subject{Secrets: []inventory.Finding{secret}}, ControlSecrets, "aws-access-key-id at /app/.env"},
		{"no secret", Controls{DisallowSecrets: true}, Subject{Malware: []inventory.Finding{mal}}, "", ""},
		{"root", Controls{DisallowRoot: true}, Subject{HasConfig: true}, ControlRoot, "no USER is set"},
		{"uid 0", Controls{DisallowRoot: true}, Subject{HasConfig: true, User: "0"}, ControlRoot, `USER is "0"`},
		{"non-root", Controls{DisallowRoot: true}, Subject{HasConfig: true, User: "app"}, "", ""},
		{"no config", Controls{DisallowRoot: true}, Subject{}, ControlRoot, "no configuration"},
		{"misconfig by id", Controls{BlockMisconfigurations: []string{"MISC-001"}}, Subject{Misconfigurations: []inventory.Finding{mis}}, ControlMisconfigs, "MISC-001"},
		{"misconfig by CIS id", Controls{BlockMisconfigurations: []string{"CIS-4.1"}}, Subject{Misconfigurations: []inventory.Finding{mis}}, ControlMisconfigs, "MISC-001"},
		{"misconfig other", Controls{BlockMisconfigurations: []string{"CIS-4.6"}}, Subject{Misconfigurations: []inventory.Finding{mis}}, "", ""},
		{"licenses not analysed", Controls{Licenses: LicenseControls{Forbidden: []string{"GPL-3.0-only"}}}, Subject{}, ControlLicenses, "no license analysis ran"},
		{"licenses pass", Controls{Licenses: LicenseControls{Forbidden: []string{"GPL-3.0-only"}}}, Subject{Licenses: licenses()}, "", ""},
		{"licenses fail", Controls{Licenses: LicenseControls{Forbidden: []string{"GPL-3.0-only"}}},
			Subject{Licenses: licenses(LicenseProblem{Package: "deb:bash@5.2", License: "GPL-3.0-or-later", Reason: "forbidden"})},
			ControlLicenses, "1 package with a rejected license: deb:bash@5.2 (GPL-3.0-or-later: forbidden)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(&Policy{Name: "p", Controls: tc.controls}, tc.subject)
			if tc.want == "" {
				if !v.Pass {
					t.Fatalf("verdict %+v, want pass", v)
				}
				return
			}
			if v.Pass || len(v.Violations) != 1 || v.Violations[0].Control != tc.want {
				t.Fatalf("verdict %+v, want one %s violation", v, tc.want)
			}
			if !strings.Contains(v.Violations[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", v.Violations[0].Message, tc.message)
			}
		})
	}
}

func TestParseContentControls(t *testing.T) {
	p, err := Parse("p.yaml", []byte(header+`controls:
  disallow_malware: true
  disallow_secrets: true
  disallow_root: true
  block_misconfigurations: [CIS-4.1, MISC-006]
  licenses:
    allowed: [MIT, "BSD-*", Apache-2.0]
    forbidden: [AGPL-3.0-only]
    forbidden_categories: [forbidden, unknown]
`))
	if err != nil {
		t.Fatal(err)
	}
	c := p.Controls
	if !c.DisallowMalware || !c.DisallowSecrets || !c.DisallowRoot ||
		!slices.Equal(c.BlockMisconfigurations, []string{"CIS-4.1", "MISC-006"}) ||
		!slices.Equal(c.Licenses.Allowed, []string{"MIT", "BSD-*", "Apache-2.0"}) ||
		!slices.Equal(c.Licenses.ForbiddenCategories, []string{"forbidden", "unknown"}) {
		t.Errorf("controls = %+v", c)
	}
}
