package assurance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/signature"
	"github.com/mamorisec/mamori/internal/vuln"
)

// The apiVersion and kind every policy file declares.
const (
	APIVersion = "mamori.dev/v1"
	Kind       = "AssurancePolicy"
)

// MaxPolicySize is the largest policy file Load reads.
const MaxPolicySize = 1 << 20

// Policy is a parsed, validated assurance policy. The zero value of every
// control means "not checked", so a new control can be added to Controls
// without changing how existing policy files are read.
type Policy struct {
	// Name identifies the policy in verdicts.
	Name string `json:"name"`
	// Description is free text for people reading the policy.
	Description string `json:"description,omitempty"`
	// Scopes are the console's application scopes whose images the policy
	// judges; empty means every image. mamori scan, which judges one
	// image by the policy it is given, ignores them.
	Scopes []string `json:"scopes,omitempty"`
	// Disabled policies judge no image (the console's enable/disable
	// switch); a policy file is enabled unless it says `enabled: false`.
	Disabled bool `json:"disabled,omitempty"`
	// Mode is ModeEnforce (a failing verdict fails the image: the CI gate
	// exits non-zero, admission denies) or ModeAudit (the verdict is
	// recorded and shown, but nothing is failed or blocked).
	Mode string `json:"mode"`
	// EnforceFrom, when set on an audit-mode policy, is the scheduled
	// change to enforce mode: from that time on the policy enforces.
	EnforceFrom time.Time `json:"enforceFrom,omitzero"`
	// Controls are the checks the image must pass.
	Controls Controls `json:"controls"`
}

// Policy modes.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
)

// EffectiveMode returns the policy's mode at now, with its scheduled
// change to enforce mode applied.
func (p *Policy) EffectiveMode(now time.Time) string {
	if p.Mode == ModeAudit && !p.EnforceFrom.IsZero() && !now.Before(p.EnforceFrom) {
		return ModeEnforce
	}
	if p.Mode == "" {
		return ModeEnforce
	}
	return p.Mode
}

// Controls are the checks of a policy; docs/assurance.md defines each.
type Controls struct {
	// MaxSeverity fails the image when a counting finding is rated at or
	// above it. Nil means not checked.
	MaxSeverity *vuln.Severity `json:"max_severity,omitempty"`
	// MaxCVSSScore fails the image when a counting finding has a CVSS base
	// score strictly greater than it. Nil means not checked.
	MaxCVSSScore *float64 `json:"max_cvss_score,omitempty"`
	// SeverityCounts is the largest number of counting findings allowed
	// per severity rating. Ratings that are absent are not limited.
	SeverityCounts map[vuln.Severity]int `json:"severity_counts,omitempty"`
	// FixableOnly restricts MaxSeverity, MaxCVSSScore and SeverityCounts to
	// findings that have a fixed version.
	FixableOnly bool `json:"fixable_only,omitempty"`
	// BlockCVEs fails the image when a finding has one of these IDs or
	// aliases, whether or not it is fixable.
	BlockCVEs []string `json:"block_cves,omitempty"`
	// BlockPackages fails the image when it contains a listed package.
	BlockPackages []PackageRule `json:"block_packages,omitempty"`
	// IgnoreUnreachable stops findings whose vulnerable code is known not
	// to be reachable (Go binaries) from counting for any control.
	IgnoreUnreachable bool `json:"ignore_unreachable,omitempty"`
	// DisallowMalware fails the image when any malware is found, by any
	// engine, including known-malicious packages (OSV MAL- records).
	DisallowMalware bool `json:"disallow_malware,omitempty"`
	// DisallowSecrets fails the image when a secret is found, in a file of
	// any layer or in the image configuration.
	DisallowSecrets bool `json:"disallow_secrets,omitempty"`
	// DisallowRoot fails the image when its configuration makes containers
	// run as root (no USER, or USER root/0).
	DisallowRoot bool `json:"disallow_root,omitempty"`
	// BlockMisconfigurations fails the image when a misconfiguration check
	// with one of these IDs (mamori's check ID or a CIS ID such as
	// "CIS-4.1") fails.
	BlockMisconfigurations []string `json:"block_misconfigurations,omitempty"`
	// Licenses are the license controls.
	Licenses LicenseControls `json:"licenses,omitzero"`
	// MaxImageAge fails the image when it was created longer ago than
	// this (from its configuration's created time). Zero means not
	// checked.
	MaxImageAge Duration `json:"max_image_age,omitempty"`
	// TrustedBaseImages fails the image when it is not built on one of
	// them: none's layers are the first layers of the image.
	TrustedBaseImages []BaseImage `json:"trusted_base_images,omitempty"`
	// RequiredLabels fails the image when a label is missing or its value
	// does not match the pattern ("" accepts any value; "*" matches any
	// run of characters).
	RequiredLabels map[string]string `json:"required_labels,omitempty"`
	// SignatureRequired fails the image unless it has a valid cosign
	// signature by one of its keys. Nil means not checked.
	SignatureRequired *SignatureControl `json:"signature_required,omitempty"`
}

// LicenseControls restrict the licenses of an image's packages. A package
// whose license expression offers a choice (A OR B) passes when any choice
// passes.
type LicenseControls struct {
	// Allowed, when set, is the only SPDX license IDs allowed; other IDs
	// fail. Entries may end in "*" to match a prefix ("BSD-*").
	Allowed []string `json:"allowed,omitempty"`
	// Forbidden are SPDX license IDs (or prefixes ending in "*") that fail.
	Forbidden []string `json:"forbidden,omitempty"`
	// ForbiddenCategories are license categories that fail
	// ("strong-copyleft", "forbidden", "unknown", ...).
	ForbiddenCategories []string `json:"forbidden_categories,omitempty"`
}

// empty reports whether no license control is set.
func (l *LicenseControls) empty() bool {
	return len(l.Allowed) == 0 && len(l.Forbidden) == 0 && len(l.ForbiddenCategories) == 0
}

// PackageRule names packages that must not be in an image.
type PackageRule struct {
	// Name is the package name. For Maven a name without ":" matches the
	// artifactId of any group; PyPI names are compared normalized.
	Name string `json:"name"`
	// Type restricts the rule to one package type ("maven", "npm", ...);
	// empty matches every type.
	Type string `json:"type,omitempty"`
	// Versions lists the blocked versions exactly as installed; empty
	// blocks every version.
	Versions []string `json:"versions,omitempty"`
}

// empty reports whether no control is set.
func (c *Controls) empty() bool {
	return c.MaxSeverity == nil && c.MaxCVSSScore == nil && len(c.SeverityCounts) == 0 &&
		len(c.BlockCVEs) == 0 && len(c.BlockPackages) == 0 && !c.DisallowMalware && !c.DisallowSecrets &&
		!c.DisallowRoot && len(c.BlockMisconfigurations) == 0 && c.Licenses.empty() &&
		c.MaxImageAge == 0 && len(c.TrustedBaseImages) == 0 && len(c.RequiredLabels) == 0 && c.SignatureRequired == nil
}

// The file's shape. Scalars are read as strings where mamori parses them
// itself, so that "max_severity: 3" is an error instead of a number.
type policyFile struct {
	APIVersion  string       `yaml:"apiVersion"`
	Kind        string       `yaml:"kind"`
	Name        string       `yaml:"name"`
	Description string       `yaml:"description"`
	Scopes      []string     `yaml:"scopes"`
	Enabled     *bool        `yaml:"enabled"`
	Mode        string       `yaml:"mode"`
	EnforceFrom string       `yaml:"enforce_from"`
	Controls    controlsFile `yaml:"controls"`
}

type controlsFile struct {
	MaxSeverity       *string           `yaml:"max_severity"`
	MaxCVSSScore      *float64          `yaml:"max_cvss_score"`
	SeverityCounts    map[string]int    `yaml:"severity_counts"`
	FixableOnly       bool              `yaml:"fixable_only"`
	BlockCVEs         []string          `yaml:"block_cves"`
	BlockPackages     []packageRuleFile `yaml:"block_packages"`
	IgnoreUnreachable bool              `yaml:"ignore_unreachable"`
	DisallowMalware   bool              `yaml:"disallow_malware"`
	DisallowSecrets   bool              `yaml:"disallow_secrets"`
	DisallowRoot      bool              `yaml:"disallow_root"`
	BlockMisconfigs   []string          `yaml:"block_misconfigurations"`
	Licenses          licensesFile      `yaml:"licenses"`
	MaxImageAge       *string           `yaml:"max_image_age"`
	TrustedBaseImages []baseImageFile   `yaml:"trusted_base_images"`
	RequiredLabels    map[string]string `yaml:"required_labels"`
	SignatureRequired *signatureFile    `yaml:"signature_required"`
}

type baseImageFile struct {
	Name   string   `yaml:"name"`
	Layers []string `yaml:"layers"`
}

type signatureFile struct {
	Keys       []string `yaml:"keys"`
	Identities []string `yaml:"identities"`
}

type licensesFile struct {
	Allowed             []string `yaml:"allowed"`
	Forbidden           []string `yaml:"forbidden"`
	ForbiddenCategories []string `yaml:"forbidden_categories"`
}

type packageRuleFile struct {
	Name     string   `yaml:"name"`
	Type     string   `yaml:"type"`
	Versions []string `yaml:"versions"`
}

// The keys each mapping of the file accepts, for error messages that name
// the unknown key.
var (
	topKeys     = []string{"apiVersion", "kind", "name", "description", "scopes", "enabled", "mode", "enforce_from", "controls"}
	controlKeys = []string{"max_severity", "max_cvss_score", "severity_counts", "fixable_only", "block_cves", "block_packages", "ignore_unreachable",
		"disallow_malware", "disallow_secrets", "disallow_root", "block_misconfigurations", "licenses",
		"max_image_age", "trusted_base_images", "required_labels", "signature_required"}
	blockPkgKeys  = []string{"name", "type", "versions"}
	licenseKeys   = []string{"allowed", "forbidden", "forbidden_categories"}
	baseImageKeys = []string{"name", "layers"}
	signatureKeys = []string{"keys", "identities"}
)

// packageTypes are the package types a block_packages rule may name.
var packageTypes = []string{
	inventory.TypeAPK, inventory.TypeCargo, inventory.TypeComposer, inventory.TypeDeb,
	inventory.TypeGem, inventory.TypeGolang, inventory.TypeMaven, inventory.TypeNPM,
	inventory.TypeNuGet, inventory.TypePyPI, inventory.TypeRPM,
}

// Load reads and validates the policy file at path. Public key files named
// by signature_required are read relative to the policy file's directory.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("assurance policy: %w", err)
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(f, MaxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("assurance policy %s: %w", path, err)
	}
	readKey := func(file string) ([]byte, error) {
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(path), file)
		}
		kf, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer kf.Close()
		return inventory.ReadAllLimited(kf, signature.MaxKeySize)
	}
	p, err := parse(data, readKey)
	if err != nil {
		return nil, fmt.Errorf("assurance policy %s: %w", path, err)
	}
	return p, nil
}

// Parse validates a policy file's contents. name is the file name used in
// error messages. Parse reads no file: signature_required keys must be
// PEM text, not file names (the server parses policies it receives).
func Parse(name string, data []byte) (*Policy, error) {
	p, err := parse(data, nil)
	if err != nil {
		return nil, fmt.Errorf("assurance policy %s: %w", name, err)
	}
	return p, nil
}

// parse parses a policy; readKey reads a public key file, or is nil when
// key files are not allowed.
func parse(data []byte, readKey func(string) ([]byte, error)) (*Policy, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("file is empty")
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("file holds more than one YAML document")
	}
	if err := checkShape(&doc); err != nil {
		return nil, err
	}
	var pf policyFile
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&pf); err != nil {
		return nil, yamlError(err)
	}
	return pf.validate(readKey)
}

// parseWhen reads an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC).
func parseWhen(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-12-31) nor an RFC 3339 time", v)
	}
	return t, nil
}

// checkShape rejects unknown keys with a message that names the key, its
// line and the keys that are allowed there.
func checkShape(doc *yaml.Node) error {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the policy must be a mapping with apiVersion, kind, name and controls", root.Line)
	}
	if err := checkKeys(root, "the policy", topKeys); err != nil {
		return err
	}
	controls := mapValue(root, "controls")
	if controls == nil || controls.Kind != yaml.MappingNode {
		return nil // reported by validate or by the decoder
	}
	if err := checkKeys(controls, "controls", controlKeys); err != nil {
		return err
	}
	if lc := mapValue(controls, "licenses"); lc != nil && lc.Kind == yaml.MappingNode {
		if err := checkKeys(lc, "licenses", licenseKeys); err != nil {
			return err
		}
	}
	if err := checkListKeys(controls, "block_packages", blockPkgKeys); err != nil {
		return err
	}
	if err := checkListKeys(controls, "trusted_base_images", baseImageKeys); err != nil {
		return err
	}
	if sr := mapValue(controls, "signature_required"); sr != nil && sr.Kind == yaml.MappingNode {
		if err := checkKeys(sr, "signature_required", signatureKeys); err != nil {
			return err
		}
	}
	return nil
}

// checkListKeys checks the keys of each mapping in the list under key.
func checkListKeys(controls *yaml.Node, key string, known []string) error {
	list := mapValue(controls, key)
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	for i, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		if err := checkKeys(item, fmt.Sprintf("%s[%d]", key, i), known); err != nil {
			return err
		}
	}
	return nil
}

func checkKeys(m *yaml.Node, where string, known []string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: unknown key %q in %s (known keys: %s)", k.Line, k.Value, where, strings.Join(known, ", "))
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// yamlError flattens yaml.v3's multi-line type errors into one line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

func (pf *policyFile) validate(readKey func(string) ([]byte, error)) (*Policy, error) {
	if pf.APIVersion != APIVersion {
		return nil, fmt.Errorf("apiVersion is %q, want %q", pf.APIVersion, APIVersion)
	}
	if pf.Kind != Kind {
		return nil, fmt.Errorf("kind is %q, want %q", pf.Kind, Kind)
	}
	p := &Policy{Name: strings.TrimSpace(pf.Name), Description: pf.Description}
	if p.Name == "" {
		return nil, errors.New("name is missing")
	}
	for i, sc := range pf.Scopes {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			return nil, fmt.Errorf("scopes[%d] is empty", i)
		}
		p.Scopes = append(p.Scopes, sc)
	}
	p.Disabled = pf.Enabled != nil && !*pf.Enabled
	switch pf.Mode {
	case "", ModeEnforce:
		p.Mode = ModeEnforce
	case ModeAudit:
		p.Mode = ModeAudit
	default:
		return nil, fmt.Errorf("mode is %q, want %q or %q", pf.Mode, ModeEnforce, ModeAudit)
	}
	if pf.EnforceFrom != "" {
		if p.Mode != ModeAudit {
			return nil, fmt.Errorf("enforce_from %q: only an audit-mode policy can be scheduled to enforce", pf.EnforceFrom)
		}
		t, err := parseWhen(pf.EnforceFrom)
		if err != nil {
			return nil, fmt.Errorf("enforce_from: %w", err)
		}
		p.EnforceFrom = t
	}
	c, err := pf.Controls.validate(readKey)
	if err != nil {
		return nil, fmt.Errorf("controls: %w", err)
	}
	p.Controls = c
	if c.empty() {
		return nil, errors.New("controls: no control is set, so the policy would pass every image")
	}
	return p, nil
}

func (cf *controlsFile) validate(readKey func(string) ([]byte, error)) (Controls, error) {
	c := Controls{FixableOnly: cf.FixableOnly, IgnoreUnreachable: cf.IgnoreUnreachable,
		DisallowMalware: cf.DisallowMalware, DisallowSecrets: cf.DisallowSecrets, DisallowRoot: cf.DisallowRoot}
	for i, id := range cf.BlockMisconfigs {
		id = strings.TrimSpace(id)
		if id == "" || strings.ContainsAny(id, " \t\n") {
			return c, fmt.Errorf("block_misconfigurations[%d]: %q is not a check ID", i, cf.BlockMisconfigs[i])
		}
		c.BlockMisconfigurations = append(c.BlockMisconfigurations, id)
	}
	lic, err := cf.Licenses.validate()
	if err != nil {
		return c, fmt.Errorf("licenses: %w", err)
	}
	c.Licenses = lic
	if cf.MaxSeverity != nil {
		s, err := parseSeverity(*cf.MaxSeverity)
		if err != nil {
			return c, fmt.Errorf("max_severity: %w", err)
		}
		c.MaxSeverity = &s
	}
	if cf.MaxCVSSScore != nil {
		v := *cf.MaxCVSSScore
		if math.IsNaN(v) || v < 0 || v > 10 {
			return c, fmt.Errorf("max_cvss_score: %v is not a CVSS score from 0 to 10", v)
		}
		c.MaxCVSSScore = &v
	}
	if len(cf.SeverityCounts) > 0 {
		c.SeverityCounts = make(map[vuln.Severity]int, len(cf.SeverityCounts))
		keys := make([]string, 0, len(cf.SeverityCounts))
		for k := range cf.SeverityCounts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			n := cf.SeverityCounts[k]
			s, err := parseSeverity(k)
			if err != nil {
				return c, fmt.Errorf("severity_counts: %w", err)
			}
			if _, dup := c.SeverityCounts[s]; dup {
				return c, fmt.Errorf("severity_counts: %s is given twice (%q is another name for it)", s, k)
			}
			if n < 0 {
				return c, fmt.Errorf("severity_counts: %s: count %d is negative", s, n)
			}
			c.SeverityCounts[s] = n
		}
	}
	for i, id := range cf.BlockCVEs {
		id = strings.TrimSpace(id)
		if id == "" || strings.ContainsAny(id, " \t\n") {
			return c, fmt.Errorf("block_cves[%d]: %q is not a vulnerability ID", i, cf.BlockCVEs[i])
		}
		c.BlockCVEs = append(c.BlockCVEs, id)
	}
	for i, r := range cf.BlockPackages {
		rule := PackageRule{Name: strings.TrimSpace(r.Name), Type: strings.TrimSpace(r.Type)}
		if rule.Name == "" {
			return c, fmt.Errorf("block_packages[%d]: name is missing", i)
		}
		if rule.Type != "" && !slices.Contains(packageTypes, rule.Type) {
			return c, fmt.Errorf("block_packages[%d]: unknown package type %q (known types: %s)", i, rule.Type, strings.Join(packageTypes, ", "))
		}
		for j, v := range r.Versions {
			v = strings.TrimSpace(v)
			if v == "" {
				return c, fmt.Errorf("block_packages[%d]: versions[%d] is empty", i, j)
			}
			rule.Versions = append(rule.Versions, v)
		}
		c.BlockPackages = append(c.BlockPackages, rule)
	}
	if err := cf.validateImage(&c, readKey); err != nil {
		return c, err
	}
	return c, nil
}

// validateImage validates the controls on the image itself: age, base
// image, labels and signature.
func (cf *controlsFile) validateImage(c *Controls, readKey func(string) ([]byte, error)) error {
	if cf.MaxImageAge != nil {
		d, err := ParseDuration(*cf.MaxImageAge)
		if err != nil {
			return fmt.Errorf("max_image_age: %w", err)
		}
		c.MaxImageAge = d
	}
	for i, b := range cf.TrustedBaseImages {
		base := BaseImage{Name: strings.TrimSpace(b.Name), Layers: b.Layers}
		if base.Name == "" || strings.ContainsAny(base.Name, " \t\n") {
			return fmt.Errorf("trusted_base_images[%d]: name %q is not an image reference", i, b.Name)
		}
		if err := checkDiffIDs(base.Layers); err != nil {
			return fmt.Errorf("trusted_base_images[%d] %s: %w", i, base.Name, err)
		}
		c.TrustedBaseImages = append(c.TrustedBaseImages, base)
	}
	if len(cf.RequiredLabels) > 0 {
		c.RequiredLabels = make(map[string]string, len(cf.RequiredLabels))
		for k, v := range cf.RequiredLabels {
			if strings.TrimSpace(k) == "" {
				return errors.New("required_labels: a label name is empty")
			}
			c.RequiredLabels[k] = v
		}
	}
	if sf := cf.SignatureRequired; sf != nil {
		sc, err := sf.validate(readKey)
		if err != nil {
			return fmt.Errorf("signature_required: %w", err)
		}
		c.SignatureRequired = sc
	}
	return nil
}

func (sf *signatureFile) validate(readKey func(string) ([]byte, error)) (*SignatureControl, error) {
	if len(sf.Keys) == 0 {
		return nil, errors.New("keys is missing: list at least one PEM public key")
	}
	sc := &SignatureControl{}
	for i, entry := range sf.Keys {
		data := []byte(entry)
		what := "key"
		if !strings.HasPrefix(strings.TrimSpace(entry), "-----BEGIN") {
			file := strings.TrimSpace(entry)
			if readKey == nil {
				return nil, fmt.Errorf("keys[%d]: %q is not a PEM public key (key files can only be named in a policy file read from disk)", i, file)
			}
			var err error
			if data, err = readKey(file); err != nil {
				return nil, fmt.Errorf("keys[%d]: key file %s: %w", i, file, err)
			}
			what = "key file " + file
		}
		k, err := signature.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %s: %w", i, what, err)
		}
		if j := slices.IndexFunc(sc.Keys, func(o *signature.PublicKey) bool { return o.ID == k.ID }); j >= 0 {
			return nil, fmt.Errorf("keys[%d] is the same key as keys[%d]", i, j)
		}
		sc.Keys = append(sc.Keys, k)
	}
	for i, id := range sf.Identities {
		if err := validIdentity(id); err != nil {
			return nil, fmt.Errorf("identities[%d]: %w", i, err)
		}
		sc.Identities = append(sc.Identities, id)
	}
	return sc, nil
}

// parseSeverity is vuln.ParseSeverity without its acceptance of "" as
// UNKNOWN: in a policy an empty rating is a mistake.
func parseSeverity(s string) (vuln.Severity, error) {
	if strings.TrimSpace(s) == "" {
		return vuln.SeverityUnknown, errors.New("severity is empty")
	}
	return vuln.ParseSeverity(s)
}

// LicenseCategories are the categories a license control may name; package
// license assigns them.
var LicenseCategories = []string{"permissive", "weak-copyleft", "strong-copyleft", "forbidden", "unknown"}

func (lf *licensesFile) validate() (LicenseControls, error) {
	var l LicenseControls
	ids := func(field string, in []string) ([]string, error) {
		var out []string
		for i, id := range in {
			id = strings.TrimSpace(id)
			if id == "" || strings.ContainsAny(id, " \t\n()") || strings.Count(id, "*") > 1 || (strings.Contains(id, "*") && !strings.HasSuffix(id, "*")) {
				return nil, fmt.Errorf("%s[%d]: %q is not an SPDX license ID or a prefix ending in \"*\"", field, i, in[i])
			}
			out = append(out, id)
		}
		return out, nil
	}
	var err error
	if l.Allowed, err = ids("allowed", lf.Allowed); err != nil {
		return l, err
	}
	if l.Forbidden, err = ids("forbidden", lf.Forbidden); err != nil {
		return l, err
	}
	for i, c := range lf.ForbiddenCategories {
		c = strings.TrimSpace(c)
		if !slices.Contains(LicenseCategories, c) {
			return l, fmt.Errorf("forbidden_categories[%d]: unknown category %q (known: %s)", i, lf.ForbiddenCategories[i], strings.Join(LicenseCategories, ", "))
		}
		l.ForbiddenCategories = append(l.ForbiddenCategories, c)
	}
	return l, nil
}
