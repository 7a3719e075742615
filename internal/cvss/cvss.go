// Package cvss computes CVSS base scores and their qualitative ratings
// from vector strings of CVSS 2.0, 3.0, 3.1 and 4.0, as OSV records carry
// them in severity[].score. Parsing and scoring are done by
// github.com/pandatix/go-cvss; this package picks the version, strips
// threat and environmental metrics so that the score is always the base
// score, and explains what is wrong with a bad vector.
package cvss

import (
	"fmt"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"github.com/mamorisec/mamori/internal/vuln"
)

// MaxLen is the longest vector accepted, in bytes; the longest valid
// vector (CVSS 4.0 with every metric) is about 270 bytes.
const MaxLen = 512

// Score is a parsed vector with its base score.
type Score struct {
	// Version is "2.0", "3.0", "3.1" or "4.0".
	Version string
	// Vector is the vector string as given.
	Vector string
	// Base is the base score, 0.0 to 10.0.
	Base float64
	// Severity is the rating of Base in this CVSS version.
	Severity vuln.Severity
}

// ParseError is the error Parse returns for a vector it cannot score.
type ParseError struct {
	// Vector is the vector string as given.
	Vector string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("CVSS vector %q: %s", e.Vector, e.Reason)
}

// Parse parses a CVSS vector string and computes its base score. A vector
// of version 2.0 has no prefix ("AV:N/AC:L/Au:N/C:P/I:P/A:P"; a
// "CVSS:2.0/" prefix is accepted too); versions 3.0, 3.1 and 4.0 start with
// "CVSS:3.0/", "CVSS:3.1/" and "CVSS:4.0/". Temporal, threat,
// environmental and supplemental metrics are validated but do not change
// the base score. The error is a *ParseError.
func Parse(vector string) (Score, error) {
	fail := func(format string, args ...any) (Score, error) {
		return Score{}, &ParseError{Vector: vector, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case vector == "":
		return fail("empty vector")
	case len(vector) > MaxLen:
		return fail("longer than %d bytes", MaxLen)
	}
	version, body := "2.0", vector
	if rest, ok := strings.CutPrefix(vector, "CVSS:"); ok {
		version, body, _ = strings.Cut(rest, "/")
	}
	spec, ok := specs[version]
	if !ok {
		return fail("unsupported CVSS version %q (want 2.0, 3.0, 3.1 or 4.0)", version)
	}
	base, err := spec.score(vector, body)
	if err != nil {
		return fail("%s", spec.diagnose(body, err))
	}
	return Score{Version: version, Vector: vector, Base: base, Severity: Rating(version, base)}, nil
}

// Rating returns the qualitative rating of a base score in a CVSS version.
// CVSS 2.0 defines no ratings; NVD's are used: Low below 4.0, Medium below
// 7.0, High from 7.0. CVSS 3.x and 4.0 rate 0.0 as None
// (vuln.SeverityNegligible), then Low from 0.1, Medium from 4.0, High from
// 7.0 and Critical from 9.0. An unknown version or a score outside 0 to 10
// rates vuln.SeverityUnknown.
func Rating(version string, base float64) vuln.Severity {
	if _, ok := specs[version]; !ok || base < 0 || base > 10 {
		return vuln.SeverityUnknown
	}
	switch {
	case version == "2.0" && base < 4:
		return vuln.SeverityLow
	case base == 0:
		return vuln.SeverityNegligible
	case base < 4:
		return vuln.SeverityLow
	case base < 7:
		return vuln.SeverityMedium
	case version == "2.0" || base < 9:
		return vuln.SeverityHigh
	}
	return vuln.SeverityCritical
}

// spec describes one CVSS version.
type spec struct {
	// base lists the base metrics in vector order with their values.
	base []metric
	// other lists the other metrics the version defines, in vector order.
	other []string
	// score parses the whole vector and returns its base score.
	score func(vector, body string) (float64, error)
}

// metric is a metric abbreviation with its allowed values.
type metric struct {
	name   string
	values string
}

var (
	cia3 = "HLN"
	// threat and environmental metrics of CVSS 4.0: they change the score
	// computed by go-cvss, so they are reset before taking the base score.
	nonBase40 = []string{"E", "CR", "IR", "AR", "MAV", "MAC", "MAT", "MPR", "MUI", "MVC", "MVI", "MVA", "MSC", "MSI", "MSA"}
)

var specs = map[string]spec{
	"2.0": {
		base:  []metric{{"AV", "LAN"}, {"AC", "HML"}, {"Au", "MSN"}, {"C", "NPC"}, {"I", "NPC"}, {"A", "NPC"}},
		other: []string{"E", "RL", "RC", "CDP", "TD", "CR", "IR", "AR"},
		score: func(vector, body string) (float64, error) {
			v, err := gocvss20.ParseVector(body)
			if err != nil {
				return 0, err
			}
			return v.BaseScore(), nil
		},
	},
	"3.0": {
		base:  []metric{{"AV", "NALP"}, {"AC", "LH"}, {"PR", "NLH"}, {"UI", "NR"}, {"S", "UC"}, {"C", cia3}, {"I", cia3}, {"A", cia3}},
		other: []string{"E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA"},
		score: func(vector, _ string) (float64, error) {
			v, err := gocvss30.ParseVector(vector)
			if err != nil {
				return 0, err
			}
			return v.BaseScore(), nil
		},
	},
	"3.1": {
		base:  []metric{{"AV", "NALP"}, {"AC", "LH"}, {"PR", "NLH"}, {"UI", "NR"}, {"S", "UC"}, {"C", cia3}, {"I", cia3}, {"A", cia3}},
		other: []string{"E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA"},
		score: func(vector, _ string) (float64, error) {
			v, err := gocvss31.ParseVector(vector)
			if err != nil {
				return 0, err
			}
			return v.BaseScore(), nil
		},
	},
	"4.0": {
		base: []metric{{"AV", "NALP"}, {"AC", "LH"}, {"AT", "NP"}, {"PR", "NLH"}, {"UI", "NPA"},
			{"VC", cia3}, {"VI", cia3}, {"VA", cia3}, {"SC", cia3}, {"SI", cia3}, {"SA", cia3}},
		other: append(append([]string(nil), nonBase40...), "S", "AU", "R", "V", "RE", "U"),
		score: func(vector, _ string) (float64, error) {
			v, err := gocvss40.ParseVector(vector)
			if err != nil {
				return 0, err
			}
			for _, m := range nonBase40 {
				if err := v.Set(m, "X"); err != nil {
					return 0, fmt.Errorf("resetting %s: %w", m, err)
				}
			}
			return v.Score(), nil
		},
	},
}

// diagnose says what is wrong with the metrics part of a vector that the
// library rejected with err, naming the metric at fault where it can.
func (s spec) diagnose(body string, err error) string {
	if body == "" {
		return "no metrics"
	}
	seen := map[string]bool{}
	baseAt := map[string]metric{}
	for _, m := range s.base {
		baseAt[m.name] = m
	}
	for i, part := range strings.Split(body, "/") {
		name, value, ok := strings.Cut(part, ":")
		if !ok || name == "" || value == "" {
			return fmt.Sprintf("metric %d (%q) is not NAME:VALUE", i+1, part)
		}
		if seen[name] {
			return fmt.Sprintf("metric %s appears twice", name)
		}
		seen[name] = true
		if m, ok := baseAt[name]; ok {
			if len(value) != 1 || !strings.Contains(m.values, value) {
				return fmt.Sprintf("metric %s has value %q (want one of %s)", name, value, strings.Join(strings.Split(m.values, ""), ", "))
			}
			continue
		}
		known := false
		for _, o := range s.other {
			known = known || o == name
		}
		if !known {
			return fmt.Sprintf("unknown metric %q", name)
		}
	}
	for _, m := range s.base {
		if !seen[m.name] {
			return fmt.Sprintf("base metric %s is missing", m.name)
		}
	}
	return fmt.Sprintf("%v (metrics must be in the order of the specification, with valid values)", err)
}
