package suppress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// MaxIgnoreSize is the largest ignore file LoadIgnore reads.
const MaxIgnoreSize = 1 << 20

// IgnoreFile is a parsed ignore file: rules that each suppress the findings
// of one vulnerability, optionally narrowed to a package, a package type or
// the paths a glob matches.
type IgnoreFile struct {
	// Path names the file in suppressions, warnings and errors.
	Path  string
	rules []ignoreRule
}

type ignoreRule struct {
	index   int // 1-based position in the file
	id      string
	pkg     string
	typ     string
	path    glob
	reason  string
	expires *time.Time
}

var ignoreKeys = []string{"id", "package", "type", "path", "reason", "expires"}

// The rule as written; expires stays a string so that both a YAML
// timestamp and a quoted date are read the same way.
type ignoreRuleFile struct {
	ID      string `yaml:"id"`
	Package string `yaml:"package"`
	Type    string `yaml:"type"`
	Path    string `yaml:"path"`
	Reason  string `yaml:"reason"`
	Expires string `yaml:"expires"`
}

// LoadIgnore reads and validates the ignore file at path.
func LoadIgnore(path string) (*IgnoreFile, error) {
	data, err := readFile("ignore file", path, MaxIgnoreSize)
	if err != nil {
		return nil, err
	}
	return ParseIgnore(path, data)
}

// readFile reads a suppression file of at most limit bytes; what names the
// kind of file in errors.
func readFile(what, path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(f, limit)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return data, nil
}

// ParseIgnore validates an ignore file's contents; name is used in
// suppressions, warnings and error messages.
func ParseIgnore(name string, data []byte) (*IgnoreFile, error) {
	rules, err := parseIgnore(data)
	if err != nil {
		return nil, fmt.Errorf("ignore file %s: %w", name, err)
	}
	return &IgnoreFile{Path: name, rules: rules}, nil
}

func parseIgnore(data []byte) ([]ignoreRule, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file ignores nothing
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("file holds more than one YAML document")
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: the file must be a list of rules, each with an id and a reason", root.Line)
	}
	rules := make([]ignoreRule, 0, len(root.Content))
	for i, n := range root.Content {
		r, err := parseIgnoreRule(n)
		if err != nil {
			return nil, fmt.Errorf("rule %d (line %d): %w", i+1, n.Line, err)
		}
		r.index = i + 1
		rules = append(rules, r)
	}
	return rules, nil
}

func parseIgnoreRule(n *yaml.Node) (ignoreRule, error) {
	if n.Kind != yaml.MappingNode {
		return ignoreRule{}, errors.New("a rule must be a mapping with id and reason")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(ignoreKeys, k.Value) {
			return ignoreRule{}, fmt.Errorf("unknown key %q at line %d (known keys: %s)", k.Value, k.Line, strings.Join(ignoreKeys, ", "))
		}
	}
	var rf ignoreRuleFile
	if err := n.Decode(&rf); err != nil {
		return ignoreRule{}, yamlError(err)
	}
	r := ignoreRule{
		id:     strings.TrimSpace(rf.ID),
		pkg:    strings.TrimSpace(rf.Package),
		typ:    strings.TrimSpace(rf.Type),
		reason: strings.TrimSpace(rf.Reason),
	}
	if r.id == "" {
		return r, errors.New("id is missing: name the vulnerability (CVE, GHSA, GO, ...)")
	}
	if strings.ContainsAny(r.id, " \t\n") {
		return r, fmt.Errorf("id %q is not a vulnerability ID", rf.ID)
	}
	if r.reason == "" {
		return r, errors.New("reason is missing: say why the finding may be ignored")
	}
	if rf.Path != "" {
		g, err := compileGlob(rf.Path)
		if err != nil {
			return r, err
		}
		r.path = g
	}
	if rf.Expires != "" {
		t, err := parseExpiry(rf.Expires)
		if err != nil {
			return r, err
		}
		r.expires = &t
	}
	return r, nil
}

// parseExpiry reads an RFC 3339 date ("2025-06-30", midnight UTC) or date
// and time.
func parseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("expires %q is not an RFC 3339 date (2025-06-30) or date and time (2025-06-30T12:00:00Z)", s)
}

// formatExpiry prints an expiry as it was most likely written.
func formatExpiry(t time.Time) string {
	if t.Location() == time.UTC && t.Equal(t.Truncate(24*time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// yamlError flattens yaml.v3's multi-line type errors into one line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// expired reports whether the rule no longer applies at now.
func (r *ignoreRule) expired(now time.Time) bool {
	return r.expires != nil && !now.Before(*r.expires)
}

// matches reports whether the rule covers the finding. The package matches
// the package's name or its source package's name.
func (r *ignoreRule) matches(f *vuln.Finding) bool {
	if !f.HasID(r.id) {
		return false
	}
	if r.pkg != "" && r.pkg != f.Package.Name && r.pkg != f.Package.SourceName {
		return false
	}
	if r.typ != "" && r.typ != f.Package.Type {
		return false
	}
	return r.path == nil || r.path.match(f.Package.Path)
}

// suppression returns the first live rule of the file that covers f.
func (fl *IgnoreFile) suppression(f *vuln.Finding, now time.Time) *vuln.Suppression {
	for i := range fl.rules {
		r := &fl.rules[i]
		if r.expired(now) || !r.matches(f) {
			continue
		}
		return &vuln.Suppression{Kind: "ignore", Source: fl.Path, Justification: r.reason, Expires: r.expires}
	}
	return nil
}

// warnings names the file's expired rules.
func (fl *IgnoreFile) warnings(now time.Time) []string {
	var out []string
	for i := range fl.rules {
		r := &fl.rules[i]
		if r.expired(now) {
			out = append(out, fmt.Sprintf("ignore file %s: rule %d (%s) expired on %s and no longer applies",
				fl.Path, r.index, r.id, formatExpiry(*r.expires)))
		}
	}
	return out
}
