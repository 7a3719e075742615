package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/vuln"
)

func TestParseScanners(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		err  string
	}{
		{nil, AllScanners, ""},
		{[]string{"secret"}, []string{"secret"}, ""},
		{[]string{"VULN, secret", "secret"}, []string{"vuln", "secret"}, ""},
		{[]string{"vuln,,malware"}, []string{"vuln", "malware"}, ""},
		{[]string{"secrets"}, nil, `unknown scanner "secrets"`},
	}
	for _, tc := range tests {
		got, err := ParseScanners(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseScanners(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseScanners(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMalwareFromVulns(t *testing.T) {
	pkg := vuln.Package{Type: "npm", Name: "evil", Version: "1.0.0", Path: "/app/node_modules/evil/package.json"}
	fs := []vuln.Finding{
		{ID: "MAL-2024-1", Package: pkg, Summary: "Malicious code in evil"},
		{ID: "GHSA-xxxx-yyyy-zzzz", Aliases: []string{"MAL-2024-2"}, Package: pkg},
		{ID: "CVE-2024-3", Package: pkg},
		{ID: "MAL-2024-4", Package: pkg, Suppressed: &vuln.Suppression{Kind: "ignore"}},
	}
	got := malwareFromVulns(fs)
	if len(got) != 2 || got[0].RuleID != "MAL-2024-1" || got[1].RuleID != "MAL-2024-2" {
		t.Fatalf("malware = %+v, want MAL-2024-1 and MAL-2024-2 (the suppressed one does not count)", got)
	}
	f := got[0]
	if f.Engine != "osv" || f.Severity != "CRITICAL" || f.Path != "npm:evil@1.0.0" || f.Metadata["file"] != pkg.Path {
		t.Errorf("finding %+v", f)
	}
}
