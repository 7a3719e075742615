package report

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mamorisec/mamori/internal/vuln"
)

// ANSI sequences for the table.
const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiReset  = "\x1b[0m"
)

// minSummary is the fewest columns a cut summary keeps, however narrow the
// terminal.
const minSummary = 16

// tableRow is one finding in the table, its cells already cleaned.
type tableRow struct {
	cells    []string
	severity vuln.Severity
}

// writeTable writes the warnings, the findings that count grouped by
// package (one header line per package, one row per finding), a summary
// line counting them by severity together with the suppressed and not
// affected ones (which are not listed), and the assurance verdict.
func writeTable(w io.Writer, s *Scan, opts Options) error {
	color := opts.Color || isTerminal(w)
	var b strings.Builder
	for _, msg := range s.Warnings {
		b.WriteString(paint(color, ansiYellow, "warning: "+clean(msg)))
		b.WriteByte('\n')
	}
	if len(s.Warnings) > 0 {
		b.WriteByte('\n')
	}

	groups := groupFindings(sortedFindings(s), (*vuln.Finding).Counts)
	withReach := false
	for _, g := range groups {
		for _, f := range g.Findings {
			withReach = withReach || f.Reachability != nil
		}
	}
	header := []string{"  ID", "SEVERITY", "STATUS", "FIXED IN"}
	if withReach {
		header = append(header, "REACHABILITY")
	}
	header = append(header, "SUMMARY")

	rows := make([][]tableRow, len(groups))
	widths := make([]int, len(header)-1)
	for i := range widths {
		widths[i] = utf8.RuneCountInString(header[i])
	}
	for i, g := range groups {
		for _, f := range g.Findings {
			cells := []string{"  " + clean(f.ID), f.Severity.String(), clean(string(f.Status)), fixedIn(f)}
			if withReach {
				cells = append(cells, cellOr(reachabilityText(f.Reachability)))
			}
			cells = append(cells, clean(f.Summary))
			for j := range widths {
				widths[j] = max(widths[j], utf8.RuneCountInString(cells[j]))
			}
			rows[i] = append(rows[i], tableRow{cells: cells, severity: f.Severity})
		}
	}
	summaryWidth := 0
	if opts.Width > 0 {
		used := 0
		for _, n := range widths {
			used += n + 2
		}
		summaryWidth = max(opts.Width-used, minSummary)
	}

	if len(groups) == 0 {
		b.WriteString("No vulnerabilities found.\n")
	} else {
		b.WriteString(paint(color, ansiBold, padRow(header, widths, 0)))
		b.WriteByte('\n')
	}
	for i, g := range groups {
		p := g.Package
		head := clean(p.Name) + " " + clean(p.Version) + " (" + cellOr(clean(p.Type)) + ")"
		if p.Path != "" {
			head += " " + clean(p.Path)
		}
		b.WriteString(paint(color, ansiBold, head))
		b.WriteByte('\n')
		for _, r := range rows[i] {
			cells := r.cells
			if color {
				// Pad before coloring so that the escape sequences do not
				// count as text.
				cells = append([]string(nil), cells...)
				cells[1] = paint(true, severityColor(r.severity), cells[1]+strings.Repeat(" ", widths[1]-len(cells[1])))
			}
			b.WriteString(padRow(cells, widths, summaryWidth))
			b.WriteByte('\n')
		}
	}

	writeContentTable(&b, s, color, opts.Width)
	writeLicenseTable(&b, s.Licenses, color)
	b.WriteByte('\n')
	b.WriteString(paint(color, ansiBold, summaryLine(countFindings(s))+contentSummary(s)))
	b.WriteByte('\n')
	if v := s.Assurance; v != nil {
		verdict, c := "PASS", ""
		if !v.Pass {
			verdict, c = "FAIL", ansiRed
		}
		b.WriteString(paint(color, c, "Assurance policy "+strconv.Quote(clean(v.Policy))+": "+verdict))
		b.WriteByte('\n')
		for _, vi := range v.Violations {
			b.WriteString("  - " + clean(vi.Control) + ": " + clean(vi.Message))
			if len(vi.Findings) > 0 {
				b.WriteString(" (" + clean(strings.Join(vi.Findings, ", ")) + ")")
			}
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// padRow joins cells, padding every cell but the last to its column width
// and cutting the last to limit columns when limit is positive. Cells that
// are wider than their column already (a colored cell) are written as is.
func padRow(cells []string, widths []int, limit int) string {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(cut(c, limit))
			break
		}
		b.WriteString(c)
		if n := utf8.RuneCountInString(c); n < widths[i] {
			b.WriteString(strings.Repeat(" ", widths[i]-n))
		}
		b.WriteString("  ")
	}
	return strings.TrimRight(b.String(), " ")
}

// cut shortens s to limit runes, ending it with an ellipsis, when limit is
// positive and s is longer.
func cut(s string, limit int) string {
	if limit <= 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return strings.TrimRight(s[:i], " ") + "…"
		}
		n++
	}
	return s
}

// fixedIn lists the fixed versions of a finding, or "-".
func fixedIn(f *vuln.Finding) string {
	return cellOr(clean(strings.Join(f.FixedVersions, ", ")))
}

func cellOr(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summaryLine counts the findings by severity, then the ones not listed.
func summaryLine(t tally) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(t.Total))
	if t.Total == 1 {
		b.WriteString(" vulnerability (")
	} else {
		b.WriteString(" vulnerabilities (")
	}
	first := true
	for _, sev := range severitiesDesc {
		n := t.BySeverity[sev]
		if n == 0 && (sev == vuln.SeverityNegligible || sev == vuln.SeverityUnknown) {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(sev.String() + ": " + strconv.Itoa(n))
	}
	b.WriteString(")")
	if t.Suppressed > 0 {
		b.WriteString("; " + strconv.Itoa(t.Suppressed) + " suppressed")
	}
	if t.NotAffected > 0 {
		b.WriteString("; " + strconv.Itoa(t.NotAffected) + " not affected")
	}
	return b.String()
}

func severityColor(s vuln.Severity) string {
	switch s {
	case vuln.SeverityCritical:
		return ansiBold + ansiRed
	case vuln.SeverityHigh:
		return ansiRed
	case vuln.SeverityMedium:
		return ansiYellow
	case vuln.SeverityLow:
		return ansiBlue
	}
	return ""
}

// paint wraps s in the ANSI sequence code when color is on.
func paint(color bool, code, s string) string {
	if !color || code == "" {
		return s
	}
	return code + s + ansiReset
}
