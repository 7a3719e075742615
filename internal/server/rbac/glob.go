package rbac

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPatternLen bounds the length of a glob or label in bytes.
const MaxPatternLen = 512

// Glob is a compiled name pattern for registries, image names, clusters,
// hosts, namespaces and container names.
//
// Syntax (a subset of shell globs, matched against the whole name):
//
//   - any sequence of characters except '/'
//     **   any sequence of characters including '/'
//     ?    exactly one character except '/'
//
// Every other character matches itself. Character classes ('[', ']'),
// braces ('{', '}'), backslash escapes, whitespace, control characters,
// invalid UTF-8 and "***" are rejected by ParseGlob, so a pattern never
// means something other than what it looks like.
//
// The zero Glob matches nothing.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// ParseGlob compiles pattern, returning an error naming the pattern and the
// problem.
func ParseGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, fmt.Errorf("glob pattern is empty")
	}
	if len(pattern) > MaxPatternLen {
		return Glob{}, fmt.Errorf("glob pattern %.40q...: longer than %d bytes", pattern, MaxPatternLen)
	}
	if !utf8.ValidString(pattern) {
		return Glob{}, fmt.Errorf("glob pattern %q: invalid UTF-8", pattern)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); {
		r, size := utf8.DecodeRuneInString(pattern[i:])
		switch {
		case r == '*':
			if strings.HasPrefix(pattern[i:], "***") {
				return Glob{}, fmt.Errorf("glob pattern %q: \"***\" at byte %d is ambiguous; use * or **", pattern, i)
			}
			if strings.HasPrefix(pattern[i:], "**") {
				b.WriteString(".*")
				i += 2
				continue
			}
			b.WriteString("[^/]*")
		case r == '?':
			b.WriteString("[^/]")
		case strings.ContainsRune(`[]{}\`, r):
			return Glob{}, fmt.Errorf("glob pattern %q: character %q at byte %d is not supported (only * ** ? are special)", pattern, r, i)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return Glob{}, fmt.Errorf("glob pattern %q: whitespace or control character at byte %d", pattern, i)
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+size]))
		}
		i += size
	}
	b.WriteString("$")
	// (?s) lets "." match a newline, as it does by default in PostgreSQL,
	// so Regexp (which omits the flag) means the same in both.
	return Glob{pattern: pattern, re: regexp.MustCompile("(?s)" + b.String())}, nil
}

// MustGlob is ParseGlob for patterns known to be valid, such as fixtures;
// it panics on an invalid pattern.
func MustGlob(pattern string) Glob {
	g, err := ParseGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// IsZero reports whether g is the zero Glob.
func (g Glob) IsZero() bool { return g.re == nil }

// Match reports whether the whole of name matches g. Empty names never
// match.
func (g Glob) Match(name string) bool {
	return g.re != nil && name != "" && g.re.MatchString(name)
}

// Literal returns the pattern and true when it has no wildcard, so a store
// can compare with "=" instead of a regular expression.
func (g Glob) Literal() (string, bool) {
	if g.re == nil || strings.ContainsAny(g.pattern, "*?") {
		return "", false
	}
	return g.pattern, true
}

// Regexp returns an anchored regular expression equivalent to g. It uses
// only ^ $ .* [^/]* [^/] and backslash-escaped punctuation, so it means
// the same in PostgreSQL's "~" operator (where "." matches a newline) as
// Match does.
func (g Glob) Regexp() string {
	if g.re == nil {
		return "^$.^" // matches nothing
	}
	return strings.TrimPrefix(g.re.String(), "(?s)")
}

// MarshalText returns the pattern.
func (g Glob) MarshalText() ([]byte, error) { return []byte(g.pattern), nil }

// UnmarshalText parses a pattern with ParseGlob.
func (g *Glob) UnmarshalText(b []byte) error {
	p, err := ParseGlob(string(b))
	if err != nil {
		return err
	}
	*g = p
	return nil
}

// Label is an exact label selector "key=value". A resource matches when it
// has the label key with exactly that value.
type Label struct {
	Key, Value string
}

// ParseLabel parses "key=value". Keys are 1 to 253 characters of letters,
// digits and ._/- ; values are up to 63 characters of letters, digits and
// ._- and may be empty (Kubernetes label syntax, without its prefix rules).
func ParseLabel(s string) (Label, error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return Label{}, fmt.Errorf("label selector %.80q: want key=value", s)
	}
	if key == "" || len(key) > 253 {
		return Label{}, fmt.Errorf("label selector %.80q: key must be 1 to 253 characters", s)
	}
	if len(value) > 63 {
		return Label{}, fmt.Errorf("label selector %.80q: value longer than 63 characters", s)
	}
	for _, part := range []struct{ s, extra string }{{key, "._/-"}, {value, "._-"}} {
		for _, r := range part.s {
			if !(r < utf8.RuneSelf && (isAlnum(byte(r)) || strings.ContainsRune(part.extra, r))) {
				return Label{}, fmt.Errorf("label selector %.80q: character %q is not allowed", s, r)
			}
		}
	}
	return Label{Key: key, Value: value}, nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// String returns "key=value".
func (l Label) String() string { return l.Key + "=" + l.Value }

// MarshalText returns "key=value".
func (l Label) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses "key=value" with ParseLabel.
func (l *Label) UnmarshalText(b []byte) error {
	p, err := ParseLabel(string(b))
	if err != nil {
		return err
	}
	*l = p
	return nil
}
