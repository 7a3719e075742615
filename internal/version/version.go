// Package version orders package versions under the version scheme of an
// OSV ecosystem: dpkg for Debian and Ubuntu, rpmvercmp for the RPM
// distributions, apk for Alpine and its relatives, PEP 440 for PyPI, the
// Maven, RubyGems, NuGet and Packagist rules, and semantic versioning for Go,
// npm and crates.io.
//
// The comparison itself is done by github.com/google/osv-scalibr/semantic,
// the library osv-scanner uses, so that mamori and osv-scanner agree on
// whether a version is inside an OSV range. This package adds what the
// matcher needs around it: ecosystem names with their release suffix
// ("Debian:12", "Ubuntu:22.04:LTS"), validation of versions the library
// would silently misorder, Go toolchain versions ("go1.21rc2"), and errors
// naming the ecosystem and the version. See
// docs/decisions/0005-version-comparison.md.
//
// OSV's "introduced": "0" means every version. "0" parses in every
// ecosystem and is lower than "1", but some versions sort below it (the
// semver prerelease 0.0.0-alpha, dpkg's 0~): the matcher should take
// "introduced": "0" as matching without comparing.
package version

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/osv-scalibr/semantic"
)

// MaxLen is the longest version string accepted, in bytes. Real versions
// are far shorter; the bound keeps the cost of a comparison bounded.
const MaxLen = 512

// ErrUnknownEcosystem is wrapped by the error Parse returns for an
// ecosystem whose version scheme this package does not know.
var ErrUnknownEcosystem = errors.New("unknown ecosystem")

// ParseError is the error returned for a version that cannot be parsed.
type ParseError struct {
	// Ecosystem is the ecosystem as given, for example "Debian:12".
	Ecosystem string
	// Version is the version string as given.
	Version string
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s version %q: %v", e.Ecosystem, e.Version, e.Err)
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// scheme is a version scheme: how versions are validated and normalised
// before semantic parses them.
type scheme int

const (
	schemeDpkg scheme = iota
	schemeRPM
	schemeAPK
	schemeGo
	schemeSemver
	schemeOther
)

// ecosystems maps the base name of an OSV ecosystem (the part before the
// first ':') to its scheme. The base names are those semantic.Parse knows.
var ecosystems = map[string]scheme{
	"Debian": schemeDpkg,
	"Ubuntu": schemeDpkg,

	"AlmaLinux":   schemeRPM,
	"Mageia":      schemeRPM,
	"openEuler":   schemeRPM,
	"openSUSE":    schemeRPM,
	"Red Hat":     schemeRPM,
	"Rocky Linux": schemeRPM,
	"SUSE":        schemeRPM,

	"Alpaquita":                    schemeAPK,
	"Alpine":                       schemeAPK,
	"BellSoft Hardened Containers": schemeAPK,
	"Chainguard":                   schemeAPK,
	"MinimOS":                      schemeAPK,
	"Wolfi":                        schemeAPK,

	"Go": schemeGo,

	"Bioconductor":           schemeSemver,
	"Bitnami":                schemeSemver,
	"ConanCenter":            schemeSemver,
	"crates.io":              schemeSemver,
	"Docker Hardened Images": schemeSemver,
	"GHC":                    schemeSemver,
	"Hex":                    schemeSemver,
	"Julia":                  schemeSemver,
	"npm":                    schemeSemver,
	"SwiftURL":               schemeSemver,

	"CRAN":      schemeOther,
	"Hackage":   schemeOther,
	"Maven":     schemeOther,
	"NuGet":     schemeOther,
	"Packagist": schemeOther,
	"Pub":       schemeOther,
	"PyPI":      schemeOther,
	"RubyGems":  schemeOther,
}

// baseName returns the ecosystem name without its release suffix:
// "Debian" for "Debian:12", "Ubuntu" for "Ubuntu:Pro:22.04:LTS".
func baseName(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

// Supported reports whether versions of the ecosystem can be compared.
func Supported(ecosystem string) bool {
	_, ok := ecosystems[baseName(ecosystem)]
	return ok
}

// Version is a version parsed under the scheme of one ecosystem. Parse the
// installed version once and compare it against many range events with
// Compare; the zero Version is not usable.
type Version struct {
	ecosystem string
	base      string
	scheme    scheme
	raw       string
	v         semantic.Version
	// apk is the token shape of an apk version (see apkShape).
	apk []byte
}

// Parse parses v under the version scheme of the OSV ecosystem, for example
// "Debian:12", "Alpine:v3.18", "Red Hat", "Go" or "PyPI". The suffix after
// the first ':' selects a release and does not change the scheme. The error
// is a *ParseError; it wraps ErrUnknownEcosystem when the ecosystem is not
// Supported.
func Parse(ecosystem, v string) (Version, error) {
	base := baseName(ecosystem)
	s, ok := ecosystems[base]
	if !ok {
		return Version{}, &ParseError{Ecosystem: ecosystem, Version: v, Err: ErrUnknownEcosystem}
	}
	norm, err := normalise(s, v)
	if err != nil {
		return Version{}, &ParseError{Ecosystem: ecosystem, Version: v, Err: err}
	}
	sv, err := semantic.Parse(norm, base)
	if err != nil {
		return Version{}, &ParseError{Ecosystem: ecosystem, Version: v, Err: err}
	}
	out := Version{ecosystem: ecosystem, base: base, scheme: s, raw: v, v: sv}
	if s == schemeAPK {
		out.apk = apkShape(norm)
	}
	return out, nil
}

// String returns the version as it was given to Parse.
func (v Version) String() string { return v.raw }

// Ecosystem returns the ecosystem as it was given to Parse.
func (v Version) Ecosystem() string { return v.ecosystem }

// Compare parses other under v's ecosystem and returns -1, 0 or +1 as v is
// lower than, equal to or higher than other.
func (v Version) Compare(other string) (int, error) {
	w, err := Parse(v.ecosystem, other)
	if err != nil {
		return 0, err
	}
	return v.CompareVersion(w)
}

// CompareVersion returns -1, 0 or +1 as v is lower than, equal to or higher
// than w. Both must have been parsed under the same ecosystem base name.
func (v Version) CompareVersion(w Version) (int, error) {
	if v.v == nil || w.v == nil {
		return 0, errors.New("comparing an unparsed version")
	}
	if v.base != w.base {
		return 0, fmt.Errorf("cannot compare %s version %q with %s version %q", v.ecosystem, v.raw, w.ecosystem, w.raw)
	}
	c, err := v.v.Compare(w.v)
	if err != nil {
		return 0, fmt.Errorf("comparing %s versions %q and %q: %w", v.ecosystem, v.raw, w.raw, err)
	}
	if c == 0 && v.scheme == schemeAPK {
		return compareAPKShapes(v.apk, w.apk), nil
	}
	return sign(c), nil
}

// Compare parses a and b under the ecosystem's scheme and returns -1, 0 or
// +1 as a is lower than, equal to or higher than b.
func Compare(ecosystem, a, b string) (int, error) {
	va, err := Parse(ecosystem, a)
	if err != nil {
		return 0, err
	}
	return va.Compare(b)
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return +1
	}
	return 0
}

// normalise checks v against the rules of scheme s and returns the string
// to hand to semantic.
func normalise(s scheme, v string) (string, error) {
	switch {
	case v == "":
		return "", errors.New("empty version")
	case len(v) > MaxLen:
		return "", fmt.Errorf("version longer than %d bytes", MaxLen)
	case !utf8.ValidString(v):
		return "", errors.New("version is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "", fmt.Errorf("version contains %q (whitespace or control character)", r)
		}
	}
	switch s {
	case schemeDpkg:
		return v, checkDpkg(v)
	case schemeRPM:
		return v, checkRPM(v)
	case schemeAPK:
		if !apkVersion.MatchString(v) {
			return "", errors.New("not an apk version (digits separated by dots, an optional letter, _alpha/_beta/_pre/_rc/_cvs/_svn/_git/_hg/_p suffixes, ~hash, -rN)")
		}
	case schemeGo:
		return normaliseGo(v)
	case schemeSemver:
		if !startsWithDigit(strings.TrimPrefix(v, "v")) {
			return "", errors.New("not a semantic version: it does not start with a digit")
		}
	}
	return v, nil
}

// apkVersion is the grammar apk-tools accepts (apk_version_validate).
var apkVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

// Token kinds of an apk version after its first number, in the order of
// apk-tools' token types: when two versions agree on every value, the one
// whose token sequence goes on with the higher kind (or ends, apkEnd) is
// the lower version.
const (
	apkDigit byte = iota + 1
	apkLetter
	apkSuffix
	apkSuffixNo
	apkHash
	apkRevision
	apkEnd
)

// apkShape returns the token kinds of a valid apk version after its first
// number.
//
// semantic pads missing numbers, suffix numbers and the -r revision with
// zeros, so it finds "1.0" equal to "1.0.0", "1.2.3" equal to "1.2.3-r0"
// and "1.0" equal to "1.0_cvs". apk-tools does not: it compares token by
// token, and a version that ends while the other goes on with a number, a
// post-release suffix or a revision is the lower one. compareAPKShapes
// applies that rule when semantic finds two versions equal.
func apkShape(v string) []byte {
	var shape []byte
	i := skip(v, 0, isDigit)
	for i < len(v) {
		switch c := v[i]; {
		case c == '.':
			shape = append(shape, apkDigit)
			i = skip(v, i+1, isDigit)
		case c == '_':
			shape = append(shape, apkSuffix)
			i = skip(v, i+1, func(c byte) bool { return c >= 'a' && c <= 'z' })
			if j := skip(v, i, isDigit); j > i {
				shape = append(shape, apkSuffixNo)
				i = j
			}
		case c == '~':
			shape = append(shape, apkHash)
			i = skip(v, i+1, isHex)
		case c == '-':
			shape = append(shape, apkRevision)
			i = skip(v, i+2, isDigit)
		default: // the letter after the numbers
			shape = append(shape, apkLetter)
			i++
		}
	}
	return shape
}

// compareAPKShapes orders two apk versions that agree on every value by
// the shapes of their token sequences.
func compareAPKShapes(a, b []byte) int {
	for i := range max(len(a), len(b)) {
		ka, kb := apkEnd, apkEnd
		if i < len(a) {
			ka = a[i]
		}
		if i < len(b) {
			kb = b[i]
		}
		switch {
		case ka > kb:
			return -1
		case ka < kb:
			return +1
		}
	}
	return 0
}

func skip(s string, i int, ok func(byte) bool) int {
	for i < len(s) && ok(s[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' }

// checkDpkg applies the checks of dpkg's parseversion, both those dpkg
// treats as errors and those it warns about: dpkg refuses to build or
// install a package whose version fails any of them.
func checkDpkg(v string) error {
	rest := v
	if epoch, after, ok := strings.Cut(v, ":"); ok {
		switch {
		case epoch == "":
			return errors.New("epoch in version is empty")
		case !allDigits(epoch):
			return errors.New("epoch in version is not a number")
		case len(epoch) > 9:
			return errors.New("epoch in version is too big")
		case after == "":
			return errors.New("nothing after colon in version number")
		}
		rest = after
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return errors.New("revision number is empty")
		}
	}
	switch {
	case upstream == "":
		return errors.New("version number is empty")
	case !startsWithDigit(upstream):
		return errors.New("version number does not start with digit")
	}
	for _, r := range upstream {
		if !isAlnum(r) && !strings.ContainsRune(".-+~:", r) {
			return fmt.Errorf("invalid character %q in version number", r)
		}
	}
	for _, r := range revision {
		if !isAlnum(r) && !strings.ContainsRune(".+~", r) {
			return fmt.Errorf("invalid character %q in revision number", r)
		}
	}
	return nil
}

// checkRPM checks the shape [epoch:]version[-release]. rpm accepts any
// characters, but rpmvercmp only compares letters and digits, so a version
// or release without any is meaningless.
func checkRPM(v string) error {
	rest := v
	if epoch, after, ok := strings.Cut(v, ":"); ok {
		if epoch == "" || !allDigits(epoch) {
			return errors.New("epoch is not a number")
		}
		rest = after
	}
	version, release, hasRelease := strings.Cut(rest, "-")
	if !strings.ContainsFunc(version, isAlnum) {
		return errors.New("version has no letter or digit")
	}
	if hasRelease && !strings.ContainsFunc(release, isAlnum) {
		return errors.New("release has no letter or digit")
	}
	return nil
}

// goToolchain matches Go toolchain versions as the go command prints them
// ("go1.21rc2", "1.19beta1"), which are not semantic versions.
var goToolchain = regexp.MustCompile(`^(?:go)?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:(alpha|beta|rc)([0-9]+))?$`)

// normaliseGo maps Go module and toolchain versions to the semantic
// versions OSV Go records use: "v0.3.5" and "go1.20.5" compare as "0.3.5"
// and "1.20.5", "go1.21rc2" as "1.21.0-rc.2". Pseudo-versions are semantic
// prereleases already and "+incompatible" is build metadata.
func normaliseGo(v string) (string, error) {
	if v[0] == 'v' {
		// A module version: semantic drops the v itself.
		if !startsWithDigit(v[1:]) {
			return "", errors.New("not a Go module version: no digit after the v")
		}
		return v, nil
	}
	if m := goToolchain.FindStringSubmatch(v); m != nil {
		patch := m[3]
		if patch == "" {
			patch = "0"
		}
		out := m[1] + "." + m[2] + "." + patch
		if m[4] != "" {
			out += "-" + m[4] + "." + m[5]
		}
		return out, nil
	}
	if !startsWithDigit(v) {
		return "", errors.New("not a Go module or toolchain version: it does not start with a digit")
	}
	return v, nil
}

func startsWithDigit(s string) bool { return s != "" && isDigit(s[0]) }

func allDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}
