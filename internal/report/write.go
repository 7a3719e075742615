package report

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Output formats accepted by Write.
const (
	FormatTable     = "table"
	FormatJSON      = "json"
	FormatSARIF     = "sarif"
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
	FormatHTML      = "html"
)

// Formats lists the formats Write accepts, the default (table) first.
func Formats() []string {
	return []string{FormatTable, FormatJSON, FormatSARIF, FormatCycloneDX, FormatSPDX, FormatHTML}
}

// Options controls the parts of the output that do not come from the scan.
type Options struct {
	// Now is the clock for the SBOM creation time (CycloneDX, SPDX) and for
	// the database age the HTML page shows. Tests inject a fixed clock for
	// reproducible output. Nil means time.Now.
	Now func() time.Time
	// ToolVersion is mamori's version, recorded as the tool that made the
	// report ("dev" when empty).
	ToolVersion string
	// Width is the terminal width in columns. When it is positive, the
	// table cuts vulnerability summaries so that rows fit, keeping at least
	// 16 columns of each; zero means no limit (output to a file or a pipe).
	Width int
	// Color turns on ANSI colors in the table. Set it only when the output
	// is a terminal; when it is false, Write still colors a table written
	// straight to a terminal *os.File unless NO_COLOR is set.
	Color bool
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) toolVersion() string {
	if o.ToolVersion == "" {
		return "dev"
	}
	return o.ToolVersion
}

// Write writes s to w in format, one of Formats(). s is not modified.
func Write(w io.Writer, format string, s *Scan, opts Options) error {
	if s == nil || s.Inventory == nil {
		return fmt.Errorf("writing %s report: the scan has no inventory", format)
	}
	var err error
	switch format {
	case FormatTable:
		err = writeTable(w, s, opts)
	case FormatJSON:
		err = writeJSON(w, s)
	case FormatSARIF:
		err = writeSARIF(w, s, opts)
	case FormatCycloneDX:
		err = writeCycloneDX(w, s, opts)
	case FormatSPDX:
		err = writeSPDX(w, s, opts)
	case FormatHTML:
		err = writeHTML(w, s, opts)
	default:
		return fmt.Errorf("unknown report format %q (valid: %s)", format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return fmt.Errorf("writing %s report: %w", format, err)
	}
	return nil
}

// compareFindings orders findings as Scan.Vulnerabilities documents: by
// package (type, name, version, path), then by descending severity and ID.
func compareFindings(a, b *vuln.Finding) int {
	return cmp.Or(
		comparePackages(&a.Package, &b.Package),
		cmp.Compare(b.Severity, a.Severity),
		cmp.Compare(a.ID, b.ID),
	)
}

func comparePackages(a, b *vuln.Package) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Path, b.Path),
	)
}

// packageKey is the inventory.Package.Key of the package a finding is in,
// by which the SBOM builders index their components.
func packageKey(p *vuln.Package) string {
	return (&inventory.Package{Type: p.Type, Name: p.Name, Version: p.Version, Path: p.Path}).Key()
}

func samePackage(a, b *vuln.Package) bool { return comparePackages(a, b) == 0 }

// sortedFindings returns pointers to s's findings in report order. The scan
// is not modified.
func sortedFindings(s *Scan) []*vuln.Finding {
	fs := make([]*vuln.Finding, len(s.Vulnerabilities))
	for i := range s.Vulnerabilities {
		fs[i] = &s.Vulnerabilities[i]
	}
	slices.SortStableFunc(fs, compareFindings)
	return fs
}

// group is one package and its findings.
type group struct {
	Package  *vuln.Package
	Findings []*vuln.Finding
}

// groupFindings splits sorted findings by package, keeping those keep
// accepts.
func groupFindings(fs []*vuln.Finding, keep func(*vuln.Finding) bool) []group {
	var gs []group
	for _, f := range fs {
		if !keep(f) {
			continue
		}
		if n := len(gs); n > 0 && samePackage(gs[n-1].Package, &f.Package) {
			gs[n-1].Findings = append(gs[n-1].Findings, f)
			continue
		}
		gs = append(gs, group{Package: &f.Package, Findings: []*vuln.Finding{f}})
	}
	return gs
}

// tally counts a scan's findings.
type tally struct {
	// BySeverity counts the findings that count against a gate, indexed by
	// severity.
	BySeverity [vuln.SeverityCritical + 1]int
	Total      int
	Suppressed int
	// NotAffected counts findings the vendor marks not affected (and that
	// are not suppressed too).
	NotAffected int
}

func countFindings(s *Scan) tally {
	var t tally
	for i := range s.Vulnerabilities {
		f := &s.Vulnerabilities[i]
		switch {
		case f.Suppressed != nil:
			t.Suppressed++
		case f.Status == vuln.StatusNotAffected:
			t.NotAffected++
		default:
			t.Total++
			sev := f.Severity
			if sev < 0 || sev > vuln.SeverityCritical {
				sev = vuln.SeverityUnknown
			}
			t.BySeverity[sev]++
		}
	}
	return t
}

// severitiesDesc lists the severities from most to least severe.
var severitiesDesc = []vuln.Severity{
	vuln.SeverityCritical, vuln.SeverityHigh, vuln.SeverityMedium,
	vuln.SeverityLow, vuln.SeverityNegligible, vuln.SeverityUnknown,
}

// advisoryURL returns a web page about the finding: its own URL when that is
// an absolute http(s) URL, otherwise the page of the database its ID comes
// from.
func advisoryURL(f *vuln.Finding) string {
	if webURL(f.URL) {
		return f.URL
	}
	return idURL(f.ID)
}

// idURL is the page about a vulnerability identifier in the database that
// assigned it, or "" for an identifier mamori does not know.
func idURL(id string) string {
	esc := url.PathEscape(id)
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "CVE":
		return "https://nvd.nist.gov/vuln/detail/" + esc
	case "GHSA":
		return "https://github.com/advisories/" + esc
	case "GO":
		return "https://pkg.go.dev/vuln/" + esc
	case "":
		return ""
	}
	return "https://osv.dev/vulnerability/" + esc
}

// sourceName names the database that assigned a vulnerability identifier.
func sourceName(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "CVE":
		return "NVD"
	case "GHSA":
		return "GitHub Advisory Database"
	case "GO":
		return "Go Vulnerability Database"
	case "DSA", "DLA", "DTSA":
		return "Debian Security Tracker"
	case "PYSEC":
		return "PyPI Advisory Database"
	case "RUSTSEC":
		return "RustSec Advisory Database"
	}
	return "OSV"
}

// webURL reports whether s is an absolute http or https URL with a host and
// no characters that need escaping, safe to write as a link in every format.
func webURL(s string) bool {
	if s == "" || len(s) > 2048 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Opaque == ""
}

// clean returns s on one line: tabs and line breaks become spaces, other
// control characters (which could break a table or drive a terminal) '?',
// and invalid UTF-8 U+FFFD. Scan data comes from untrusted images and
// databases.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case isControl(r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isControl reports whether r is a C0 or C1 control character or DEL.
func isControl(r rune) bool { return r < 0x20 || 0x7f <= r && r < 0xa0 }

// reachabilityText is the table and HTML wording of a reachability status.
func reachabilityText(r *vuln.Reachability) string {
	if r == nil {
		return ""
	}
	switch r.Status {
	case vuln.ReachableYes:
		return "reachable"
	case vuln.ReachableNo:
		return "not reachable"
	}
	return "unknown"
}

// isTerminal reports whether w is a terminal that accepts colors.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}
