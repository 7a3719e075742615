package report

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// contentSection is one kind of non-vulnerability finding in a report.
type contentSection struct {
	// Title heads the section ("Secrets").
	Title string
	// Noun counts the findings ("secret").
	Noun     string
	Findings []inventory.Finding
}

// contentSections are the secret, malware and misconfiguration sections of
// s, in report order.
func contentSections(s *Scan) []contentSection {
	return []contentSection{
		{"Malware", "malware finding", s.Malware},
		{"Secrets", "secret", s.Secrets},
		{"Misconfigurations", "misconfiguration", s.Misconfigurations},
	}
}

// findingSeverity parses a finding's severity; anything unparsable is
// UNKNOWN.
func findingSeverity(f *inventory.Finding) vuln.Severity {
	sev, err := vuln.ParseSeverity(f.Severity)
	if err != nil {
		return vuln.SeverityUnknown
	}
	return sev
}

// findingLocation is where a finding is, for people: "PATH:LINE", "ENV
// NAME", "label NAME" or "history" with the layer.
func findingLocation(f *inventory.Finding) string {
	var loc string
	switch f.Source {
	case inventory.SourceEnv:
		loc = "ENV " + f.Path
	case inventory.SourceLabel:
		loc = "LABEL " + f.Path
	case inventory.SourceHistory:
		loc = "history of layer " + strconv.Itoa(f.Layer.Index)
	case inventory.SourceConfig:
		loc = "image config"
		if f.Path != "" {
			loc += " " + f.Path
		}
	case inventory.SourcePackage:
		loc = "package " + f.Path
	default:
		loc = f.Path
		if f.StartLine > 0 {
			loc += ":" + strconv.Itoa(f.StartLine)
		}
		if f.Source != inventory.SourceDockerfile && f.Layer.DiffID != "" {
			loc += " (layer " + strconv.Itoa(f.Layer.Index) + ")"
		}
	}
	if f.Removed {
		loc += ", removed by a later layer"
	}
	return loc
}

// writeContentTable writes one table per non-empty section.
func writeContentTable(b *strings.Builder, s *Scan, color bool, width int) {
	for _, sec := range contentSections(s) {
		if len(sec.Findings) == 0 {
			continue
		}
		b.WriteByte('\n')
		b.WriteString(paint(color, ansiBold, sec.Title+" ("+strconv.Itoa(len(sec.Findings))+")"))
		b.WriteByte('\n')
		header := []string{"  SEVERITY", "RULE", "LOCATION", "DETAIL"}
		widths := make([]int, len(header)-1)
		for i := range widths {
			widths[i] = utf8.RuneCountInString(header[i])
		}
		rows := make([][]string, 0, len(sec.Findings))
		sevs := make([]vuln.Severity, 0, len(sec.Findings))
		for i := range sec.Findings {
			f := &sec.Findings[i]
			detail := f.Title
			if f.Match != "" {
				detail += ": " + f.Match
			}
			if f.Engine != "" && sec.Title == "Malware" {
				detail += " [" + f.Engine + "]"
			}
			sev := findingSeverity(f)
			cells := []string{"  " + sev.String(), cellOr(clean(f.RuleID)), clean(findingLocation(f)), clean(detail)}
			for j := range widths {
				widths[j] = max(widths[j], utf8.RuneCountInString(cells[j]))
			}
			rows = append(rows, cells)
			sevs = append(sevs, sev)
		}
		limit := 0
		if width > 0 {
			used := 0
			for _, n := range widths {
				used += n + 2
			}
			limit = max(width-used, minSummary)
		}
		b.WriteString(paint(color, ansiBold, padRow(header, widths, 0)))
		b.WriteByte('\n')
		for i, cells := range rows {
			if color {
				cells[0] = paint(true, severityColor(sevs[i]), cells[0]+strings.Repeat(" ", widths[0]-utf8.RuneCountInString(cells[0])))
			}
			b.WriteString(padRow(cells, widths, limit))
			b.WriteByte('\n')
		}
	}
}

// contentSummary counts the non-vulnerability findings for the summary
// line: "; 2 secrets, 1 malware finding".
func contentSummary(s *Scan) string {
	var parts []string
	for _, sec := range contentSections(s) {
		if n := len(sec.Findings); n > 0 {
			parts = append(parts, plural(n, sec.Noun))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// sarifContentRuleID is the SARIF rule of a content finding: its kind and
// rule, so that a secret rule and a misconfiguration check never share an
// ID with a vulnerability.
func sarifContentRuleID(f *inventory.Finding) string {
	return strings.ToValidUTF8(f.Kind+"/"+cmpOr(f.RuleID, "unknown"), "\uFFFD")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sarifContentRule describes a content finding's rule.
func sarifContentRule(f *inventory.Finding) sarifRule {
	title := cmpOr(f.Title, f.RuleID)
	r := sarifRule{
		ID:               sarifContentRuleID(f),
		Name:             kindName(f.Kind),
		ShortDescription: sarifText{Text: title},
		FullDescription:  sarifText{Text: title},
		Properties: sarifRuleProperties{
			Precision: "high",
			Tags:      []string{"security", f.Kind, strings.ToLower(findingSeverity(f).String())},
		},
	}
	var text, md strings.Builder
	text.WriteString(title)
	md.WriteString("**" + markdownEscape(cmpOr(f.RuleID, "unknown")) + "**: " + markdownEscape(title))
	if cis := f.Metadata["cis"]; cis != "" {
		text.WriteString("\nCIS Docker Benchmark " + cis)
		md.WriteString("\n\nCIS Docker Benchmark " + markdownEscape(cis))
	}
	if rem := f.Metadata["remediation"]; rem != "" {
		text.WriteString("\nRemediation: " + rem)
		md.WriteString("\n\nRemediation: " + markdownEscape(rem))
	}
	for _, ref := range f.References {
		if webURL(ref) {
			if r.HelpURI == "" {
				r.HelpURI = ref
			}
			text.WriteString("\n" + ref)
			md.WriteString("\n- <" + ref + ">")
		}
	}
	r.Help = sarifHelp{Text: text.String(), Markdown: md.String()}
	return r
}

func kindName(kind string) string {
	switch kind {
	case inventory.KindSecret:
		return "Secret"
	case inventory.KindMalware:
		return "Malware"
	case inventory.KindMisconfig:
		return "Misconfiguration"
	case inventory.KindLicense:
		return "License"
	}
	return "Finding"
}

// sarifContentResult describes one content finding, located at its file
// (config findings at the image root).
func sarifContentResult(f *inventory.Finding, rule int) sarifResult {
	uri := "."
	line := 1
	if f.Source == inventory.SourceFile || f.Source == inventory.SourceDockerfile || f.Source == "" {
		uri = artifactURI(f.Path)
		line = max(f.StartLine, 1)
	}
	msg := kindName(f.Kind) + " " + cmpOr(f.RuleID, "unknown") + " (" + findingSeverity(f).String() + "): " + cmpOr(f.Title, f.RuleID) + " at " + findingLocation(f)
	if f.Match != "" {
		msg += ": " + f.Match
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{f.Kind, f.RuleID, f.Source, f.Path, strconv.Itoa(f.StartLine), f.Layer.DiffID, f.Match}, "\x00")))
	r := sarifResult{
		RuleID:              sarifContentRuleID(f),
		RuleIndex:           rule,
		Level:               sarifLevel(findingSeverity(f)),
		Message:             sarifText{Text: msg + "."},
		Locations:           []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: uri}, Region: sarifRegion{StartLine: line}}}},
		PartialFingerprints: map[string]string{"mamori/" + f.Kind + "/v1": hex.EncodeToString(sum[:16])},
	}
	props := map[string]any{"source": f.Source}
	if f.Layer.DiffID != "" {
		props["layer"] = f.Layer.DiffID
	}
	if f.Engine != "" {
		props["engine"] = f.Engine
	}
	if f.Category != "" {
		props["category"] = f.Category
	}
	if f.Removed {
		props["removedInLaterLayer"] = true
	}
	r.Properties = props
	return r
}

// cdxAnnotations describes the content findings as CycloneDX annotations
// on the image component: CycloneDX has no object for a secret or a
// misconfiguration, and an annotation is a tool's statement about a BOM
// element.
func cdxAnnotations(s *Scan, imageRef string, timestamp string, tool string) []cdx.Annotation {
	var out []cdx.Annotation
	for _, sec := range contentSections(s) {
		for i := range sec.Findings {
			f := &sec.Findings[i]
			text := kindName(f.Kind) + " " + cmpOr(f.RuleID, "unknown") + " (" + findingSeverity(f).String() + "): " + cmpOr(f.Title, f.RuleID) + " at " + findingLocation(f)
			if f.Match != "" {
				text += ": " + f.Match
			}
			out = append(out, cdx.Annotation{
				Subjects:  &[]cdx.BOMReference{cdx.BOMReference(imageRef)},
				Annotator: &cdx.Annotator{Service: &cdx.Service{Name: "mamori", Version: tool}},
				Timestamp: timestamp,
				Text:      text,
			})
		}
	}
	return out
}
