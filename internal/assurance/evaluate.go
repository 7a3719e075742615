package assurance

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/signature"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Subject is what a policy is evaluated against: the image's inventory and
// its vulnerability findings, as a report.Scan holds them. (Package report
// imports this package for Verdict, so Evaluate cannot take a report.Scan.)
type Subject struct {
	// Inventory is the image's package inventory; it may be nil.
	Inventory *inventory.Report
	// Findings are the image's vulnerability findings, suppressed ones
	// included.
	Findings []vuln.Finding
	// Secrets, Malware and Misconfigurations are the image's findings of
	// those kinds.
	Secrets, Malware, Misconfigurations []inventory.Finding
	// HasConfig reports whether the image has a configuration (a root
	// filesystem directory has none); User is its USER.
	HasConfig bool
	User      string
	// Licenses checks the packages' licenses against the license controls;
	// nil when no license analysis ran, which fails any license control.
	Licenses func(LicenseControls) []LicenseProblem

	// Now is the time of the evaluation, for max_image_age and the
	// exceptions' expiry. Evaluate never reads the clock: when Now is zero
	// max_image_age fails and no exception applies.
	Now time.Time
	// Image is the image's name, which exceptions' Image patterns match:
	// the reference as scanned ("registry.example.com/team/app:1.4").
	Image string
	// Digest is the image's manifest digest ("sha256:..."); empty when
	// unknown (an archive or a directory), which fails signature_required.
	Digest string
	// Created is the creation time in the image's configuration; zero when
	// it has none.
	Created time.Time
	// Layers are the image's layer diffIDs (rootfs.diff_ids), bottom
	// first.
	Layers []string
	// Labels are the image configuration's labels.
	Labels map[string]string
	// Signatures are the image's signatures that signature.Verify accepted
	// with the options of Controls.SignatureRequired.VerifyOptions;
	// SignatureError is its error when it accepted none (shown in the
	// violation).
	Signatures     []signature.Verified
	SignatureError error
	// Exceptions are the accepted risks to apply. Only active ones
	// (unexpired at Now, Image pattern matching) apply.
	Exceptions []Exception
}

// LicenseProblem is a package whose license a license control rejects.
type LicenseProblem struct {
	// Package is "type:name@version".
	Package string
	// License is the offending SPDX ID or expression.
	License string
	// Reason says which control rejects it.
	Reason string
}

// The control names used in Violation.Control.
const (
	ControlMaxSeverity    = "max_severity"
	ControlMaxCVSSScore   = "max_cvss_score"
	ControlSeverityCounts = "severity_counts"
	ControlBlockCVEs      = "block_cves"
	ControlBlockPackages  = "block_packages"
	ControlMalware        = "disallow_malware"
	ControlSecrets        = "disallow_secrets"
	ControlRoot           = "disallow_root"
	ControlMisconfigs     = "block_misconfigurations"
	ControlLicenses       = "licenses"
	ControlImageAge       = "max_image_age"
	ControlBaseImages     = "trusted_base_images"
	ControlLabels         = "required_labels"
	ControlSignature      = "signature_required"
)

// maxListed is how many items a violation message names before it says
// "and N more"; Violation.Findings and Packages always list them all.
const maxListed = 5

// Evaluate checks the subject against every control of the policy. The
// result depends only on the arguments, violations come in a fixed order
// (the order of the Controls fields) and their lists are sorted. Active
// exceptions first suppress the findings they name, then waive the
// violations of the controls they name. A nil policy passes.
func Evaluate(p *Policy, s Subject) Verdict {
	if p == nil {
		return Verdict{Pass: true}
	}
	c := &p.Controls
	x := newExceptions(&s)
	var (
		gated   []*vuln.Finding // count for the severity and score controls
		blocked []*vuln.Finding // carry a blocked ID
	)
	for i := range s.Findings {
		f := &s.Findings[i]
		if !f.Counts() {
			continue
		}
		if c.IgnoreUnreachable && f.Reachability != nil && f.Reachability.Status == vuln.ReachableNo {
			continue
		}
		if x.vuln(f) {
			continue
		}
		if slices.ContainsFunc(c.BlockCVEs, f.HasID) {
			blocked = append(blocked, f)
		}
		if c.FixableOnly && !fixable(f) {
			continue
		}
		gated = append(gated, f)
	}

	var out []Violation
	qualifier := ""
	if c.FixableOnly {
		qualifier = " with a fix"
	}
	if c.MaxSeverity != nil {
		floor := *c.MaxSeverity
		hits := filter(gated, func(f *vuln.Finding) bool { return f.Severity >= floor })
		if len(hits) > 0 {
			out = append(out, findingViolation(ControlMaxSeverity, hits,
				fmt.Sprintf("%s rated %s or higher%s", plural(len(hits), "finding"), floor, qualifier)))
		}
	}
	if c.MaxCVSSScore != nil {
		limit := *c.MaxCVSSScore
		hits := filter(gated, func(f *vuln.Finding) bool { return f.MaxScore() > limit })
		if len(hits) > 0 {
			top := 0.0
			for _, f := range hits {
				top = max(top, f.MaxScore())
			}
			out = append(out, findingViolation(ControlMaxCVSSScore, hits,
				fmt.Sprintf("%s%s with a CVSS base score above %.1f (highest %.1f)", plural(len(hits), "finding"), qualifier, limit, top)))
		}
	}
	if len(c.SeverityCounts) > 0 {
		sevs := make([]vuln.Severity, 0, len(c.SeverityCounts))
		for s := range c.SeverityCounts {
			sevs = append(sevs, s)
		}
		slices.SortFunc(sevs, func(a, b vuln.Severity) int { return cmp.Compare(b, a) })
		for _, sev := range sevs {
			limit := c.SeverityCounts[sev]
			hits := filter(gated, func(f *vuln.Finding) bool { return f.Severity == sev })
			if len(hits) > limit {
				out = append(out, findingViolation(ControlSeverityCounts, hits,
					fmt.Sprintf("%s%s, at most %d allowed", plural(len(hits), sev.String()+" finding"), qualifier, limit)))
			}
		}
	}
	if len(blocked) > 0 {
		out = append(out, findingViolation(ControlBlockCVEs, blocked,
			fmt.Sprintf("%s with a blocked vulnerability ID", plural(len(blocked), "finding"))))
	}
	if len(c.BlockPackages) > 0 {
		if v, ok := blockedPackages(c.BlockPackages, s); ok {
			out = append(out, v)
		}
	}
	if c.DisallowMalware {
		if hits := x.files(s.Malware); len(hits) > 0 {
			out = append(out, fileViolation(ControlMalware, hits, "malware found"))
		}
	}
	if c.DisallowSecrets {
		if hits := x.files(s.Secrets); len(hits) > 0 {
			out = append(out, fileViolation(ControlSecrets, hits, "secrets found"))
		}
	}
	if c.DisallowRoot {
		switch {
		case !s.HasConfig:
			out = append(out, Violation{Control: ControlRoot, Message: "the image has no configuration, so the user its containers run as is unknown"})
		case RunsAsRoot(s.User):
			who := "no USER is set"
			if s.User != "" {
				who = fmt.Sprintf("USER is %q", s.User)
			}
			out = append(out, Violation{Control: ControlRoot, Message: "containers run as root: " + who})
		}
	}
	if len(c.BlockMisconfigurations) > 0 {
		var hits []inventory.Finding
		for _, f := range x.files(s.Misconfigurations) {
			if slices.Contains(c.BlockMisconfigurations, f.RuleID) || (f.Category != "" && slices.Contains(c.BlockMisconfigurations, f.Category)) {
				hits = append(hits, f)
			}
		}
		if len(hits) > 0 {
			out = append(out, fileViolation(ControlMisconfigs, hits, "blocked misconfigurations"))
		}
	}
	if !c.Licenses.empty() {
		if s.Licenses == nil {
			out = append(out, Violation{Control: ControlLicenses, Message: "license controls are set but no license analysis ran"})
		} else if probs := s.Licenses(c.Licenses); len(probs) > 0 {
			v := Violation{Control: ControlLicenses}
			items := make([]string, 0, len(probs))
			for _, p := range probs {
				v.Packages = append(v.Packages, p.Package)
				items = append(items, fmt.Sprintf("%s (%s: %s)", p.Package, p.License, p.Reason))
			}
			v.Packages = sortedUnique(v.Packages)
			v.Message = fmt.Sprintf("%s with a rejected license: %s", plural(len(v.Packages), "package"), list(sortedUnique(items)))
			out = append(out, v)
		}
	}
	checks := []struct {
		on    bool
		check func() (Violation, bool)
	}{
		{c.MaxImageAge > 0, func() (Violation, bool) { return checkImageAge(c.MaxImageAge, &s) }},
		{len(c.TrustedBaseImages) > 0, func() (Violation, bool) { return checkBaseImage(c.TrustedBaseImages, &s) }},
		{len(c.RequiredLabels) > 0, func() (Violation, bool) { return checkLabels(c.RequiredLabels, &s) }},
		{c.SignatureRequired != nil, func() (Violation, bool) { return checkSignature(c.SignatureRequired, &s) }},
	}
	for _, ch := range checks {
		if !ch.on {
			continue
		}
		if v, failed := ch.check(); failed {
			out = append(out, v)
		}
	}
	out, waived := x.waive(out)
	return Verdict{Policy: p.Name, Pass: len(out) == 0, Violations: out, Waived: waived, Exceptions: x.result()}
}

// RunsAsRoot reports whether an image USER value makes containers run as
// root: empty, "root" or UID 0, with or without a group. A named user is
// taken as non-root; its UID is not looked up in the image's /etc/passwd.
func RunsAsRoot(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	if u == "" || u == "root" {
		return true
	}
	return strings.Trim(u, "0") == "" // "0", "00"
}

// fileViolation builds a violation for secrets, malware or
// misconfigurations, listing "RULE at PATH".
func fileViolation(control string, hits []inventory.Finding, summary string) Violation {
	v := Violation{Control: control}
	items := make([]string, 0, len(hits))
	for _, f := range hits {
		v.Findings = append(v.Findings, f.RuleID)
		item := f.RuleID
		if f.Path != "" {
			item += " at " + f.Path
		}
		items = append(items, item)
	}
	v.Findings = sortedUnique(v.Findings)
	items = sortedUnique(items)
	v.Message = fmt.Sprintf("%s: %s", summary, list(items))
	return v
}

// fixable reports whether a fixed version of the package exists.
func fixable(f *vuln.Finding) bool {
	return f.Status == vuln.StatusFixed || len(f.FixedVersions) > 0
}

func filter(fs []*vuln.Finding, keep func(*vuln.Finding) bool) []*vuln.Finding {
	var out []*vuln.Finding
	for _, f := range fs {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// findingViolation builds a violation whose message is the summary followed
// by the first findings as "ID in type:name@version".
func findingViolation(control string, hits []*vuln.Finding, summary string) Violation {
	v := Violation{Control: control}
	items := make([]string, 0, len(hits))
	for _, f := range hits {
		v.Findings = append(v.Findings, f.ID)
		pkg := pkgRef(f.Package.Type, f.Package.Name, f.Package.Version)
		v.Packages = append(v.Packages, pkg)
		items = append(items, f.ID+" in "+pkg)
	}
	v.Findings = sortedUnique(v.Findings)
	v.Packages = sortedUnique(v.Packages)
	v.Message = summary + ": " + list(sortedUnique(items))
	return v
}

func pkgRef(typ, name, version string) string {
	return typ + ":" + name + "@" + version
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func list(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(items)-maxListed)
}

// blockedPackages checks the inventory's packages, and the packages of the
// findings (a subject may carry findings only), against the block list.
func blockedPackages(rules []PackageRule, s Subject) (Violation, bool) {
	var refs, items []string
	check := func(typ, name, version, path string) {
		for i := range rules {
			if rules[i].matches(typ, name, version) {
				ref := pkgRef(typ, name, version)
				refs = append(refs, ref)
				if path != "" {
					ref += " (" + path + ")"
				}
				items = append(items, ref)
				return
			}
		}
	}
	if s.Inventory != nil {
		for i := range s.Inventory.Packages {
			p := &s.Inventory.Packages[i]
			check(p.Type, p.Name, p.Version, p.Path)
		}
	}
	for i := range s.Findings {
		p := &s.Findings[i].Package
		check(p.Type, p.Name, p.Version, p.Path)
	}
	if len(refs) == 0 {
		return Violation{}, false
	}
	items = sortedUnique(items)
	return Violation{
		Control:  ControlBlockPackages,
		Message:  fmt.Sprintf("%s on the block list: %s", plural(len(items), "package"), list(items)),
		Packages: sortedUnique(refs),
	}, true
}

// matches reports whether the rule blocks the package.
func (r *PackageRule) matches(typ, name, version string) bool {
	if r.Type != "" && r.Type != typ {
		return false
	}
	if len(r.Versions) > 0 && !slices.Contains(r.Versions, version) {
		return false
	}
	switch {
	case r.Name == name:
		return true
	case typ == inventory.TypeMaven && !strings.Contains(r.Name, ":"):
		_, artifact, ok := strings.Cut(name, ":")
		return ok && artifact == r.Name
	case typ == inventory.TypePyPI:
		return normalizePyPI(r.Name) == normalizePyPI(name)
	}
	return false
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

// normalizePyPI normalizes a Python distribution name as PEP 503 does.
func normalizePyPI(name string) string {
	return pypiSeparators.ReplaceAllString(strings.ToLower(name), "-")
}
