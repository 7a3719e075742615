package cvss

import (
	"errors"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/vuln"
)

// valid are published vectors with the base scores NVD and the FIRST
// calculators give for them.
var valid = []struct {
	vector   string
	version  string
	base     float64
	severity vuln.Severity
}{
	// CVSS 2.0 (NVD), rated Low / Medium / High.
	{"AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0", 7.5, vuln.SeverityHigh},
	{"AV:N/AC:L/Au:N/C:C/I:C/A:C", "2.0", 10.0, vuln.SeverityHigh},
	{"AV:N/AC:M/Au:N/C:N/I:P/A:N", "2.0", 4.3, vuln.SeverityMedium},
	{"AV:N/AC:L/Au:N/C:N/I:N/A:P", "2.0", 5.0, vuln.SeverityMedium},
	{"AV:L/AC:L/Au:N/C:P/I:N/A:N", "2.0", 2.1, vuln.SeverityLow},
	{"AV:N/AC:L/Au:N/C:N/I:N/A:N", "2.0", 0.0, vuln.SeverityLow},
	{"CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0", 7.5, vuln.SeverityHigh},
	{"AV:N/AC:L/Au:N/C:P/I:P/A:P/E:U/RL:OF/RC:C", "2.0", 7.5, vuln.SeverityHigh},
	// CVSS 3.0 and 3.1.
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", 9.8, vuln.SeverityCritical},
	{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", 9.8, vuln.SeverityCritical},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 10.0, vuln.SeverityCritical},
	{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "3.1", 7.8, vuln.SeverityHigh},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "3.1", 7.5, vuln.SeverityHigh},
	{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 5.9, vuln.SeverityMedium},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.1", 6.1, vuln.SeverityMedium},
	{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", "3.1", 1.6, vuln.SeverityLow},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0.0, vuln.SeverityNegligible},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:R", "3.1", 9.8, vuln.SeverityCritical},
	{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:L/MAV:P", "3.1", 9.8, vuln.SeverityCritical},
	// CVSS 3.x allows the metrics in any order.
	{"CVSS:3.1/AC:L/AV:N/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", 9.8, vuln.SeverityCritical},
	// CVSS 4.0 (FIRST calculator).
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3, vuln.SeverityCritical},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", "4.0", 10.0, vuln.SeverityCritical},
	{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5, vuln.SeverityHigh},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0.0, vuln.SeverityNegligible},
	// Threat, environmental and supplemental metrics leave the base score.
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U", "4.0", 9.3, vuln.SeverityCritical},
	{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/CR:L/MAV:P/S:P/AU:Y", "4.0", 9.3, vuln.SeverityCritical},
}

func TestParse(t *testing.T) {
	for _, tc := range valid {
		got, err := Parse(tc.vector)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.vector, err)
			continue
		}
		want := Score{Version: tc.version, Vector: tc.vector, Base: tc.base, Severity: tc.severity}
		if got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.vector, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ vector, want string }{
		{"", "empty vector"},
		{strings.Repeat("A", MaxLen+1), "longer than"},
		{"CVSS:5.0/AV:N", `unsupported CVSS version "5.0"`},
		{"CVSS:3.1", "no metrics"},
		{"CVSS:3.1/", "no metrics"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A", `metric 8 ("A") is not NAME:VALUE`},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "base metric A is missing"},
		{"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", `metric AV has value "X" (want one of N, A, L, P)`},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H", "metric A appears twice"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y", `unknown metric "XX"`},
		{"CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "order"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Q", "order of the specification, with valid values"},
		{"AV:N/AC:L/Au:N/C:P/I:P", "base metric A is missing"},
		{"AV:N/AC:L/Au:X/C:P/I:P/A:P", `metric Au has value "X"`},
		{"(AV:N/AC:L/Au:N/C:P/I:P/A:P)", `unknown metric "(AV"`},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N", "base metric SA is missing"},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:X/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", `metric UI has value "X" (want one of N, P, A)`},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Z", "with valid values"},
	} {
		_, err := Parse(tc.vector)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Vector != tc.vector {
			t.Errorf("Parse(%q): err = %v, want a *ParseError naming the vector", tc.vector, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): err = %q, want it to contain %q", tc.vector, err, tc.want)
		}
	}
}

func TestRating(t *testing.T) {
	for _, tc := range []struct {
		version string
		base    float64
		want    vuln.Severity
	}{
		{"2.0", 0, vuln.SeverityLow},
		{"2.0", 3.9, vuln.SeverityLow},
		{"2.0", 4.0, vuln.SeverityMedium},
		{"2.0", 6.9, vuln.SeverityMedium},
		{"2.0", 7.0, vuln.SeverityHigh},
		{"2.0", 10, vuln.SeverityHigh},
		{"3.1", 0, vuln.SeverityNegligible},
		{"3.1", 0.1, vuln.SeverityLow},
		{"3.0", 3.9, vuln.SeverityLow},
		{"3.1", 4.0, vuln.SeverityMedium},
		{"3.1", 6.9, vuln.SeverityMedium},
		{"3.1", 7.0, vuln.SeverityHigh},
		{"3.1", 8.9, vuln.SeverityHigh},
		{"3.1", 9.0, vuln.SeverityCritical},
		{"4.0", 0, vuln.SeverityNegligible},
		{"4.0", 10, vuln.SeverityCritical},
		{"4.0", 10.1, vuln.SeverityUnknown},
		{"3.1", -1, vuln.SeverityUnknown},
		{"5.0", 5, vuln.SeverityUnknown},
		{"", 5, vuln.SeverityUnknown},
	} {
		if got := Rating(tc.version, tc.base); got != tc.want {
			t.Errorf("Rating(%q, %v) = %v, want %v", tc.version, tc.base, got, tc.want)
		}
	}
}

// FuzzParse checks that Parse never panics, that a score is within 0 to 10
// with the rating Rating gives it, and that an error names the vector.
func FuzzParse(f *testing.F) {
	for _, tc := range valid {
		f.Add(tc.vector)
	}
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Z")
	f.Fuzz(func(t *testing.T, vector string) {
		s, err := Parse(vector)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Vector != vector || pe.Reason == "" {
				t.Errorf("Parse(%q): err = %v, want a *ParseError naming the vector", vector, err)
			}
			return
		}
		if s.Base < 0 || s.Base > 10 || s.Severity != Rating(s.Version, s.Base) || s.Severity == vuln.SeverityUnknown || s.Vector != vector {
			t.Errorf("Parse(%q) = %+v", vector, s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ version, vector string }{
		{"2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
		{"3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
		{"4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
	} {
		b.Run(bc.version, func(b *testing.B) {
			for b.Loop() {
				if _, err := Parse(bc.vector); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
