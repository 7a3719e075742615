package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/vuln"
)

// SARIF constants mamori writes.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	toolURI      = "https://github.com/mamorisec/mamori"
	// fingerprintKey names mamori's partial fingerprint, which identifies a
	// finding across scans: code scanning uses it to track an alert.
	fingerprintKey = "mamori/vulnerability/v1"
	// unknownRule is the rule of findings without an ID, which SARIF
	// requires.
	unknownRule = "unknown-vulnerability"
)

// The SARIF 2.1.0 objects mamori writes, with only the properties it uses.
type (
	sarifLog struct {
		Version string     `json:"version"`
		Schema  string     `json:"$schema"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool       sarifTool         `json:"tool"`
		Results    []sarifResult     `json:"results"`
		Properties map[string]string `json:"properties,omitempty"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID               string              `json:"id"`
		Name             string              `json:"name"`
		ShortDescription sarifText           `json:"shortDescription"`
		FullDescription  sarifText           `json:"fullDescription"`
		HelpURI          string              `json:"helpUri,omitempty"`
		Help             sarifHelp           `json:"help"`
		Properties       sarifRuleProperties `json:"properties"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifHelp struct {
		Text     string `json:"text"`
		Markdown string `json:"markdown"`
	}
	sarifRuleProperties struct {
		SecuritySeverity string   `json:"security-severity,omitempty"`
		Precision        string   `json:"precision"`
		Tags             []string `json:"tags"`
	}
	sarifResult struct {
		RuleID              string             `json:"ruleId"`
		RuleIndex           int                `json:"ruleIndex"`
		Level               string             `json:"level"`
		Message             sarifText          `json:"message"`
		Locations           []sarifLocation    `json:"locations"`
		PartialFingerprints map[string]string  `json:"partialFingerprints"`
		Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
		Properties          map[string]any     `json:"properties,omitempty"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	}
	sarifPhysicalLocation struct {
		ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
		Region           sarifRegion           `json:"region"`
	}
	sarifArtifactLocation struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine int `json:"startLine"`
	}
	sarifSuppression struct {
		Kind          string `json:"kind"`
		Status        string `json:"status"`
		Justification string `json:"justification"`
	}
)

// writeSARIF writes the findings as a SARIF 2.1.0 log that GitHub code
// scanning accepts: one rule per vulnerability ID and one result per
// finding, located at the file the package was found in; then one rule per
// malware signature, secret rule and misconfiguration check ("KIND/RULE")
// and one result per finding, located at its file and line. Suppressed and not
// affected findings are written with a suppression, so that code scanning
// closes their alerts.
func writeSARIF(w io.Writer, s *Scan, opts Options) error {
	fs := sortedFindings(s)
	var rules []sarifRule
	ruleIndex := make(map[string]int)
	results := make([]sarifResult, 0, len(fs))
	for _, f := range fs {
		id := sarifRuleID(f)
		i, ok := ruleIndex[id]
		if !ok {
			i = len(rules)
			ruleIndex[id] = i
			rules = append(rules, sarifRuleFor(f))
		}
		raiseSecuritySeverity(&rules[i], f)
		results = append(results, sarifResultFor(f, rules[i].ID, i))
	}
	for _, sec := range contentSections(s) {
		for i := range sec.Findings {
			f := &sec.Findings[i]
			id := sarifContentRuleID(f)
			ri, ok := ruleIndex[id]
			if !ok {
				ri = len(rules)
				ruleIndex[id] = ri
				rules = append(rules, sarifContentRule(f))
			}
			if score := severityScore(findingSeverity(f)); score > 0 {
				if old, err := strconv.ParseFloat(rules[ri].Properties.SecuritySeverity, 64); err != nil || score > old {
					rules[ri].Properties.SecuritySeverity = strconv.FormatFloat(score, 'f', 1, 64)
				}
			}
			results = append(results, sarifContentResult(f, ri))
		}
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name: "mamori", Version: opts.toolVersion(), InformationURI: toolURI, Rules: rules,
		}},
		Results: results,
	}
	im := s.Inventory.Image
	props := map[string]string{"imageName": im.Name, "imageDigest": im.Digest, "imageID": im.ID}
	for k, v := range props {
		if v == "" {
			delete(props, k)
		}
	}
	if len(props) > 0 {
		run.Properties = props
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Version: sarifVersion, Schema: sarifSchema, Runs: []sarifRun{run}})
}

// sarifRuleID is the rule ID of f: its ID as the JSON encoder writes it
// (invalid UTF-8 as U+FFFD, so that IDs that differ only there share a
// rule), or unknownRule when it has none.
func sarifRuleID(f *vuln.Finding) string {
	if f.ID == "" {
		return unknownRule
	}
	return strings.ToValidUTF8(f.ID, "\uFFFD")
}

// sarifRuleFor describes the vulnerability of f as a rule.
func sarifRuleFor(f *vuln.Finding) sarifRule {
	summary := f.Summary
	if summary == "" {
		summary = f.ID
	}
	id := sarifRuleID(f)
	r := sarifRule{
		ID:               id,
		Name:             "Vulnerability",
		ShortDescription: sarifText{Text: f.ID + ": " + summary},
		FullDescription:  sarifText{Text: summary},
		HelpURI:          advisoryURL(f),
		Properties: sarifRuleProperties{
			Precision: "very-high",
			Tags:      []string{"security", "vulnerability", strings.ToLower(f.Severity.String())},
		},
	}
	var text, md strings.Builder
	text.WriteString(summary)
	md.WriteString("**" + markdownEscape(f.ID) + "**: " + markdownEscape(summary))
	if len(f.Aliases) > 0 {
		text.WriteString("\nAliases: " + strings.Join(f.Aliases, ", "))
		md.WriteString("\n\nAliases: " + markdownEscape(strings.Join(f.Aliases, ", ")))
	}
	var refs []string
	if r.HelpURI != "" {
		refs = append(refs, r.HelpURI)
	}
	for _, ref := range f.References {
		if webURL(ref) && ref != r.HelpURI {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		text.WriteString("\nReferences:")
		md.WriteString("\n\nReferences:\n")
		for _, ref := range refs {
			text.WriteString("\n" + ref)
			md.WriteString("\n- <" + ref + ">")
		}
	}
	r.Help = sarifHelp{Text: text.String(), Markdown: md.String()}
	return r
}

// raiseSecuritySeverity makes the rule's security-severity at least f's:
// its highest CVSS base score, or a score in the range of its severity when
// it has none. Code scanning reads the property to rate the alert
// (critical from 9.0, high from 7.0, medium from 4.0, low above 0). A
// finding of unknown severity and no score leaves it unset.
func raiseSecuritySeverity(r *sarifRule, f *vuln.Finding) {
	score := f.MaxScore()
	if score == 0 {
		score = severityScore(f.Severity)
	}
	if score <= 0 {
		return
	}
	old, err := strconv.ParseFloat(r.Properties.SecuritySeverity, 64)
	if err != nil || score > old {
		r.Properties.SecuritySeverity = strconv.FormatFloat(min(score, 10), 'f', 1, 64)
	}
}

// severityScore stands for a severity in the CVSS range of its rating.
func severityScore(s vuln.Severity) float64 {
	switch s {
	case vuln.SeverityCritical:
		return 9.5
	case vuln.SeverityHigh:
		return 8.0
	case vuln.SeverityMedium:
		return 5.5
	case vuln.SeverityLow:
		return 2.0
	case vuln.SeverityNegligible:
		return 0.1
	}
	return 0
}

// sarifLevel maps a severity to a SARIF result level.
func sarifLevel(s vuln.Severity) string {
	switch {
	case s >= vuln.SeverityHigh:
		return "error"
	case s == vuln.SeverityMedium:
		return "warning"
	}
	return "note"
}

// sarifResultFor describes one finding.
func sarifResultFor(f *vuln.Finding, ruleID string, rule int) sarifResult {
	p := &f.Package
	var msg strings.Builder
	msg.WriteString("Package " + p.Name + " " + p.Version)
	if p.Type != "" {
		msg.WriteString(" (" + p.Type + ")")
	}
	msg.WriteString(" is affected by " + f.ID + " (" + f.Severity.String() + ")")
	switch {
	case len(f.FixedVersions) > 0:
		msg.WriteString("; fixed in " + strings.Join(f.FixedVersions, ", "))
	case f.Status == vuln.StatusWontFix:
		msg.WriteString("; the vendor will not fix it")
	case f.Status == vuln.StatusNotAffected:
		msg.WriteString("; the vendor states it is not affected")
	default:
		msg.WriteString("; no fixed version is available")
	}
	if p.Path != "" {
		msg.WriteString(". Found in " + p.Path)
	}
	msg.WriteString(".")

	sum := sha256.Sum256([]byte(f.ID + "\x00" + p.Type + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Path))
	r := sarifResult{
		RuleID:              ruleID,
		RuleIndex:           rule,
		Level:               sarifLevel(f.Severity),
		Message:             sarifText{Text: msg.String()},
		Locations:           []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: artifactURI(p.Path)}, Region: sarifRegion{StartLine: 1}}}},
		PartialFingerprints: map[string]string{fingerprintKey: hex.EncodeToString(sum[:16])},
	}
	props := map[string]any{}
	if p.PURL != "" {
		props["purl"] = p.PURL
	}
	if len(f.FixedVersions) > 0 {
		props["fixedVersions"] = f.FixedVersions
	}
	if f.Reachability != nil {
		props["reachability"] = f.Reachability.Status
	}
	if len(props) > 0 {
		r.Properties = props
	}
	switch {
	case f.Suppressed != nil:
		j := f.Suppressed.Justification
		if f.Suppressed.Source != "" {
			j += " (" + f.Suppressed.Kind + ": " + f.Suppressed.Source + ")"
		}
		r.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: j}}
	case f.Status == vuln.StatusNotAffected:
		r.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: "the vendor states the package is not affected"}}
	}
	return r
}

// artifactURI is the package's file as a relative URI reference: the path
// without its leading "/", escaped. A first segment with a colon gets "./"
// so that it is not read as a scheme; a package with no path is located at
// ".", the image's root.
func artifactURI(path string) string {
	path = strings.TrimLeft(path, "/")
	if path == "" {
		return "."
	}
	u := (&url.URL{Path: path}).EscapedPath()
	if first, _, _ := strings.Cut(u, "/"); strings.Contains(first, ":") {
		u = "./" + u
	}
	return u
}

// markdownEscape escapes the characters that would make text markdown or
// HTML.
func markdownEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]<>#|&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
