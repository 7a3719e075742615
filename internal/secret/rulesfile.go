package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/inventory"
)

// maxRulesFileSize bounds the custom rules file.
const maxRulesFileSize = 4 << 20

// RulesFile is the custom rules file: extra rules, built-in rules to
// disable and extra allowlists.
type RulesFile struct {
	// Rules are added after the built-in rules.
	Rules []RuleSpec `yaml:"rules"`
	// DisableRules lists built-in rule IDs to turn off.
	DisableRules []string `yaml:"disableRules"`
	// AllowPaths are regular expressions; files whose absolute path
	// matches are not scanned.
	AllowPaths []string `yaml:"allowPaths"`
	// AllowRegexes are regular expressions; a match whose secret or whole
	// text matches one is dropped.
	AllowRegexes []string `yaml:"allowRegexes"`
}

// RuleSpec is one custom rule as written in the rules file.
type RuleSpec struct {
	// ID names the rule; required, unique, not a built-in ID.
	ID string `yaml:"id"`
	// Title describes the finding; the ID when empty.
	Title string `yaml:"title"`
	// Severity is CRITICAL, HIGH, MEDIUM (the default) or LOW.
	Severity string `yaml:"severity"`
	// Category is the provider; "Custom" when empty.
	Category string `yaml:"category"`
	// Keywords gate the regex (case-insensitive); at least one.
	Keywords []string `yaml:"keywords"`
	// Regex is an RE2 regular expression.
	Regex string `yaml:"regex"`
	// SecretGroup is the capture group holding the secret (0: the match).
	SecretGroup int `yaml:"secretGroup"`
	// Entropy is the secret's minimum entropy in bits per byte (0: off).
	Entropy float64 `yaml:"entropy"`
	// Path, when set, is a regex the file's path must match.
	Path string `yaml:"path"`
}

// LoadRulesFile reads and parses a custom rules file.
func LoadRulesFile(name string) (*RulesFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("secret rules file: %w", err)
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(f, maxRulesFileSize)
	if err != nil {
		return nil, fmt.Errorf("secret rules file %s: %w", name, err)
	}
	rf, err := ParseRulesFile(data)
	if err != nil {
		return nil, fmt.Errorf("secret rules file %s: %w", name, err)
	}
	return rf, nil
}

// ParseRulesFile parses the YAML of a custom rules file. Unknown fields
// are errors, so a misspelt setting is not silently ignored.
func ParseRulesFile(data []byte) (*RulesFile, error) {
	var rf RulesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	return &rf, nil
}

// apply adds rf's rules, disables its built-in rule IDs and adds its
// allowlists, checking every entry.
func (s *Scanner) apply(rf *RulesFile) error {
	builtin := map[string]bool{}
	for _, r := range s.rules {
		builtin[r.ID] = true
	}
	disabled := map[string]bool{}
	for _, id := range rf.DisableRules {
		if !builtin[id] {
			return fmt.Errorf("disableRules: %q is not a built-in rule ID", id)
		}
		disabled[id] = true
	}
	kept := s.rules[:0]
	for _, r := range s.rules {
		if !disabled[r.ID] {
			kept = append(kept, r)
		}
	}
	s.rules = kept
	ids := map[string]bool{}
	for i, spec := range rf.Rules {
		r, err := spec.compile()
		if err != nil {
			return fmt.Errorf("rule %q (rules[%d]): %w", spec.ID, i, err)
		}
		if builtin[r.ID] || ids[r.ID] {
			return fmt.Errorf("rule %q (rules[%d]): duplicate rule ID", spec.ID, i)
		}
		ids[r.ID] = true
		s.rules = append(s.rules, r)
	}
	for i, p := range rf.AllowPaths {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("allowPaths[%d]: %w", i, err)
		}
		s.allowPaths = append(s.allowPaths, re)
	}
	for i, p := range rf.AllowRegexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("allowRegexes[%d]: %w", i, err)
		}
		s.allowValues = append(s.allowValues, re)
	}
	return nil
}

// compile checks a rule spec and builds the rule.
func (spec RuleSpec) compile() (*Rule, error) {
	if spec.ID == "" {
		return nil, errors.New("missing id")
	}
	if strings.ContainsAny(spec.ID, " \t\r\n") {
		return nil, errors.New("id must not contain spaces")
	}
	sev := strings.ToUpper(spec.Severity)
	switch sev {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
	case "":
		sev = SeverityMedium
	default:
		return nil, fmt.Errorf("severity %q is not CRITICAL, HIGH, MEDIUM or LOW", spec.Severity)
	}
	if len(spec.Keywords) == 0 {
		return nil, errors.New("keywords: at least one keyword is needed (the regex runs only on lines that hold one)")
	}
	kws := make([]string, len(spec.Keywords))
	for i, kw := range spec.Keywords {
		if kw == "" {
			return nil, fmt.Errorf("keywords[%d] is empty", i)
		}
		kws[i] = strings.ToLower(kw)
	}
	if spec.Regex == "" {
		return nil, errors.New("missing regex")
	}
	re, err := regexp.Compile(spec.Regex)
	if err != nil {
		return nil, fmt.Errorf("regex: %w", err)
	}
	if spec.SecretGroup < 0 || spec.SecretGroup > re.NumSubexp() {
		return nil, fmt.Errorf("secretGroup %d: the regex has %d groups", spec.SecretGroup, re.NumSubexp())
	}
	if spec.Entropy < 0 || spec.Entropy > 8 {
		return nil, fmt.Errorf("entropy %g is outside 0..8 bits per byte", spec.Entropy)
	}
	r := &Rule{
		ID: spec.ID, Title: spec.Title, Severity: sev, Category: spec.Category,
		Keywords: kws, Regex: re, SecretGroup: spec.SecretGroup, Entropy: spec.Entropy,
		before: customContext, after: customContext,
	}
	if r.Title == "" {
		r.Title = spec.ID
	}
	if r.Category == "" {
		r.Category = "Custom"
	}
	if spec.Path != "" {
		if r.Path, err = regexp.Compile(spec.Path); err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
	}
	return r, nil
}
