package assurance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mamorisec/mamori/internal/vuln"
)

// GatePolicyName is the name of the policy a Gate builds, as verdicts show
// it.
const GatePolicyName = "command-line flags"

// Gate is the simple gate of the scan command's flags. Without --policy it
// is the whole gate; with --policy the policy file decides and the flags
// only filter what is displayed (see docs/assurance.md).
type Gate struct {
	// Severities are the --severity ratings that fail the scan; empty
	// means every rating, UNKNOWN included.
	Severities []vuln.Severity
	// IgnoreUnfixed is --ignore-unfixed: findings without a fix never fail
	// the scan.
	IgnoreUnfixed bool
	// ExitCode is --exit-code: the exit status of a failed scan. 0, the
	// default, means findings never fail the scan.
	ExitCode int
}

// Policy returns the policy the flags describe: a severity_counts control
// allowing zero findings of each selected rating, with fixable_only set by
// IgnoreUnfixed. It returns nil when ExitCode is 0, since nothing can then
// fail, and an error when ExitCode is not a valid exit status.
func (g Gate) Policy() (*Policy, error) {
	if g.ExitCode < 0 || g.ExitCode > 255 {
		return nil, fmt.Errorf("--exit-code %d: want an exit status from 0 to 255", g.ExitCode)
	}
	if g.ExitCode == 0 {
		return nil, nil
	}
	sevs := g.Severities
	if len(sevs) == 0 {
		sevs = []vuln.Severity{vuln.SeverityUnknown, vuln.SeverityNegligible, vuln.SeverityLow,
			vuln.SeverityMedium, vuln.SeverityHigh, vuln.SeverityCritical}
	}
	counts := make(map[vuln.Severity]int, len(sevs))
	for _, s := range sevs {
		counts[s] = 0
	}
	return &Policy{
		Name:     GatePolicyName,
		Controls: Controls{SeverityCounts: counts, FixableOnly: g.IgnoreUnfixed},
	}, nil
}

// ExitStatus returns the exit status for a verdict: 0 when there is none,
// it passes, or its policy is in audit mode; otherwise ExitCode, or 1 when
// ExitCode is 0 (a policy file given with --policy fails the scan even
// without --exit-code).
func (g Gate) ExitStatus(v *Verdict) int {
	switch {
	case !v.Fails():
		return 0
	case g.ExitCode != 0:
		return g.ExitCode
	}
	return 1
}

// ParseSeverities parses --severity values. Each value may itself be a
// comma-separated list ("CRITICAL,HIGH"); names are those of
// vuln.ParseSeverity in any case. The result is sorted from most to least
// severe, without duplicates.
func ParseSeverities(values []string) ([]vuln.Severity, error) {
	var out []vuln.Severity
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			s, err := parseSeverity(name)
			if err != nil {
				return nil, fmt.Errorf("--severity %q: %w", v, err)
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return slices.Compact(out), nil
}
