package assurance

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

func TestExceptionValidate(t *testing.T) {
	valid := Exception{ID: "EX-1", Image: "*", Finding: "CVE-1", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Justification: "not reachable", CreatedBy: "alice"}
	with := func(mod func(*Exception)) Exception { e := valid; mod(&e); return e }
	tests := []struct {
		name string
		e    Exception
		want string // "" when valid
	}{
		{"finding", valid, ""},
		{"control", with(func(e *Exception) { e.Finding, e.Control = "", ControlImageAge }), ""},
		{"no id", with(func(e *Exception) { e.ID = " " }), "id is missing"},
		{"no image", with(func(e *Exception) { e.Image = "" }), "image is missing"},
		{"neither finding nor control", with(func(e *Exception) { e.Finding = "" }), "exactly one of finding and control"},
		{"both finding and control", with(func(e *Exception) { e.Control = ControlMaxSeverity }), "exactly one of finding and control"},
		{"finding with space", with(func(e *Exception) { e.Finding = "CVE-1 CVE-2" }), "not a finding ID"},
		{"unknown control", with(func(e *Exception) { e.Finding, e.Control = "", "max_age" }), `unknown control "max_age"`},
		{"no expiry", with(func(e *Exception) { e.Expires = time.Time{} }), "every exception must expire"},
		{"no justification", with(func(e *Exception) { e.Justification = "\n" }), "justification is missing"},
	}
	for _, tc := range tests {
		err := tc.e.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestExceptions checks which exceptions apply, what they suppress or
// waive, and how the verdict lists them.
func TestExceptions(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(24*time.Hour), now.Add(-time.Second)
	image := "registry.example.com/payments/api:1.4"
	ex := func(id, finding, control string, mods ...func(*Exception)) Exception {
		e := Exception{ID: id, Image: "*", Finding: finding, Control: control, Expires: later, Justification: "accepted by " + id, CreatedBy: "alice"}
		for _, m := range mods {
			m(&e)
		}
		return e
	}
	expires := func(t time.Time) func(*Exception) { return func(e *Exception) { e.Expires = t } }
	onImage := func(glob string) func(*Exception) { return func(e *Exception) { e.Image = glob } }
	critical := Controls{MaxSeverity: sevPtr(vuln.SeverityCritical)}
	twoCritical := []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, aliases("GHSA-1")), finding("CVE-2", vuln.SeverityCritical)}
	oneCritical := twoCritical[:1]
	secret := inventory.Finding{Kind: inventory.KindSecret, RuleID: "aws-access-key-id", Path: "/app/.env"}
	mis := inventory.Finding{Kind: inventory.KindMisconfig, RuleID: "MISC-001", Category: "CIS-4.1"}
	old := Subject{Now: now, Image: image, Created: now.Add(-400 * 24 * time.Hour)}
	ageAndCritical := Controls{MaxSeverity: sevPtr(vuln.SeverityCritical), MaxImageAge: Duration(90 * 24 * time.Hour)}

	type applied struct {
		id                 string
		findings, controls []string
	}
	tests := []struct {
		name       string
		controls   Controls
		subject    Subject
		exceptions []Exception
		violations []string // controls still violated, in order
		waived     []string // controls waived
		applied    []applied
	}{
		{name: "finding by ID", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}}},
		{name: "finding by alias, any case", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "ghsa-1", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}}},
		{name: "one of two findings", controls: critical, subject: Subject{Findings: twoCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "")},
			violations: []string{ControlMaxSeverity},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}}},
		{name: "both findings, listed by ID", controls: critical, subject: Subject{Findings: twoCritical},
			exceptions: []Exception{ex("EX-2", "CVE-2", ""), ex("EX-1", "CVE-1", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}, {id: "EX-2", findings: []string{"CVE-2"}}}},
		{name: "finding exception also lifts block_cves", controls: Controls{BlockCVEs: []string{"CVE-1"}}, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}}},
		{name: "expired", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", expires(earlier))},
			violations: []string{ControlMaxSeverity}},
		{name: "expires exactly now", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", expires(now))},
			violations: []string{ControlMaxSeverity}},
		{name: "no expiry never applies", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", expires(time.Time{}))},
			violations: []string{ControlMaxSeverity}},
		{name: "invalid exception never applies", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", func(e *Exception) { e.Justification = "" })},
			violations: []string{ControlMaxSeverity}},
		{name: "no evaluation time", controls: critical, subject: Subject{Findings: oneCritical, Now: time.Time{}},
			exceptions: []Exception{ex("EX-1", "CVE-1", "")},
			violations: []string{ControlMaxSeverity}},
		{name: "image pattern matches", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", onImage("registry.example.com/payments/*"))},
			applied:    []applied{{id: "EX-1", findings: []string{"CVE-1"}}}},
		{name: "image pattern does not match", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-1", "", onImage("registry.example.com/billing/*"))},
			violations: []string{ControlMaxSeverity}},
		{name: "other finding", controls: critical, subject: Subject{Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "CVE-9", "")},
			violations: []string{ControlMaxSeverity}},
		{name: "finding that does not count is not recorded", controls: critical,
			subject:    Subject{Findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, suppressed)}},
			exceptions: []Exception{ex("EX-1", "CVE-1", "")}},
		{name: "secret rule", controls: Controls{DisallowSecrets: true}, subject: Subject{Secrets: []inventory.Finding{secret}},
			exceptions: []Exception{ex("EX-1", "aws-access-key-id", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"aws-access-key-id"}}}},
		{name: "misconfiguration by CIS ID", controls: Controls{BlockMisconfigurations: []string{"MISC-001"}}, subject: Subject{Misconfigurations: []inventory.Finding{mis}},
			exceptions: []Exception{ex("EX-1", "CIS-4.1", "")},
			applied:    []applied{{id: "EX-1", findings: []string{"MISC-001"}}}},
		{name: "control waived", controls: ageAndCritical, subject: old,
			exceptions: []Exception{ex("EX-1", "", ControlImageAge)},
			waived:     []string{ControlImageAge},
			applied:    []applied{{id: "EX-1", controls: []string{ControlImageAge}}}},
		{name: "one of two violations waived", controls: ageAndCritical, subject: Subject{Now: now, Image: image, Created: old.Created, Findings: oneCritical},
			exceptions: []Exception{ex("EX-1", "", ControlImageAge)},
			violations: []string{ControlMaxSeverity}, waived: []string{ControlImageAge},
			applied: []applied{{id: "EX-1", controls: []string{ControlImageAge}}}},
		{name: "control that passes is not recorded", controls: ageAndCritical, subject: Subject{Now: now, Image: image, Created: now},
			exceptions: []Exception{ex("EX-1", "", ControlImageAge)}},
		{name: "expired control waiver", controls: ageAndCritical, subject: old,
			exceptions: []Exception{ex("EX-1", "", ControlImageAge, expires(earlier))},
			violations: []string{ControlImageAge}},
		{name: "signature waiver", controls: Controls{SignatureRequired: &SignatureControl{Keys: nil}}, subject: Subject{Now: now, Image: image},
			exceptions: []Exception{ex("EX-1", "", ControlSignature)},
			waived:     []string{ControlSignature},
			applied:    []applied{{id: "EX-1", controls: []string{ControlSignature}}}},
	}
	controlsOf := func(vs []Violation) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Control)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.subject
			if s.Image == "" {
				s.Image = image
			}
			if s.Now.IsZero() && tc.name != "no evaluation time" {
				s.Now = now
			}
			s.Exceptions = tc.exceptions
			v := Evaluate(&Policy{Name: "p", Controls: tc.controls}, s)
			if got := controlsOf(v.Violations); !reflect.DeepEqual(got, tc.violations) || v.Pass != (len(tc.violations) == 0) {
				t.Errorf("violations %q (pass %v), want %q", got, v.Pass, tc.violations)
			}
			if got := controlsOf(v.Waived); !reflect.DeepEqual(got, tc.waived) {
				t.Errorf("waived %q, want %q", got, tc.waived)
			}
			var got []applied
			for _, a := range v.Exceptions {
				got = append(got, applied{id: a.ID, findings: a.Findings, controls: a.Controls})
				if a.Justification != "accepted by "+a.ID || a.CreatedBy != "alice" || !a.Expires.Equal(later) {
					t.Errorf("applied exception %+v does not carry the exception's details", a)
				}
			}
			if !reflect.DeepEqual(got, tc.applied) {
				t.Errorf("applied %+v, want %+v", got, tc.applied)
			}
		})
	}
}

// TestVerdictJSONCompatible checks that a verdict without exceptions
// encodes as it did before exceptions existed.
func TestVerdictJSONCompatible(t *testing.T) {
	v := Evaluate(&Policy{Name: "p", Controls: Controls{DisallowRoot: true}}, Subject{HasConfig: true})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"policy":"p","pass":false,"violations":[{"control":"disallow_root","message":"containers run as root: no USER is set"}]}`
	if string(b) != want {
		t.Errorf("verdict JSON\n got %s\nwant %s", b, want)
	}
}
