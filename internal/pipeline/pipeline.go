// Package pipeline runs a complete image scan: one walk over the image that
// inventories its packages and runs the content analyzers (secrets,
// malware, license texts, misconfigured files), then vulnerability
// matching, image configuration checks, suppressions and the assurance
// verdict. The result is a report.Scan. The CLI's scan command and the
// server's scan workers both call Run.
package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/match"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/scanner"
	"github.com/mamorisec/mamori/internal/suppress"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// The analyses a scan can run, as named by --scanners.
const (
	ScanVuln      = "vuln"
	ScanSecret    = "secret"
	ScanMalware   = "malware"
	ScanLicense   = "license"
	ScanMisconfig = "misconfig"
)

// AllScanners lists every analysis, in report order. They all run by
// default.
var AllScanners = []string{ScanVuln, ScanSecret, ScanMalware, ScanLicense, ScanMisconfig}

// ParseScanners validates a --scanners list (comma-separated names, any
// case); an empty list means all.
func ParseScanners(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, name := range strings.Split(item, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !slices.Contains(AllScanners, name) {
				return nil, fmt.Errorf("unknown scanner %q (valid: %s)", name, strings.Join(AllScanners, ", "))
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		return slices.Clone(AllScanners), nil
	}
	return out, nil
}

// Config configures a scan.
type Config struct {
	// Scanners are the analyses to run (see ParseScanners).
	Scanners []string
	// Inventory configures how the image is opened and walked.
	Inventory scanner.Options
	// DB is the vulnerability database; required when Scanners holds
	// "vuln".
	DB *vulndb.DB
	// DBMaxAge makes the report warn when the database is older; zero
	// never warns.
	DBMaxAge time.Duration
	// Suppressions are the ignore files and VEX documents.
	Suppressions suppress.Rules
	// Policy is the assurance policy; nil means no verdict.
	Policy *assurance.Policy
	// Content configures the content analyzers.
	Content ContentConfig
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *Config) has(name string) bool { return slices.Contains(c.Scanners, name) }

// Run scans the image named by ref.
func Run(ctx context.Context, ref string, cfg Config) (*report.Scan, error) {
	if len(cfg.Scanners) == 0 {
		cfg.Scanners = slices.Clone(AllScanners)
	}
	if cfg.has(ScanVuln) && cfg.DB == nil {
		return nil, fmt.Errorf("scanning %s: the vulnerability scanner needs a database", ref)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	content, err := newContent(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer content.close()
	opts := cfg.Inventory
	opts.Analyzers = append(opts.Analyzers, content.extractors()...)
	res, err := scanner.Scan(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	rep := res.Report
	s := &report.Scan{SchemaVersion: report.SchemaVersion, Inventory: rep, Vulnerabilities: []vuln.Finding{}}
	if cfg.has(ScanVuln) {
		m, err := match.New(cfg.DB).Match(ctx, rep)
		if err != nil {
			return nil, fmt.Errorf("matching %s: %w", ref, err)
		}
		info := cfg.DB.Info()
		s.DB = DBInfo(cfg.DB.Path(), info)
		s.Vulnerabilities = m.Findings
		s.Warnings = append(s.Warnings, m.Warnings...)
		if age := now().Sub(info.Built); cfg.DBMaxAge > 0 && age > cfg.DBMaxAge {
			s.Warnings = append(s.Warnings, fmt.Sprintf("the vulnerability database was built %s ago, more than --db-max-age %s: run `mamori db update`", age.Round(time.Hour), cfg.DBMaxAge))
		}
		s.Scanners = append(s.Scanners, report.ScannerRun{Name: ScanVuln, Engines: []string{"osv"}})
	}
	s.Warnings = append(s.Warnings, suppress.Apply(s, cfg.Suppressions)...)
	if err := content.finish(s, res.Config); err != nil {
		return nil, err
	}
	for _, run := range s.Scanners {
		for _, p := range run.Problems {
			s.Warnings = append(s.Warnings, run.Name+": "+p)
		}
	}
	if cfg.Policy != nil {
		subj := assurance.Subject{
			Inventory: rep, Findings: s.Vulnerabilities,
			Secrets: s.Secrets, Malware: s.Malware, Misconfigurations: s.Misconfigurations,
			HasConfig: res.Config != nil, Licenses: content.licenseCheck(),
		}
		if res.Config != nil {
			subj.User = res.Config.Config.User
		}
		v := assurance.Evaluate(cfg.Policy, subj)
		s.Assurance = &v
	}
	return s, nil
}

// DBInfo describes the database for reports.
func DBInfo(path string, info vulndb.Info) *vuln.DBInfo {
	d := &vuln.DBInfo{Path: path, Built: info.Built, Records: info.Records}
	for _, s := range info.Sources {
		d.Sources = append(d.Sources, s.Name)
	}
	return d
}

// malwareFromVulns turns findings from OSV MAL- records (known-malicious
// packages) into malware findings; the vulnerability findings stay.
func malwareFromVulns(fs []vuln.Finding) []inventory.Finding {
	var out []inventory.Finding
	for i := range fs {
		f := &fs[i]
		id := ""
		for _, cand := range append([]string{f.ID}, append(f.Aliases, f.Records...)...) {
			if strings.HasPrefix(cand, "MAL-") {
				id = cand
				break
			}
		}
		if id == "" || !f.Counts() {
			continue
		}
		title := f.Summary
		if title == "" {
			title = "Known malicious package"
		}
		out = append(out, inventory.Finding{
			Kind: inventory.KindMalware, RuleID: id, Title: title, Severity: "CRITICAL",
			Category: "malicious-package", Source: inventory.SourcePackage,
			Path: f.Package.Type + ":" + f.Package.Name + "@" + f.Package.Version, Layer: f.Package.Layer,
			Engine: "osv", References: f.References,
			Metadata: map[string]string{"file": f.Package.Path},
		})
	}
	return out
}
