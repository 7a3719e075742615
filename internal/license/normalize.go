package license

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/mamorisec/mamori/internal/inventory"
	"regexp"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

// Normalized is the SPDX form of a package's declared licenses.
type Normalized struct {
	// Expression is a valid SPDX license expression, "" when nothing was
	// declared.
	Expression string `json:"expression,omitempty"`
	// Expr is Expression parsed, nil when nothing was declared.
	Expr *Expr `json:"-"`
	// Unrecognized lists the declared strings that mamori could not map to
	// SPDX identifiers; each became a LicenseRef in Expression.
	Unrecognized []string `json:"unrecognized,omitempty"`
	// Dropped lists license exceptions that have no SPDX identifier and were
	// left out ("OpenSSL exception"); leaving out an exception only ever
	// makes the result more restrictive.
	Dropped []string `json:"droppedExceptions,omitempty"`
}

// Normalize maps the licenses a package of type pkgType declares (as in
// inventory.Package.Licenses) to one SPDX expression. Each string may be an
// SPDX identifier or expression, a Debian DEP-5 or Fedora short name
// ("GPL-2+", "ASL 2.0", "GPLv2+ and BSD"), a license name ("The Apache
// Software License, Version 2.0", "MIT License") or a license URL. Strings
// it does not recognize become "LicenseRef-" identifiers built from their
// text and are listed in Unrecognized.
//
// Placeholders for "no license" ("UNKNOWN", "NONE", "N/A",
// "NOASSERTION") are skipped. Several strings are joined with AND: most sources list every license
// that applies. Composer is the exception: its "license" array lists
// alternatives, so its strings are joined with OR.
func Normalize(pkgType string, declared []string) Normalized {
	var (
		n     Normalized
		terms []*Expr
		seen  = map[string]bool{}
	)
	for _, raw := range declared {
		raw = strings.TrimSpace(raw)
		if raw == "" || seen[raw] || placeholders[strings.ToUpper(raw)] {
			continue
		}
		seen[raw] = true
		e, dropped, ok := NormalizeString(raw)
		if !ok {
			n.Unrecognized = append(n.Unrecognized, raw)
		}
		n.Dropped = append(n.Dropped, dropped...)
		terms = append(terms, e)
	}
	if len(terms) == 0 {
		return n
	}
	op := OpAnd
	if pkgType == inventory.TypeComposer {
		op = OpOr
	}
	n.Expr = join(op, terms)
	n.Expression = n.Expr.String()
	return n
}

// placeholders are values that metadata formats use for "no license
// given" (PyPI's "UNKNOWN", SPDX's "NOASSERTION"); Normalize skips them.
var placeholders = map[string]bool{"UNKNOWN": true, "NONE": true, "N/A": true, "NOASSERTION": true}

// NormalizeString maps one declared license string to an SPDX expression.
// ok is false when the string was not recognized; e is then a single
// LicenseRef made from the text (see Ref). dropped lists exceptions that
// were left out for want of an SPDX identifier.
func NormalizeString(s string) (e *Expr, dropped []string, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) <= maxExprLen {
		if e, ok := mapTerm(s, true); ok {
			return e, nil, true
		}
		if p, err := parse(s, true); err == nil {
			if e, dropped, ok := mapExpr(p); ok {
				return e, dropped, true
			}
		}
	}
	return &Expr{ID: Ref(s)}, nil, false
}

// mapExpr maps every leaf of a loosely parsed expression, failing if any
// leaf is not recognized.
func mapExpr(p *Expr) (*Expr, []string, bool) {
	if p.Op != "" {
		args := make([]*Expr, 0, len(p.Args))
		var dropped []string
		for _, a := range p.Args {
			m, d, ok := mapExpr(a)
			if !ok {
				return nil, nil, false
			}
			args = append(args, m)
			dropped = append(dropped, d...)
		}
		return join(p.Op, args), dropped, true
	}
	m, ok := mapTerm(p.ID, true)
	if !ok {
		return nil, nil, false
	}
	if p.Exception == "" {
		return m, nil, true
	}
	if m.Op != "" || m.Exception != "" {
		return nil, nil, false
	}
	k := key(p.Exception)
	if strings.Contains(k, "commons clause") {
		return join(OpAnd, []*Expr{m, {ID: "LicenseRef-Commons-Clause"}}), nil, true
	}
	if exc, ok := exceptionID(p.Exception); ok {
		return &Expr{ID: m.ID, Exception: exc}, nil, true
	}
	return m, []string{p.Exception}, true
}

// exceptionID returns the SPDX exception identifier for s.
func exceptionID(s string) (string, bool) {
	if ok, id := spdxlicenses.IsException(s); ok {
		return id, true
	}
	id, ok := exceptionAliases[key(s)]
	return id, ok
}

var exceptionAliases = map[string]string{
	"classpath":                         "Classpath-exception-2.0",
	"classpath exception":               "Classpath-exception-2.0",
	"cpe":                               "Classpath-exception-2.0",
	"llvm exception":                    "LLVM-exception",
	"gcc runtime library exception 3 1": "GCC-exception-3.1",
	"font exception":                    "Font-exception-2.0",
	"autoconf exception":                "Autoconf-exception-generic",
	"bison exception":                   "Bison-exception-2.2",
	"libtool exception":                 "Libtool-exception",
}

// mapTerm maps one license name (not an expression) to an SPDX
// expression, usually a single identifier. With slash it also accepts
// Cargo's legacy "MIT/Apache-2.0" (meaning OR).
func mapTerm(t string, slash bool) (*Expr, bool) {
	t = strings.Trim(strings.TrimSpace(t), `"'.,;`)
	for len(t) > 2 && t[0] == '(' && t[len(t)-1] == ')' && !strings.ContainsAny(t[1:len(t)-1], "()") {
		t = strings.TrimSpace(t[1 : len(t)-1])
	}
	if t == "" {
		return nil, false
	}
	if id, ok := spdxID(t); ok {
		if e, ok := deprecatedWith[id]; ok {
			return &Expr{ID: e[0], Exception: e[1]}, true
		}
		return &Expr{ID: id}, true
	}
	k := key(t)
	if id, ok := gnuID(k); ok {
		return &Expr{ID: id}, true
	}
	if v, ok := aliases[k]; ok {
		if e, err := ParseExpression(v); err == nil {
			return e, true
		}
	}
	if e, ok := urlLicense(t); ok {
		return e, true
	}
	if slash && strings.Contains(t, "/") && !strings.Contains(t, "://") {
		var alts []*Expr
		for _, part := range strings.Split(t, "/") {
			e, ok := mapTerm(part, false)
			if !ok {
				return nil, false
			}
			alts = append(alts, e)
		}
		return join(OpOr, alts), true
	}
	return nil, false
}

// deprecatedWith maps deprecated SPDX identifiers that combine a license
// and an exception to their WITH form.
var deprecatedWith = map[string][2]string{
	"GPL-2.0-with-autoconf-exception":  {"GPL-2.0-only", "Autoconf-exception-2.0"},
	"GPL-2.0-with-bison-exception":     {"GPL-2.0-only", "Bison-exception-2.2"},
	"GPL-2.0-with-classpath-exception": {"GPL-2.0-only", "Classpath-exception-2.0"},
	"GPL-2.0-with-font-exception":      {"GPL-2.0-only", "Font-exception-2.0"},
	"GPL-2.0-with-GCC-exception":       {"GPL-2.0-only", "GCC-exception-2.0"},
	"GPL-3.0-with-autoconf-exception":  {"GPL-3.0-only", "Autoconf-exception-3.0"},
	"GPL-3.0-with-GCC-exception":       {"GPL-3.0-only", "GCC-exception-3.1"},
}

// gnuDeprecated matches the deprecated GNU identifiers ("GPL-2.0",
// "LGPL-2.1") that SPDX replaced with "-only" and "-or-later" forms.
var gnuDeprecated = regexp.MustCompile(`^(A?GPL|LGPL|GFDL)-(\d\.\d)$`)

// spdxID returns the canonical SPDX identifier for t, a license list
// identifier in any case, with an optional "+", or a valid LicenseRef.
// Deprecated GNU identifiers become their "-only"/"-or-later" forms.
func spdxID(t string) (string, bool) {
	if rest, ok := strings.CutPrefix(t, "LicenseRef-"); ok {
		return t, rest != "" && validIDString(rest)
	}
	plus := strings.HasSuffix(t, "+")
	base := strings.TrimSuffix(t, "+")
	id := ""
	if ok, canon := spdxlicenses.IsActiveLicense(base); ok {
		id = canon
	} else if ok, canon := spdxlicenses.IsDeprecatedLicense(base); ok {
		id = canon
	} else {
		return "", false
	}
	if m := gnuDeprecated.FindStringSubmatch(id); m != nil {
		if plus {
			return m[1] + "-" + m[2] + "-or-later", true
		}
		return m[1] + "-" + m[2] + "-only", true
	}
	if !plus {
		return id, true
	}
	if only, ok := strings.CutSuffix(id, "-only"); ok {
		return only + "-or-later", true
	}
	if strings.HasSuffix(id, "-or-later") {
		return id, true
	}
	return id + "+", true
}

// gnuRE matches the keys (see key) of GNU license short names: Debian's
// "GPL-2+", "LGPL-2.1", Fedora's "GPLv2+", "LGPLv3", "GNU GPL v3 or later".
var gnuRE = regexp.MustCompile(`^(a|l)?gpl ?v?(\d)(?: (\d))?(?: 0)?(\+| \+| or later| or any later| or newer| only)?$`)

// gnuID maps a GNU license key to its SPDX identifier. Versionless names
// ("GPL") are not handled here.
func gnuID(k string) (string, bool) {
	for _, r := range []struct{ long, short string }{
		{"gnu affero general public", "agpl"},
		{"gnu lesser general public", "lgpl"},
		{"gnu library general public", "lgpl"},
		{"gnu general public", "gpl"},
		{"gnu ", ""},
	} {
		if rest, ok := strings.CutPrefix(k, r.long); ok {
			k = r.short + rest
			break
		}
	}
	m := gnuRE.FindStringSubmatch(k)
	if m == nil {
		return "", false
	}
	minor := m[3]
	if minor == "" {
		minor = "0"
	}
	id := strings.ToUpper(m[1]) + "GPL-" + m[2] + "." + minor
	if ok, _ := spdxlicenses.IsDeprecatedLicense(id); !ok {
		return "", false
	}
	if strings.TrimSpace(m[4]) == "" || strings.TrimSpace(m[4]) == "only" {
		return id + "-only", true
	}
	return id + "-or-later", true
}

// stopWords are left out of keys: they vary between spellings of the same
// license name.
var stopWords = map[string]bool{"the": true, "license": true, "licenses": true, "version": true, "v": true, "ver": true, "software": true}

// key folds a license name for alias lookup: lower case, "licence" spelled
// "license", punctuation as spaces, stop words and repeated words left
// out, "v2" read as "2". "The MIT License (MIT)" and "MIT license" both
// give "mit"; "Apache License, Version 2.0" gives "apache 2 0".
func key(s string) string {
	s = strings.ReplaceAll(strings.ToLower(s), "licence", "license")
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+')
	})
	out := make([]string, 0, len(fields))
	seen := map[string]bool{}
	for _, f := range fields {
		if len(f) > 1 && f[0] == 'v' && f[1] >= '0' && f[1] <= '9' {
			f = f[1:]
		}
		if stopWords[f] || seen[f] {
			continue
		}
		if f[0] < '0' || f[0] > '9' {
			seen[f] = true
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// urlLicense recognizes license URLs ("http://www.apache.org/licenses/LICENSE-2.0",
// "https://opensource.org/licenses/MIT").
func urlLicense(t string) (*Expr, bool) {
	u := strings.ToLower(t)
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "http://"); !ok {
			return nil, false
		}
	}
	rest = strings.TrimPrefix(rest, "www.")
	rest = strings.TrimRight(rest, "/")
	for _, ext := range []string{".txt", ".html", ".htm", ".php", ".md"} {
		rest = strings.TrimSuffix(rest, ext)
	}
	if v, ok := urlAliases[rest]; ok {
		return &Expr{ID: v}, true
	}
	for _, p := range []string{"opensource.org/licenses/", "spdx.org/licenses/", "choosealicense.com/licenses/"} {
		if id, ok := strings.CutPrefix(rest, p); ok {
			if id, ok := spdxID(id); ok && !strings.HasPrefix(id, "LicenseRef-") {
				return &Expr{ID: id}, true
			}
		}
	}
	return nil, false
}

// Ref returns the LicenseRef identifier for an unrecognized license text:
// "LicenseRef-" and the text with every character outside [A-Za-z0-9.-]
// replaced by "-" (runs collapsed, at most 48 characters). When that
// changed the text, a short hash of the text follows, so distinct texts
// never share an identifier.
func Ref(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 48 {
			break
		}
	}
	id := strings.TrimRight(b.String(), "-")
	if id == s && id != "" {
		return "LicenseRef-" + id
	}
	sum := sha256.Sum256([]byte(s))
	if id == "" {
		return "LicenseRef-" + hex.EncodeToString(sum[:4])
	}
	return "LicenseRef-" + id + "-" + hex.EncodeToString(sum[:4])
}

// validIDString reports whether s is an SPDX idstring ([A-Za-z0-9.-]+).
func validIDString(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return s != ""
}
