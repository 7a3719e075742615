package inventory

import "errors"

// Finding kinds.
const (
	// KindSecret is a credential or other sensitive value.
	KindSecret = "secret"
	// KindMalware is a file or package known to be malicious.
	KindMalware = "malware"
	// KindLicense is a license text found in a file.
	KindLicense = "license"
	// KindMisconfig is a way the image is built that weakens it.
	KindMisconfig = "misconfiguration"
)

// Finding sources: where in the image a finding was seen.
const (
	SourceFile       = "file"
	SourceEnv        = "config:env"
	SourceLabel      = "config:label"
	SourceHistory    = "config:history"
	SourceConfig     = "config"
	SourceDockerfile = "dockerfile"
	SourcePackage    = "package"
)

// Finding is something found in an image that is not a package: a secret,
// malware, a license text or a misconfiguration. Content analyzers return
// them from Extract in Result.Findings; image-level checks build them from
// the image configuration.
type Finding struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// RuleID names the rule, signature or check that matched
	// ("aws-access-key-id", "Eicar-Signature", "MIT", "CIS-4.1").
	RuleID string `json:"ruleID"`
	// Title is a one-line human description.
	Title string `json:"title"`
	// Severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN.
	Severity string `json:"severity"`
	// Category groups rules (the secret's provider, the license category,
	// the malware family).
	Category string `json:"category,omitempty"`
	// Source is one of the Source constants.
	Source string `json:"source"`
	// Path is the file, for file findings; the ENV or label name for
	// config findings; the Dockerfile path for Dockerfile findings.
	Path string `json:"path,omitempty"`
	// Layer is the layer that holds the file or that the history entry
	// produced (set by the walk for file findings).
	Layer Layer `json:"layer"`
	// StartLine and EndLine locate text matches (1-based), 0 when unknown.
	StartLine int `json:"startLine,omitempty"`
	EndLine   int `json:"endLine,omitempty"`
	// Match is the matched text or line with every secret value redacted.
	// It must never hold a secret in clear.
	Match string `json:"match,omitempty"`
	// Engine names what found it ("builtin", "clamav", "osv", "licensecheck").
	Engine string `json:"engine,omitempty"`
	// Removed is set when a later layer deleted or replaced the file: the
	// bytes still ship in the image's lower layer.
	Removed bool `json:"removedInLaterLayer,omitempty"`
	// References are URLs that explain the finding or the check.
	References []string `json:"references,omitempty"`
	// Metadata holds kind-specific facts (a license match's coverage, a
	// CIS benchmark ID, a file digest).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Configured is implemented by extractors whose output depends on
// configuration beyond their version (custom rule files, signature
// databases). ConfigDigest is part of the per-layer cache key.
type Configured interface {
	ConfigDigest() string
}

// ErrUncacheable marks an extraction failure that says nothing about the
// file (an external engine timed out or went away). A layer with such a
// failure is not cached, so the next scan tries again.
var ErrUncacheable = errors.New("result must not be cached")
