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

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/match"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/scanner"
	"github.com/mamorisec/mamori/internal/signature"
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
	// Policies are further policies (the server's): each gets a verdict
	// in the report's Verdicts, and Assurance is the first failing one
	// (or Policy's, or the first).
	Policies []*assurance.Policy
	// Exceptions are the assurance exceptions in force (the server's;
	// the CLI has none).
	Exceptions []assurance.Exception
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
	policies := cfg.Policies
	if cfg.Policy != nil {
		policies = append([]*assurance.Policy{cfg.Policy}, policies...)
	}
	if len(policies) > 0 {
		subj := assurance.Subject{
			Inventory: rep, Findings: s.Vulnerabilities,
			Secrets: s.Secrets, Malware: s.Malware, Misconfigurations: s.Misconfigurations,
			HasConfig: res.Config != nil, Licenses: content.licenseCheck(),
			Now: now(), Image: imageName(rep.Image), Digest: rep.Image.Digest, Exceptions: cfg.Exceptions,
		}
		for _, l := range rep.Layers {
			subj.Layers = append(subj.Layers, l.DiffID)
		}
		if res.Config != nil {
			subj.User = res.Config.Config.User
			subj.Created = res.Config.Created.Time
			subj.Labels = res.Config.Config.Labels
		}
		for _, p := range policies {
			if p.Disabled {
				continue
			}
			sub := subj
			if sc := p.Controls.SignatureRequired; sc != nil {
				sub.Signatures, sub.SignatureError = verifySignatures(ctx, rep.Image, sc, cfg.Inventory.Image)
			}
			v := assurance.Evaluate(p, sub)
			v.Mode = p.EffectiveMode(subj.Now)
			// Assurance is the first verdict that fails the image, else
			// the first audit-mode failure, else the first verdict.
			if s.Assurance == nil || (!s.Assurance.Fails() && v.Fails()) || (s.Assurance.Pass && !v.Pass) {
				s.Assurance = &v
			}
			if len(cfg.Policies) > 0 {
				s.Verdicts = append(s.Verdicts, v)
			}
		}
	}
	return s, nil
}

// imageName is the image's name for exception patterns.
func imageName(im inventory.ImageInfo) string {
	if im.Name != "" {
		return im.Name
	}
	return im.Ref
}

// verifySignatures checks the image's cosign signatures in its registry.
// Only images with a repository and a manifest digest can be signed; for
// others the error says why.
func verifySignatures(ctx context.Context, im inventory.ImageInfo, sc *assurance.SignatureControl, io image.Options) ([]signature.Verified, error) {
	var ref string
	switch {
	case len(im.RepoDigests) > 0:
		ref = im.RepoDigests[0]
	case im.Digest != "" && im.Name != "" && im.Source == image.SourceRegistry:
		repo := im.Name
		if i := strings.LastIndex(repo, "@"); i >= 0 {
			repo = repo[:i]
		} else if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		ref = repo + "@" + im.Digest
	default:
		return nil, fmt.Errorf("image %s has no registry digest, so its signature cannot be checked", imageName(im))
	}
	d, err := name.NewDigest(ref, image.NameOptions(io)...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	opts := sc.VerifyOptions()
	opts.Remote = image.RegistryOptions(ctx, io)
	return signature.Verify(ctx, d, opts)
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
