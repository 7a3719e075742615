package suppress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/vuln"
)

// MaxVEXSize is the largest OpenVEX document LoadVEX reads.
const MaxVEXSize = 32 << 20

// The OpenVEX statuses.
const (
	StatusNotAffected        = "not_affected"
	StatusAffected           = "affected"
	StatusFixed              = "fixed"
	StatusUnderInvestigation = "under_investigation"
)

var (
	vexStatuses = []string{StatusNotAffected, StatusAffected, StatusFixed, StatusUnderInvestigation}
	// justifications are the OpenVEX v0.2.0 justification labels.
	justifications = []string{
		"component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path",
		"vulnerable_code_cannot_be_controlled_by_adversary", "inline_mitigations_already_exist",
	}
)

// The OpenVEX @context values accepted: the unversioned one and v0.2.x.
const (
	vexContext          = "https://openvex.dev/ns"
	vexContextV02Prefix = "https://openvex.dev/ns/v0.2."
)

// VEX is a parsed OpenVEX v0.2.0 document.
type VEX struct {
	// Path names the document in suppressions, warnings and errors.
	Path       string
	statements []statement
	// warnings are products mamori cannot match (no purl).
	warnings []string
}

// statement is one VEX statement reduced to what matching needs.
type statement struct {
	index    int // 1-based position in the document
	vulns    []string
	products []product
	status   string
	reason   string
	time     time.Time
}

// product is a product identified by purl, with its subcomponents.
type product struct {
	purls []*packageurl.PackageURL
	subs  [][]*packageurl.PackageURL
}

// The document as written, field for field with OpenVEX v0.2.0 so that
// unknown fields are rejected.
type vexDocFile struct {
	Context     string             `json:"@context"`
	ID          string             `json:"@id"`
	Author      string             `json:"author"`
	Role        string             `json:"role"`
	Timestamp   *time.Time         `json:"timestamp"`
	LastUpdated *time.Time         `json:"last_updated"`
	Version     *int               `json:"version"`
	Tooling     string             `json:"tooling"`
	Statements  []vexStatementFile `json:"statements"`
}

type vexStatementFile struct {
	ID                       string           `json:"@id"`
	Version                  *int             `json:"version"`
	Vulnerability            *vexVulnFile     `json:"vulnerability"`
	Timestamp                *time.Time       `json:"timestamp"`
	LastUpdated              *time.Time       `json:"last_updated"`
	Products                 []vexProductFile `json:"products"`
	Status                   string           `json:"status"`
	Supplier                 string           `json:"supplier"`
	StatusNotes              string           `json:"status_notes"`
	Justification            string           `json:"justification"`
	ImpactStatement          string           `json:"impact_statement"`
	ActionStatement          string           `json:"action_statement"`
	ActionStatementTimestamp *time.Time       `json:"action_statement_timestamp"`
}

type vexVulnFile struct {
	ID          string   `json:"@id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Aliases     []string `json:"aliases"`
}

type vexComponentFile struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers"`
	Hashes      map[string]string `json:"hashes"`
}

type vexProductFile struct {
	vexComponentFile
	Subcomponents []vexComponentFile `json:"subcomponents"`
}

// LoadVEX reads and validates the OpenVEX document at path.
func LoadVEX(path string) (*VEX, error) {
	data, err := readFile("VEX document", path, MaxVEXSize)
	if err != nil {
		return nil, err
	}
	return ParseVEX(path, data)
}

// ParseVEX validates an OpenVEX v0.2.0 JSON document; name is used in
// suppressions, warnings and error messages.
func ParseVEX(name string, data []byte) (*VEX, error) {
	v, err := parseVEX(data)
	if err != nil {
		return nil, fmt.Errorf("VEX document %s: %w", name, err)
	}
	v.Path = name
	for i, w := range v.warnings {
		v.warnings[i] = fmt.Sprintf("VEX document %s: %s", name, w)
	}
	return v, nil
}

func parseVEX(data []byte) (*VEX, error) {
	var df vexDocFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&df); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the end of the document")
	}
	switch {
	case df.Context == "":
		return nil, errors.New("@context is missing: not an OpenVEX document")
	case df.Context != vexContext && !strings.HasPrefix(df.Context, vexContextV02Prefix):
		return nil, fmt.Errorf("@context %q: only OpenVEX v0.2 documents (%s or %s0) are supported", df.Context, vexContext, vexContextV02Prefix)
	case strings.TrimSpace(df.Author) == "":
		return nil, errors.New("author is missing")
	case df.Timestamp == nil:
		return nil, errors.New("timestamp is missing")
	}
	v := &VEX{}
	for i, sf := range df.Statements {
		st, warns, err := sf.validate(*df.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i+1, err)
		}
		st.index = i + 1
		for _, w := range warns {
			v.warnings = append(v.warnings, fmt.Sprintf("statement %d: %s", i+1, w))
		}
		v.statements = append(v.statements, st)
	}
	return v, nil
}

// jsonError adds the line to JSON syntax and type errors.
func jsonError(data []byte, err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
		pe *time.ParseError
	)
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %v", lineAt(data, se.Offset), se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the document"
		}
		return fmt.Errorf("line %d: %s must be a JSON %s, not %s", lineAt(data, te.Offset), field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &pe):
		return fmt.Errorf("%q is not an RFC 3339 timestamp (2024-01-01T00:00:00Z)", pe.Value)
	case errors.Is(err, io.EOF):
		return errors.New("file is empty")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

func lineAt(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

func (sf *vexStatementFile) validate(docTime time.Time) (statement, []string, error) {
	st := statement{status: sf.Status}
	if sf.Vulnerability == nil || strings.TrimSpace(sf.Vulnerability.Name) == "" {
		return st, nil, errors.New("vulnerability.name is missing")
	}
	st.vulns = append(st.vulns, strings.TrimSpace(sf.Vulnerability.Name))
	for _, a := range sf.Vulnerability.Aliases {
		if a = strings.TrimSpace(a); a != "" {
			st.vulns = append(st.vulns, a)
		}
	}
	if !slices.Contains(vexStatuses, sf.Status) {
		return st, nil, fmt.Errorf("status %q is not one of %s", sf.Status, strings.Join(vexStatuses, ", "))
	}
	if sf.Justification != "" && !slices.Contains(justifications, sf.Justification) {
		return st, nil, fmt.Errorf("justification %q is not one of %s", sf.Justification, strings.Join(justifications, ", "))
	}
	if sf.Status == StatusNotAffected && sf.Justification == "" && strings.TrimSpace(sf.ImpactStatement) == "" {
		return st, nil, errors.New("a not_affected statement needs a justification or an impact_statement")
	}
	if len(sf.Products) == 0 {
		return st, nil, errors.New("products is missing")
	}
	var warns []string
	for i, pf := range sf.Products {
		p, err := pf.parse()
		if err != nil {
			return st, nil, fmt.Errorf("products[%d]: %w", i, err)
		}
		if len(p.purls) == 0 {
			warns = append(warns, fmt.Sprintf("products[%d] has no purl; mamori matches products by purl only, so it is skipped", i))
			continue
		}
		st.products = append(st.products, p)
	}
	st.time = docTime
	switch {
	case sf.LastUpdated != nil:
		st.time = *sf.LastUpdated
	case sf.Timestamp != nil:
		st.time = *sf.Timestamp
	}
	st.reason = reason(sf)
	return st, warns, nil
}

// reason is the suppression's justification text.
func reason(sf *vexStatementFile) string {
	var parts []string
	switch sf.Status {
	case StatusNotAffected:
		parts = append(parts, sf.Justification, sf.ImpactStatement)
	case StatusFixed:
		parts = append(parts, "fixed in this product")
	}
	parts = append(parts, sf.StatusNotes)
	parts = slices.DeleteFunc(parts, func(s string) bool { return strings.TrimSpace(s) == "" })
	return strings.Join(parts, "; ")
}

func (pf *vexProductFile) parse() (product, error) {
	var p product
	var err error
	if p.purls, err = pf.vexComponentFile.purls(); err != nil {
		return p, err
	}
	for i, sc := range pf.Subcomponents {
		purls, err := sc.purls()
		if err != nil {
			return p, fmt.Errorf("subcomponents[%d]: %w", i, err)
		}
		if len(purls) == 0 {
			return p, fmt.Errorf("subcomponents[%d] has no purl; mamori matches subcomponents by purl only", i)
		}
		p.subs = append(p.subs, purls)
	}
	return p, nil
}

// purls returns the component's package URLs: its @id when that is a purl
// and identifiers.purl.
func (c *vexComponentFile) purls() ([]*packageurl.PackageURL, error) {
	var out []*packageurl.PackageURL
	for _, s := range []struct{ field, value string }{{"@id", c.ID}, {"identifiers.purl", c.Identifiers["purl"]}} {
		if s.value == "" || (s.field == "@id" && !strings.HasPrefix(s.value, "pkg:")) {
			continue
		}
		u, err := packageurl.FromString(s.value)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not a valid purl: %v", s.field, s.value, err)
		}
		out = append(out, &u)
	}
	return out, nil
}

// appliesTo reports whether the statement is about the finding.
func (st *statement) appliesTo(f *vuln.Finding, t *target) bool {
	if !slices.ContainsFunc(st.vulns, f.HasID) {
		return false
	}
	return slices.ContainsFunc(st.products, func(p product) bool { return p.covers(f, t) })
}

// covers reports whether a product names the finding's package. Without
// subcomponents the product must be the image or the package itself. With
// subcomponents the package must be one of them, inside the product: the
// product is the image, or a package read from the same file (a Go binary's
// main module, an application jar).
func (p *product) covers(f *vuln.Finding, t *target) bool {
	anyOf := func(purls []*packageurl.PackageURL, match func(*packageurl.PackageURL) bool) bool {
		return slices.ContainsFunc(purls, match)
	}
	isImage := anyOf(p.purls, t.image.matches)
	pkg := t.purl(f.Package.PURL)
	if len(p.subs) == 0 {
		return isImage || pkg != nil && anyOf(p.purls, func(u *packageurl.PackageURL) bool { return purlMatches(u, pkg) })
	}
	if pkg == nil || !slices.ContainsFunc(p.subs, func(sub []*packageurl.PackageURL) bool {
		return anyOf(sub, func(u *packageurl.PackageURL) bool { return purlMatches(u, pkg) })
	}) {
		return false
	}
	if isImage {
		return true
	}
	for _, s := range t.byPath[f.Package.Path] {
		if q := t.purl(s); q != nil && anyOf(p.purls, func(u *packageurl.PackageURL) bool { return purlMatches(u, q) }) {
			return true
		}
	}
	return false
}
