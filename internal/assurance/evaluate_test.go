package assurance

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// finding builds a counting, unfixed finding in deb:openssl@3.0.11; the
// options change it.
func finding(id string, sev vuln.Severity, opts ...func(*vuln.Finding)) vuln.Finding {
	f := vuln.Finding{
		ID:       id,
		Severity: sev,
		Status:   vuln.StatusNotFixed,
		Package:  vuln.Package{Name: "openssl", Version: "3.0.11", Type: "deb", Path: "/var/lib/dpkg/status"},
	}
	for _, o := range opts {
		o(&f)
	}
	return f
}

func fixed(f *vuln.Finding) {
	f.Status = vuln.StatusFixed
	f.FixedVersions = []string{"9.9.9"}
}

func score(s float64) func(*vuln.Finding) {
	return func(f *vuln.Finding) {
		f.CVSS = append(f.CVSS, vuln.CVSS{Version: "3.1", Score: s})
	}
}

func suppressed(f *vuln.Finding) {
	f.Suppressed = &vuln.Suppression{Kind: "ignore", Justification: "accepted risk"}
}

func notAffected(f *vuln.Finding) { f.Status = vuln.StatusNotAffected }

func unreachable(f *vuln.Finding) {
	f.Reachability = &vuln.Reachability{Status: vuln.ReachableNo}
}

func reachable(f *vuln.Finding) {
	f.Reachability = &vuln.Reachability{Status: vuln.ReachableYes}
}

func aliases(a ...string) func(*vuln.Finding) {
	return func(f *vuln.Finding) { f.Aliases = a }
}

func inPackage(typ, name, version string) func(*vuln.Finding) {
	return func(f *vuln.Finding) {
		f.Package = vuln.Package{Type: typ, Name: name, Version: version, Path: "/app"}
	}
}

func sevPtr(s vuln.Severity) *vuln.Severity { return &s }
func floatPtr(v float64) *float64           { return &v }

// TestEvaluate checks every control with a passing, a failing and the edge
// cases: exactly at the threshold, unknown severity, suppressed,
// not-affected, unfixed under fixable_only and not reachable.
func TestEvaluate(t *testing.T) {
	high := Controls{MaxSeverity: sevPtr(vuln.SeverityHigh)}
	cvss7 := Controls{MaxCVSSScore: floatPtr(7.0)}
	counts := Controls{SeverityCounts: map[vuln.Severity]int{vuln.SeverityCritical: 0, vuln.SeverityHigh: 1}}
	log4shell := Controls{BlockCVEs: []string{"CVE-2021-44228"}}
	with := func(c Controls, mod func(*Controls)) Controls { mod(&c); return c }

	tests := []struct {
		name     string
		controls Controls
		findings []vuln.Finding
		packages []inventory.Package
		// want lists the violated controls, in order.
		want []string
		// wantFindings are the finding IDs of the first violation.
		wantFindings []string
	}{
		{name: "max_severity/no findings", controls: high},
		{name: "max_severity/below", controls: high, findings: []vuln.Finding{finding("CVE-1", vuln.SeverityMedium)}},
		{name: "max_severity/at threshold fails", controls: high,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"CVE-1"}},
		{name: "max_severity/above", controls: high,
			findings: []vuln.Finding{finding("CVE-2", vuln.SeverityCritical), finding("CVE-1", vuln.SeverityLow)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"CVE-2"}},
		{name: "max_severity/unknown severity passes a HIGH threshold", controls: high,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityUnknown)}},
		{name: "max_severity/UNKNOWN threshold fails on anything",
			controls: Controls{MaxSeverity: sevPtr(vuln.SeverityUnknown)},
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityUnknown)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"CVE-1"}},
		{name: "max_severity/suppressed", controls: high,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, suppressed)}},
		{name: "max_severity/not affected", controls: high,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, notAffected)}},
		{name: "max_severity/unfixed with fixable_only", controls: with(high, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical)}},
		{name: "max_severity/fixed with fixable_only", controls: with(high, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, fixed)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"CVE-1"}},
		{name: "max_severity/fixed version without fixed status counts as fixable",
			controls: with(high, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, func(f *vuln.Finding) { f.FixedVersions = []string{"2"} })},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"CVE-1"}},
		{name: "max_severity/not reachable with ignore_unreachable", controls: with(high, func(c *Controls) { c.IgnoreUnreachable = true }),
			findings: []vuln.Finding{finding("GO-1", vuln.SeverityCritical, unreachable)}},
		{name: "max_severity/not reachable without ignore_unreachable", controls: high,
			findings: []vuln.Finding{finding("GO-1", vuln.SeverityCritical, unreachable)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"GO-1"}},
		{name: "max_severity/reachable with ignore_unreachable", controls: with(high, func(c *Controls) { c.IgnoreUnreachable = true }),
			findings: []vuln.Finding{finding("GO-1", vuln.SeverityCritical, reachable)},
			want:     []string{ControlMaxSeverity}, wantFindings: []string{"GO-1"}},

		{name: "max_cvss_score/below", controls: cvss7, findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh, score(6.9))}},
		{name: "max_cvss_score/at threshold passes", controls: cvss7, findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh, score(7.0))}},
		{name: "max_cvss_score/above", controls: cvss7,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh, score(5.0), score(7.1))},
			want:     []string{ControlMaxCVSSScore}, wantFindings: []string{"CVE-1"}},
		{name: "max_cvss_score/no score never fails", controls: Controls{MaxCVSSScore: floatPtr(0)},
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical)}},
		{name: "max_cvss_score/zero limit fails on any score", controls: Controls{MaxCVSSScore: floatPtr(0)},
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityLow, score(0.1))},
			want:     []string{ControlMaxCVSSScore}, wantFindings: []string{"CVE-1"}},
		{name: "max_cvss_score/suppressed", controls: cvss7, findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, score(9.8), suppressed)}},
		{name: "max_cvss_score/not affected", controls: cvss7, findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, score(9.8), notAffected)}},
		{name: "max_cvss_score/unfixed with fixable_only", controls: with(cvss7, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, score(9.8))}},
		{name: "max_cvss_score/not reachable", controls: with(cvss7, func(c *Controls) { c.IgnoreUnreachable = true }),
			findings: []vuln.Finding{finding("GO-1", vuln.SeverityCritical, score(9.8), unreachable)}},

		{name: "severity_counts/within limits", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh), finding("CVE-2", vuln.SeverityMedium), finding("CVE-3", vuln.SeverityMedium)}},
		{name: "severity_counts/exactly at limit passes", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh)}},
		{name: "severity_counts/one over", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh), finding("CVE-2", vuln.SeverityHigh)},
			want:     []string{ControlSeverityCounts}, wantFindings: []string{"CVE-1", "CVE-2"}},
		{name: "severity_counts/zero allowed, most severe first", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh), finding("CVE-2", vuln.SeverityHigh), finding("CVE-3", vuln.SeverityCritical)},
			want:     []string{ControlSeverityCounts, ControlSeverityCounts}, wantFindings: []string{"CVE-3"}},
		{name: "severity_counts/unknown not limited unless listed", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityUnknown), finding("CVE-2", vuln.SeverityUnknown)}},
		{name: "severity_counts/unknown listed", controls: Controls{SeverityCounts: map[vuln.Severity]int{vuln.SeverityUnknown: 0}},
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityUnknown)},
			want:     []string{ControlSeverityCounts}, wantFindings: []string{"CVE-1"}},
		{name: "severity_counts/suppressed", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, suppressed)}},
		{name: "severity_counts/not affected", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical, notAffected)}},
		{name: "severity_counts/unfixed with fixable_only", controls: with(counts, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical), finding("CVE-2", vuln.SeverityHigh, fixed)}},
		{name: "severity_counts/not reachable", controls: with(counts, func(c *Controls) { c.IgnoreUnreachable = true }),
			findings: []vuln.Finding{finding("GO-1", vuln.SeverityCritical, unreachable)}},
		{name: "severity_counts/same vulnerability in two packages counts twice", controls: counts,
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityHigh), finding("CVE-1", vuln.SeverityHigh, inPackage("deb", "libssl3", "3.0.11"))},
			want:     []string{ControlSeverityCounts}, wantFindings: []string{"CVE-1"}},

		{name: "block_cves/absent", controls: log4shell, findings: []vuln.Finding{finding("CVE-2", vuln.SeverityCritical)}},
		{name: "block_cves/by ID", controls: log4shell,
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical)},
			want:     []string{ControlBlockCVEs}, wantFindings: []string{"CVE-2021-44228"}},
		{name: "block_cves/by alias, any case", controls: Controls{BlockCVEs: []string{"ghsa-jfh8-c2jp-5v3q"}},
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical, aliases("GHSA-jfh8-c2jp-5v3q"))},
			want:     []string{ControlBlockCVEs}, wantFindings: []string{"CVE-2021-44228"}},
		{name: "block_cves/unfixed still blocked with fixable_only", controls: with(log4shell, func(c *Controls) { c.FixableOnly = true }),
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityLow)},
			want:     []string{ControlBlockCVEs}, wantFindings: []string{"CVE-2021-44228"}},
		{name: "block_cves/suppressed", controls: log4shell,
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical, suppressed)}},
		{name: "block_cves/not affected", controls: log4shell,
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical, notAffected)}},
		{name: "block_cves/not reachable", controls: with(log4shell, func(c *Controls) { c.IgnoreUnreachable = true }),
			findings: []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical, unreachable)}},

		{name: "block_packages/absent", controls: Controls{BlockPackages: []PackageRule{{Name: "telnetd"}}},
			packages: []inventory.Package{{Type: "deb", Name: "telnet", Version: "0.17"}}},
		{name: "block_packages/any version", controls: Controls{BlockPackages: []PackageRule{{Name: "telnetd"}}},
			packages: []inventory.Package{{Type: "deb", Name: "telnetd", Version: "0.17"}},
			want:     []string{ControlBlockPackages}},
		{name: "block_packages/listed version", controls: Controls{BlockPackages: []PackageRule{{Name: "xz-utils", Versions: []string{"5.6.0", "5.6.1"}}}},
			packages: []inventory.Package{{Type: "deb", Name: "xz-utils", Version: "5.6.1"}},
			want:     []string{ControlBlockPackages}},
		{name: "block_packages/other version", controls: Controls{BlockPackages: []PackageRule{{Name: "xz-utils", Versions: []string{"5.6.0", "5.6.1"}}}},
			packages: []inventory.Package{{Type: "deb", Name: "xz-utils", Version: "5.4.1-0.2"}}},
		{name: "block_packages/other type", controls: Controls{BlockPackages: []PackageRule{{Name: "log4j-core", Type: "maven"}}},
			packages: []inventory.Package{{Type: "npm", Name: "log4j-core", Version: "1.0.0"}}},
		{name: "block_packages/maven artifactId", controls: Controls{BlockPackages: []PackageRule{{Name: "log4j-core", Type: "maven"}}},
			packages: []inventory.Package{{Type: "maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}},
			want:     []string{ControlBlockPackages}},
		{name: "block_packages/maven group mismatch", controls: Controls{BlockPackages: []PackageRule{{Name: "org.example:log4j-core"}}},
			packages: []inventory.Package{{Type: "maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}}},
		{name: "block_packages/pypi normalized", controls: Controls{BlockPackages: []PackageRule{{Name: "PyYAML", Type: "pypi"}}},
			packages: []inventory.Package{{Type: "pypi", Name: "pyyaml", Version: "5.3"}},
			want:     []string{ControlBlockPackages}},
		{name: "block_packages/package known only from a finding", controls: Controls{BlockPackages: []PackageRule{{Name: "openssl"}}},
			findings: []vuln.Finding{finding("CVE-1", vuln.SeverityLow, suppressed)},
			want:     []string{ControlBlockPackages}},

		{name: "all controls in order",
			controls: Controls{
				MaxSeverity: sevPtr(vuln.SeverityHigh), MaxCVSSScore: floatPtr(7),
				SeverityCounts: map[vuln.Severity]int{vuln.SeverityCritical: 0},
				BlockCVEs:      []string{"CVE-2021-44228"}, BlockPackages: []PackageRule{{Name: "openssl"}},
			},
			findings:     []vuln.Finding{finding("CVE-2021-44228", vuln.SeverityCritical, score(10))},
			want:         []string{ControlMaxSeverity, ControlMaxCVSSScore, ControlSeverityCounts, ControlBlockCVEs, ControlBlockPackages},
			wantFindings: []string{"CVE-2021-44228"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Name: "test", Controls: tt.controls}
			s := Subject{Findings: tt.findings}
			if tt.packages != nil {
				s.Inventory = &inventory.Report{Packages: tt.packages}
			}
			v := Evaluate(p, s)
			var got []string
			for _, viol := range v.Violations {
				got = append(got, viol.Control)
				if viol.Message == "" {
					t.Errorf("violation of %s has no message", viol.Control)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("violated controls = %q, want %q (%+v)", got, tt.want, v.Violations)
			}
			if v.Pass != (len(tt.want) == 0) {
				t.Errorf("Pass = %v with violations %q", v.Pass, got)
			}
			if v.Policy != "test" {
				t.Errorf("Policy = %q", v.Policy)
			}
			if tt.wantFindings != nil && !reflect.DeepEqual(v.Violations[0].Findings, tt.wantFindings) {
				t.Errorf("findings of %s = %q, want %q", got[0], v.Violations[0].Findings, tt.wantFindings)
			}
			// Evaluation must not change its input.
			again := Evaluate(p, s)
			if !reflect.DeepEqual(v, again) {
				t.Errorf("second evaluation differs:\n%+v\n%+v", v, again)
			}
		})
	}
}

func TestEvaluateMessages(t *testing.T) {
	var fs []vuln.Finding
	for _, id := range []string{"CVE-7", "CVE-3", "CVE-1", "CVE-6", "CVE-2", "CVE-5", "CVE-4"} {
		fs = append(fs, finding(id, vuln.SeverityCritical, fixed, score(9.8)))
	}
	p := &Policy{Name: "prod", Controls: Controls{
		MaxSeverity: sevPtr(vuln.SeverityCritical), MaxCVSSScore: floatPtr(9), FixableOnly: true,
		SeverityCounts: map[vuln.Severity]int{vuln.SeverityCritical: 2},
		BlockPackages:  []PackageRule{{Name: "openssl", Type: "deb", Versions: []string{"3.0.11"}}},
	}}
	v := Evaluate(p, Subject{Findings: fs, Inventory: &inventory.Report{Packages: []inventory.Package{
		{Type: "deb", Name: "openssl", Version: "3.0.11", Path: "/var/lib/dpkg/status"},
	}}})
	want := []string{
		"7 findings rated CRITICAL or higher with a fix: CVE-1 in deb:openssl@3.0.11, CVE-2 in deb:openssl@3.0.11, CVE-3 in deb:openssl@3.0.11, CVE-4 in deb:openssl@3.0.11, CVE-5 in deb:openssl@3.0.11 and 2 more",
		"7 findings with a fix with a CVSS base score above 9.0 (highest 9.8): CVE-1 in deb:openssl@3.0.11, CVE-2 in deb:openssl@3.0.11, CVE-3 in deb:openssl@3.0.11, CVE-4 in deb:openssl@3.0.11, CVE-5 in deb:openssl@3.0.11 and 2 more",
		"7 CRITICAL findings with a fix, at most 2 allowed: CVE-1 in deb:openssl@3.0.11, CVE-2 in deb:openssl@3.0.11, CVE-3 in deb:openssl@3.0.11, CVE-4 in deb:openssl@3.0.11, CVE-5 in deb:openssl@3.0.11 and 2 more",
		"1 package on the block list: deb:openssl@3.0.11 (/var/lib/dpkg/status)",
	}
	if len(v.Violations) != len(want) {
		t.Fatalf("got %d violations, want %d: %+v", len(v.Violations), len(want), v.Violations)
	}
	for i, w := range want {
		if v.Violations[i].Message != w {
			t.Errorf("message %d:\n got %s\nwant %s", i, v.Violations[i].Message, w)
		}
	}
	if got := v.Violations[0].Findings; len(got) != 7 || got[0] != "CVE-1" || got[6] != "CVE-7" {
		t.Errorf("findings not complete and sorted: %q", got)
	}
	if got := v.Violations[3].Packages; !reflect.DeepEqual(got, []string{"deb:openssl@3.0.11"}) {
		t.Errorf("packages = %q", got)
	}
}

func TestEvaluateNilPolicy(t *testing.T) {
	v := Evaluate(nil, Subject{Findings: []vuln.Finding{finding("CVE-1", vuln.SeverityCritical)}})
	if !v.Pass || len(v.Violations) != 0 {
		t.Errorf("nil policy: %+v", v)
	}
}

func TestEvaluateLoadedPolicy(t *testing.T) {
	p, err := Load("testdata/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := Subject{
		Inventory: &inventory.Report{Packages: []inventory.Package{
			{Type: "maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Path: "/app/app.jar"},
			{Type: "deb", Name: "xz-utils", Version: "5.4.1-0.2", Path: "/var/lib/dpkg/status"},
		}},
		Findings: []vuln.Finding{
			finding("CVE-2021-44228", vuln.SeverityCritical, fixed, score(10), inPackage("maven", "org.apache.logging.log4j:log4j-core", "2.14.1")),
			finding("CVE-2022-0001", vuln.SeverityCritical, score(9.8)), // unfixed: does not count
			finding("GO-2024-0001", vuln.SeverityCritical, fixed, unreachable),
		},
	}
	v := Evaluate(p, s)
	var got []string
	for _, viol := range v.Violations {
		got = append(got, viol.Control)
	}
	want := []string{ControlMaxSeverity, ControlMaxCVSSScore, ControlSeverityCounts, ControlBlockCVEs, ControlBlockPackages}
	if !reflect.DeepEqual(got, want) || v.Pass || v.Policy != "production" {
		t.Fatalf("verdict %+v, want violations %q", v, want)
	}
	for _, viol := range v.Violations {
		if strings.Contains(viol.Message, "CVE-2022-0001") || strings.Contains(viol.Message, "GO-2024-0001") {
			t.Errorf("%s names a finding that must not count: %s", viol.Control, viol.Message)
		}
	}
}
