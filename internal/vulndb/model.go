package vulndb

import (
	"strings"
	"time"
)

// SchemaVersion is the layout version of the database file. A file with
// another version is refused with a message to rebuild or update it.
const SchemaVersion = 1

// Record is the part of a vulnerability record that reports need. It is
// stored once per record ID.
type Record struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// Severity holds the record's CVSS vectors and vendor ratings.
	Severity []OSVSeverity `json:"severity,omitempty"`
	// DBSeverity is the advisory database's own rating, for example
	// GitHub's database_specific.severity.
	DBSeverity string   `json:"dbSeverity,omitempty"`
	URL        string   `json:"url,omitempty"`
	References []string `json:"references,omitempty"`
	Published  string   `json:"published,omitempty"`
	Modified   string   `json:"modified,omitempty"`
	// Source is the name of the source the record was imported from.
	Source string `json:"source"`
}

// Affected is one affected package of a record: the unit matching works
// on. Entries are stored under their base ecosystem and package name.
type Affected struct {
	// ID is the record's ID.
	ID string `json:"id"`
	// Ecosystem is the full OSV ecosystem, for example "Debian:12".
	Ecosystem string `json:"eco"`
	// Name is the package name as the record spells it.
	Name     string   `json:"name"`
	Ranges   []Range  `json:"ranges,omitempty"`
	Versions []string `json:"versions,omitempty"`
	// Status is empty (affected) or NotAffected or WontFix.
	Status string `json:"status,omitempty"`
	// Imports lists the vulnerable Go packages and symbols.
	Imports []Import `json:"imports,omitempty"`
	// Severity holds per-package ratings, for example Ubuntu's priority.
	Severity []OSVSeverity `json:"severity,omitempty"`
}

// Statuses of an Affected entry besides plain "affected".
const (
	NotAffected = "not-affected"
	WontFix     = "wont-fix"
)

// Range is an OSV range with its events in record order.
type Range struct {
	// Type is SEMVER or ECOSYSTEM.
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event kinds.
const (
	Introduced   = "introduced"
	Fixed        = "fixed"
	LastAffected = "last_affected"
	Limit        = "limit"
)

// Event is one range event.
type Event struct {
	Kind    string `json:"k"`
	Version string `json:"v"`
}

// Import is a vulnerable Go package and, when known, its vulnerable
// functions and methods ("Func", "Type.Method").
type Import struct {
	Path    string   `json:"path"`
	Symbols []string `json:"symbols,omitempty"`
}

// Info describes a database file.
type Info struct {
	Schema     int            `json:"schema"`
	Built      time.Time      `json:"built"`
	Records    int            `json:"records"`
	Affected   int            `json:"affected"`
	Ecosystems map[string]int `json:"ecosystems"`
	Sources    []SourceInfo   `json:"sources"`
}

// SourceInfo describes one source a database was built from.
type SourceInfo struct {
	Name string `json:"name"`
	// Origin is the URL or path the data came from.
	Origin string `json:"origin"`
	// SHA256 is the digest of the source file when it was one file.
	SHA256 string `json:"sha256,omitempty"`
	// Fetched is when the source was downloaded, if it was.
	Fetched   *time.Time `json:"fetched,omitempty"`
	Records   int        `json:"records"`
	Withdrawn int        `json:"withdrawn,omitempty"`
	// Skipped counts records or entries that could not be used;
	// Problems holds the first few reasons.
	Skipped  int      `json:"skipped,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Base returns the base of an OSV ecosystem: the part before the first
// colon, in its canonical spelling ("Debian:12" → "Debian").
func Base(ecosystem string) string {
	b, _, _ := strings.Cut(ecosystem, ":")
	if c, ok := canonical[strings.ToLower(b)]; ok {
		return c
	}
	return b
}

// canonical maps lower-case ecosystem bases to their OSV spelling. It is
// the list of ecosystems mamori imports and matches.
var canonical = map[string]string{}

func init() {
	for _, e := range Ecosystems() {
		canonical[strings.ToLower(e)] = e
	}
}

// Ecosystems returns the base ecosystems mamori imports and matches.
func Ecosystems() []string {
	return []string{
		"Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard",
		"Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE",
		"Go", "PyPI", "npm", "Maven", "RubyGems", "crates.io", "Packagist", "NuGet",
	}
}

// Known reports whether the base of ecosystem is one mamori matches.
func Known(ecosystem string) bool {
	_, ok := canonical[strings.ToLower(Base(ecosystem))]
	return ok
}

// NormalizeName returns the lookup form of a package name in a base
// ecosystem: PEP 503 for PyPI, lower case where the registry is
// case-insensitive, unchanged elsewhere.
func NormalizeName(base, name string) string {
	switch base {
	case "PyPI":
		var b strings.Builder
		sep := false
		for _, r := range strings.ToLower(name) {
			if r == '-' || r == '_' || r == '.' {
				sep = true
				continue
			}
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteRune(r)
		}
		return b.String()
	case "Packagist", "NuGet", "crates.io":
		return strings.ToLower(name)
	}
	return name
}

func key(base, name string) []byte {
	return []byte(base + "\x00" + NormalizeName(base, name))
}
