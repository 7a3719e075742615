package report

import (
	"bytes"
	_ "embed"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/license"
	"github.com/mamorisec/mamori/internal/vuln"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate is the page. html/template escapes every value by context,
// and turns links with schemes other than http(s) and mailto into "#ZgotmplZ".
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower": strings.ToLower,
	"join":  strings.Join,
}).Parse(htmlSource))

// htmlPage is what the template shows.
type htmlPage struct {
	Image       inventory.ImageInfo
	ImageName   string
	OS          string
	DB          *vuln.DBInfo
	DBBuilt     string
	DBAge       string
	Warnings    []string
	Assurance   *assurance.Verdict
	Counts      []htmlCount
	Total       int
	Suppressed  int
	NotAffected int
	Problems    int
	Groups      []htmlGroup
	Hidden      []htmlGroup
	Content     []htmlSection
	Scanners    []ScannerRun
	Licenses    *license.Report
	LicenseLine string
	ToolVersion string
}

// htmlSection is a section of secrets, malware or misconfigurations.
type htmlSection struct {
	Title string
	Rows  []htmlContent
}

type htmlContent struct {
	Severity, RuleID, Title, Location, Match, Engine string
}

type htmlCount struct {
	Severity string
	N        int
}

type htmlGroup struct {
	Package  *vuln.Package
	Findings []htmlFinding
}

type htmlFinding struct {
	*vuln.Finding
	// Link is the advisory page, References the other web links.
	Link       string
	References []string
	Fixed      string
	Reach      string
	// Why explains a suppressed or not affected finding.
	Why string
}

// writeHTML writes the scan as one self-contained HTML page: no scripts and
// no external resources.
func writeHTML(w io.Writer, s *Scan, opts Options) error {
	inv := s.Inventory
	t := countFindings(s)
	page := htmlPage{
		Image:       inv.Image,
		ImageName:   imageName(inv.Image),
		OS:          osName(inv.OS),
		DB:          s.DB,
		Warnings:    s.Warnings,
		Assurance:   s.Assurance,
		Total:       t.Total,
		Suppressed:  t.Suppressed,
		NotAffected: t.NotAffected,
		Problems:    len(inv.Problems),
		ToolVersion: opts.toolVersion(),
	}
	for _, sev := range severitiesDesc {
		page.Counts = append(page.Counts, htmlCount{Severity: sev.String(), N: t.BySeverity[sev]})
	}
	if s.DB != nil && !s.DB.Built.IsZero() {
		page.DBBuilt = s.DB.Built.UTC().Format("2006-01-02 15:04 UTC")
		page.DBAge = age(opts.now().Sub(s.DB.Built))
	}
	fs := sortedFindings(s)
	page.Groups = htmlGroups(groupFindings(fs, (*vuln.Finding).Counts))
	page.Hidden = htmlGroups(groupFindings(fs, func(f *vuln.Finding) bool { return !f.Counts() }))
	page.Scanners = s.Scanners
	page.Licenses, page.LicenseLine = s.Licenses, licenseLine(s.Licenses)
	for _, sec := range contentSections(s) {
		if len(sec.Findings) == 0 {
			continue
		}
		hs := htmlSection{Title: sec.Title}
		for i := range sec.Findings {
			f := &sec.Findings[i]
			hs.Rows = append(hs.Rows, htmlContent{
				Severity: findingSeverity(f).String(), RuleID: f.RuleID, Title: f.Title,
				Location: findingLocation(f), Match: f.Match, Engine: f.Engine,
			})
		}
		page.Content = append(page.Content, hs)
	}
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, &page); err != nil {
		return err
	}
	// html/template escapes markup but passes invalid UTF-8 and control
	// characters through. The template itself has neither, so whatever the
	// page has came from the scan: make it valid text.
	_, err := w.Write(bytes.Map(htmlRune, buf.Bytes()))
	return err
}

// htmlRune replaces control characters other than white space by '?'.
// bytes.Map already decodes invalid UTF-8 as U+FFFD.
func htmlRune(r rune) rune {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == '\f':
		return r
	case isControl(r):
		return '?'
	}
	return r
}

func htmlGroups(gs []group) []htmlGroup {
	out := make([]htmlGroup, len(gs))
	for i, g := range gs {
		out[i].Package = g.Package
		for _, f := range g.Findings {
			hf := htmlFinding{
				Finding: f,
				Link:    advisoryURL(f),
				Fixed:   strings.Join(f.FixedVersions, ", "),
				Reach:   reachabilityText(f.Reachability),
			}
			for _, ref := range f.References {
				if webURL(ref) && ref != hf.Link {
					hf.References = append(hf.References, ref)
				}
			}
			switch {
			case f.Suppressed != nil:
				hf.Why = "suppressed by " + f.Suppressed.Kind
				if f.Suppressed.Source != "" {
					hf.Why += " (" + f.Suppressed.Source + ")"
				}
				if f.Suppressed.Status != "" {
					hf.Why += ": " + f.Suppressed.Status
				}
				if f.Suppressed.Justification != "" {
					hf.Why += ": " + f.Suppressed.Justification
				}
			case f.Status == vuln.StatusNotAffected:
				hf.Why = "the vendor states the package is not affected"
			}
			out[i].Findings = append(out[i].Findings, hf)
		}
	}
	return out
}

// age says how old something is, roughly.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "built in the future"
	case d < time.Hour:
		return "less than an hour old"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hours old"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days old"
}

// imageName is the name reports use for the image.
func imageName(im inventory.ImageInfo) string {
	for _, s := range []string{im.Name, im.Ref, im.Digest, im.ID} {
		if s != "" {
			return s
		}
	}
	return "unknown image"
}

// osName describes the operating system, or says it is unknown.
func osName(o *inventory.OS) string {
	switch {
	case o == nil:
		return "unknown"
	case o.PrettyName != "":
		return o.PrettyName
	case o.VersionID != "":
		return o.ID + " " + o.VersionID
	}
	return o.ID
}
