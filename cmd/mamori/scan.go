package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/pipeline"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// exitError asks main to exit with code after printing msg (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// scanFlags are the flags of mamori scan.
type scanFlags struct {
	inventoryFlags
	format, output string
	dbPath         string
	dbMaxAge       time.Duration
	exitCode       int
	severities     []string
	ignoreUnfixed  bool
	ignoreFile     string
	vex            []string
	policy         string
	scanners       []string
	content        pipeline.ContentConfig
}

func newScanCmd() *cobra.Command {
	var fl scanFlags
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image for vulnerabilities and gate CI on the result",
		Long: `Inventory an image, match its packages against the vulnerability database
and write a report: a table grouped by package (default), JSON, SARIF 2.1.0,
CycloneDX 1.6 with vulnerabilities, SPDX 2.3 or a single-file HTML page.

Gate: with --exit-code N the command exits with N when a finding of the
--severity ratings (default: all) remains after --ignore-unfixed, the
ignore file and VEX statements. With --policy FILE the assurance policy
decides instead, and a failing verdict exits with N (or 1). Suppressed
findings stay in the JSON report with the reason. See docs/assurance.md.

` + imageRefHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, args[0], &fl)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.format, "format", "f", "table", "output format: "+strings.Join(report.Formats(), ", "))
	f.StringVarP(&fl.output, "output", "o", "", "write to this file (atomically) instead of stdout")
	f.StringVar(&fl.dbPath, "db", defaultDBPath(), "vulnerability database file")
	f.DurationVar(&fl.dbMaxAge, "db-max-age", defaultMaxAge, "warn when the database is older than this")
	f.IntVar(&fl.exitCode, "exit-code", 0, "exit status when the gate fails (0: findings never fail the scan)")
	f.StringSliceVar(&fl.severities, "severity", nil, "ratings to report and gate on, e.g. CRITICAL,HIGH (default: all)")
	f.BoolVar(&fl.ignoreUnfixed, "ignore-unfixed", false, "leave out findings that have no fixed version")
	f.StringVar(&fl.ignoreFile, "ignorefile", "", "ignore file (default .mamoriignore.yaml when it exists)")
	f.StringArrayVar(&fl.vex, "vex", nil, "OpenVEX document whose statements suppress findings (may repeat)")
	f.StringVar(&fl.policy, "policy", "", "image assurance policy file (YAML)")
	f.StringSliceVar(&fl.scanners, "scanners", nil, "analyses to run: "+strings.Join(pipeline.AllScanners, ",")+" (default: all)")
	f.StringVar(&fl.content.SecretRules, "secret-rules", "", "custom secret rules file (YAML, see docs/secrets.md)")
	f.StringArrayVar(&fl.content.MalwareSignatures, "malware-signatures", nil, "extra signature file or directory (ClamAV .hdb/.hsb/.ndb) for the built-in engine (may repeat)")
	f.StringVar(&fl.content.Clamd, "clamd", "", "also scan files with clamd at this address (unix:/run/clamav/clamd.ctl, tcp:127.0.0.1:3310)")
	f.DurationVar(&fl.content.ClamdTimeout, "clamd-timeout", 30*time.Second, "per-file clamd timeout")
	f.StringVar(&fl.content.Dockerfile, "dockerfile", "", "also lint this Dockerfile (misconfig scanner)")
	fl.register(f)
	return cmd
}

func runScan(cmd *cobra.Command, ref string, fl *scanFlags) error {
	if !slices.Contains(report.Formats(), fl.format) {
		return fmt.Errorf("unknown format %q (valid: %s)", fl.format, strings.Join(report.Formats(), ", "))
	}
	scanners, err := pipeline.ParseScanners(fl.scanners)
	if err != nil {
		return err
	}
	sevs, err := assurance.ParseSeverities(fl.severities)
	if err != nil {
		return err
	}
	gate := assurance.Gate{Severities: sevs, IgnoreUnfixed: fl.ignoreUnfixed, ExitCode: fl.exitCode}
	policy, err := gate.Policy()
	if err != nil {
		return err
	}
	if fl.policy != "" {
		if policy, err = assurance.Load(fl.policy); err != nil {
			return err
		}
	}
	sup, err := loadSuppressions(fl.ignoreFile, fl.vex)
	if err != nil {
		return err
	}
	cfg := pipeline.Config{
		Scanners: scanners, DBMaxAge: fl.dbMaxAge, Suppressions: sup, Policy: policy,
		Content: fl.content, Now: time.Now,
	}
	if slices.Contains(scanners, pipeline.ScanVuln) {
		db, err := vulndb.Open(fl.dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		cfg.DB = db
	}
	bar := fl.progress()
	if cfg.Inventory, err = fl.options(cmd); err != nil {
		return err
	}
	s, err := pipeline.Run(cmd.Context(), ref, cfg)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	s.Vulnerabilities = displayFilter(s.Vulnerabilities, sevs, fl.ignoreUnfixed)
	for _, w := range s.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	ro := report.Options{Now: time.Now, ToolVersion: toolVersion()}
	if f, ok := cmd.OutOrStdout().(*os.File); ok && fl.output == "" && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			ro.Width = w
		}
	}
	if err := writeOutput(cmd, fl.output, func(w io.Writer) error { return report.Write(w, fl.format, s, ro) }); err != nil {
		return err
	}
	if code := gate.ExitStatus(s.Assurance); code != 0 {
		return &exitError{code: code, msg: verdictLine(s.Assurance)}
	}
	return nil
}

// displayFilter leaves out the findings --severity and --ignore-unfixed
// exclude from the report. The gate has already seen all of them.
func displayFilter(fs []vuln.Finding, sevs []vuln.Severity, ignoreUnfixed bool) []vuln.Finding {
	out := fs[:0:0]
	for _, f := range fs {
		if len(sevs) > 0 && !slices.Contains(sevs, f.Severity) {
			continue
		}
		if ignoreUnfixed && f.Status != vuln.StatusFixed {
			continue
		}
		out = append(out, f)
	}
	return out
}

func verdictLine(v *assurance.Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "image failed assurance policy %q:", v.Policy)
	for _, vi := range v.Violations {
		fmt.Fprintf(&b, "\n  %s: %s", vi.Control, vi.Message)
	}
	return b.String()
}
