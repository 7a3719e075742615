package pipeline

import (
	"context"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/malware"
	"github.com/mamorisec/mamori/internal/misconfig"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/secret"
	"github.com/mamorisec/mamori/internal/walk"
)

// ContentConfig configures the content analyzers.
type ContentConfig struct {
	// SecretRules is a custom secret rules file (docs/secrets.md).
	SecretRules string
	// MalwareSignatures are extra ClamAV-format signature files or
	// directories for the built-in malware engine.
	MalwareSignatures []string
	// Clamd is the address of a clamd to scan files with as well
	// ("unix:/run/clamav/clamd.ctl", "tcp:127.0.0.1:3310"); empty means
	// the built-in engine only.
	Clamd string
	// ClamdTimeout bounds clamd's answer for one file (zero: 30s).
	ClamdTimeout time.Duration
	// Dockerfile is a Dockerfile to lint with the misconfiguration checks.
	Dockerfile string
}

// content holds the analyzers of one scan.
type content struct {
	cfg        *Config
	secrets    *secret.Scanner
	malware    *malware.Engine
	clamd      *malware.ClamdScanner
	clamdErr   error
	dockerfile []byte
	licenses   *license.Report
}

// newContent builds the analyzers the configuration selects. Bad rule or
// signature files and an unreadable Dockerfile are errors; a clamd that
// does not answer is not: the scan goes on without it and the report says
// so.
func newContent(ctx context.Context, cfg *Config) (*content, error) {
	c := &content{cfg: cfg}
	cc := &cfg.Content
	var err error
	if cfg.has(ScanSecret) {
		if c.secrets, err = secret.New(secret.Config{RulesFile: cc.SecretRules}); err != nil {
			return nil, err
		}
	} else if cc.SecretRules != "" {
		return nil, fmt.Errorf("--secret-rules %s is set but the secret scanner is not selected", cc.SecretRules)
	}
	if cfg.has(ScanMalware) {
		if c.malware, err = malware.NewEngine(malware.Options{Signatures: cc.MalwareSignatures}); err != nil {
			return nil, err
		}
		if cc.Clamd != "" {
			c.clamd, c.clamdErr = malware.NewClamdScanner(ctx, cc.Clamd, malware.ClamdOptions{Timeout: cc.ClamdTimeout})
		}
	} else if cc.Clamd != "" || len(cc.MalwareSignatures) > 0 {
		return nil, fmt.Errorf("malware options are set but the malware scanner is not selected")
	}
	if cc.Dockerfile != "" {
		if !cfg.has(ScanMisconfig) {
			return nil, fmt.Errorf("--dockerfile %s is set but the misconfig scanner is not selected", cc.Dockerfile)
		}
		f, err := os.Open(cc.Dockerfile)
		if err != nil {
			return nil, fmt.Errorf("dockerfile: %w", err)
		}
		defer f.Close()
		if c.dockerfile, err = inventory.ReadAllLimited(f, misconfig.MaxDockerfileSize); err != nil {
			return nil, fmt.Errorf("dockerfile %s: %w", cc.Dockerfile, err)
		}
	}
	return c, nil
}

// close releases the analyzers.
func (c *content) close() {}

// extractors are the content analyzers that run in the walk.
func (c *content) extractors() []inventory.Extractor {
	var out []inventory.Extractor
	if c.secrets != nil {
		out = append(out, c.secrets.Extractor())
	}
	if c.malware != nil {
		out = append(out, c.malware)
	}
	if c.clamd != nil {
		out = append(out, c.clamd)
	}
	if c.cfg.has(ScanLicense) {
		out = append(out, license.NewFileExtractor())
	}
	if c.cfg.has(ScanMisconfig) {
		out = append(out, misconfig.Files{})
	}
	return out
}

// finish turns the walk's findings and the image configuration into the
// report's sections, and removes the raw findings from the inventory.
func (c *content) finish(s *report.Scan, cfg *v1.ConfigFile) error {
	rep := s.Inventory
	redactHistory(rep)
	byKind := map[string][]inventory.Finding{}
	for _, f := range rep.Findings {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	if c.secrets != nil {
		s.Secrets = byKind[inventory.KindSecret]
		if cfg != nil {
			s.Secrets = append(s.Secrets, c.secrets.ScanConfig(cfg)...)
		}
		walk.SortFindings(s.Secrets)
		s.Scanners = append(s.Scanners, report.ScannerRun{Name: ScanSecret, Engines: []string{"builtin"}})
	}
	if c.malware != nil {
		run := report.ScannerRun{Name: ScanMalware, Engines: []string{"builtin"}, Problems: c.malware.Warnings()}
		switch {
		case c.clamd != nil:
			run.Engines = append(run.Engines, "clamav ("+c.clamd.ClamdVersion()+")")
			run.Problems = append(run.Problems, c.clamd.Warnings()...)
		case c.clamdErr != nil:
			run.Problems = append(run.Problems, fmt.Sprintf("%v: the scan continued without ClamAV", c.clamdErr))
		}
		if c.cfg.has(ScanVuln) {
			run.Engines = append(run.Engines, "osv (malicious packages)")
		}
		s.Malware = append(byKind[inventory.KindMalware], malwareFromVulns(s.Vulnerabilities)...)
		walk.SortFindings(s.Malware)
		s.Scanners = append(s.Scanners, run)
	}
	if c.cfg.has(ScanMisconfig) {
		s.Misconfigurations = misconfig.CheckImage(cfg, rep)
		if c.dockerfile != nil {
			fs, err := misconfig.LintDockerfile(c.cfg.Content.Dockerfile, c.dockerfile)
			if err != nil {
				return err
			}
			s.Misconfigurations = append(s.Misconfigurations, fs...)
		}
		run := report.ScannerRun{Name: ScanMisconfig, Engines: []string{"builtin"}}
		if cfg == nil {
			run.Problems = append(run.Problems, "the image has no configuration (a root filesystem directory): only its files were checked")
		}
		s.Scanners = append(s.Scanners, run)
	}
	if c.cfg.has(ScanLicense) {
		c.licenses = license.Analyze(rep)
		s.Licenses = c.licenses
		s.Scanners = append(s.Scanners, report.ScannerRun{Name: ScanLicense, Engines: []string{"spdx", "licensecheck"}})
	}
	rep.Findings = nil
	return nil
}

// licenseCheck evaluates license controls against the license analysis;
// nil when none ran.
func (c *content) licenseCheck() func(assurance.LicenseControls) []assurance.LicenseProblem {
	if c.licenses == nil {
		return nil
	}
	return func(lc assurance.LicenseControls) []assurance.LicenseProblem {
		p := license.Policy{Allowed: lc.Allowed, Forbidden: lc.Forbidden, ForbiddenCategories: lc.ForbiddenCategories}
		var out []assurance.LicenseProblem
		for _, v := range p.Check(c.licenses) {
			lic := v.License
			if lic == "" {
				lic = "no license"
			}
			out = append(out, assurance.LicenseProblem{Package: v.Type + ":" + v.Name + "@" + v.Version, License: lic, Reason: v.Reason})
		}
		return out
	}
}

// redactHistory removes secret values from the history lines the report
// repeats (layers, packages, findings): build arguments and RUN lines may
// carry passwords in clear.
func redactHistory(rep *inventory.Report) {
	for i := range rep.Layers {
		rep.Layers[i].CreatedBy = misconfig.RedactHistory(rep.Layers[i].CreatedBy)
	}
	for i := range rep.Packages {
		rep.Packages[i].Layer.CreatedBy = misconfig.RedactHistory(rep.Packages[i].Layer.CreatedBy)
	}
	for i := range rep.Findings {
		rep.Findings[i].Layer.CreatedBy = misconfig.RedactHistory(rep.Findings[i].Layer.CreatedBy)
	}
}
