package assurance

import (
	"reflect"
	"testing"

	"github.com/mamorisec/mamori/internal/vuln"
)

func TestParseSeverities(t *testing.T) {
	tests := []struct {
		in      []string
		want    []vuln.Severity
		wantErr bool
	}{
		{in: nil, want: nil},
		{in: []string{"CRITICAL,HIGH"}, want: []vuln.Severity{vuln.SeverityCritical, vuln.SeverityHigh}},
		{in: []string{"high", "critical", "HIGH"}, want: []vuln.Severity{vuln.SeverityCritical, vuln.SeverityHigh}},
		{in: []string{"unknown,low"}, want: []vuln.Severity{vuln.SeverityLow, vuln.SeverityUnknown}},
		{in: []string{"HIGH,"}, wantErr: true},
		{in: []string{"SEVERE"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSeverities(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSeverities(%q) error = %v", tt.in, err)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSeverities(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestGate checks that the flags, turned into a policy, gate like the
// scan command documents.
func TestGate(t *testing.T) {
	findings := []vuln.Finding{
		finding("CVE-1", vuln.SeverityHigh),
		finding("CVE-2", vuln.SeverityMedium, fixed),
		finding("CVE-3", vuln.SeverityCritical, suppressed),
	}
	tests := []struct {
		name       string
		gate       Gate
		findings   []vuln.Finding
		wantPolicy bool
		wantStatus int
	}{
		{name: "no exit code, no gate", gate: Gate{Severities: []vuln.Severity{vuln.SeverityHigh}}, findings: findings},
		{name: "exit code, all severities", gate: Gate{ExitCode: 3}, findings: findings, wantPolicy: true, wantStatus: 3},
		{name: "exit code, no findings", gate: Gate{ExitCode: 3}, wantPolicy: true},
		{name: "HIGH selected", gate: Gate{ExitCode: 1, Severities: []vuln.Severity{vuln.SeverityHigh}}, findings: findings, wantPolicy: true, wantStatus: 1},
		{name: "HIGH selected, unfixed ignored", gate: Gate{ExitCode: 1, IgnoreUnfixed: true, Severities: []vuln.Severity{vuln.SeverityHigh}}, findings: findings, wantPolicy: true},
		{name: "MEDIUM selected, unfixed ignored", gate: Gate{ExitCode: 1, IgnoreUnfixed: true, Severities: []vuln.Severity{vuln.SeverityMedium}}, findings: findings, wantPolicy: true, wantStatus: 1},
		{name: "CRITICAL only suppressed", gate: Gate{ExitCode: 1, Severities: []vuln.Severity{vuln.SeverityCritical}}, findings: findings, wantPolicy: true},
		{name: "unknown severity counts without --severity", gate: Gate{ExitCode: 1}, findings: []vuln.Finding{finding("CVE-9", vuln.SeverityUnknown)}, wantPolicy: true, wantStatus: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.gate.Policy()
			if err != nil {
				t.Fatal(err)
			}
			if (p != nil) != tt.wantPolicy {
				t.Fatalf("policy = %+v, want one: %v", p, tt.wantPolicy)
			}
			var v *Verdict
			if p != nil {
				r := Evaluate(p, Subject{Findings: tt.findings})
				v = &r
				if r.Policy != GatePolicyName {
					t.Errorf("verdict policy = %q", r.Policy)
				}
			}
			if got := tt.gate.ExitStatus(v); got != tt.wantStatus {
				t.Errorf("exit status = %d, want %d (verdict %+v)", got, tt.wantStatus, v)
			}
		})
	}
}

func TestGateExitStatusWithPolicyFile(t *testing.T) {
	fail := &Verdict{Policy: "production", Violations: []Violation{{Control: ControlMaxSeverity}}}
	if got := (Gate{}).ExitStatus(fail); got != 1 {
		t.Errorf("failed policy without --exit-code: status %d, want 1", got)
	}
	if got := (Gate{ExitCode: 4}).ExitStatus(fail); got != 4 {
		t.Errorf("failed policy with --exit-code 4: status %d, want 4", got)
	}
	if got := (Gate{ExitCode: 4}).ExitStatus(&Verdict{Pass: true}); got != 0 {
		t.Errorf("passed policy: status %d, want 0", got)
	}
}

func TestGateBadExitCode(t *testing.T) {
	for _, code := range []int{-1, 256} {
		if _, err := (Gate{ExitCode: code}).Policy(); err == nil {
			t.Errorf("--exit-code %d accepted", code)
		}
	}
}
