package ruby

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type gemspec struct{}

// NewGemspec returns the extractor for installed gem specifications:
// *.gemspec files in a "specifications" directory (and in
// "specifications/default" for Ruby's default gems).
func NewGemspec() inventory.Extractor { return gemspec{} }

func (gemspec) Name() string { return "language/ruby/gemspec" }

func (gemspec) Version() int { return 1 }

func (gemspec) Required(fi inventory.FileInfo) bool {
	if !strings.HasSuffix(fi.Path, ".gemspec") {
		return false
	}
	dir := path.Dir(fi.Path)
	return path.Base(dir) == "specifications" || strings.HasSuffix(dir, "/specifications/default")
}

func (gemspec) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	p, err := ParseGemspec(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: []inventory.Package{p}}, nil
}

// assignment matches `s.name = ...` style attribute assignments.
var assignment = regexp.MustCompile(`^\s*\w+\.(name|version|platform|licenses?)\s*=\s*(.*)$`)

// ParseGemspec reads the name, version, platform and licenses of a gem
// specification written by RubyGems. When name or version are not string
// literals it falls back to the "# stub: NAME VERSION PLATFORM" comment
// that RubyGems writes at the top.
func ParseGemspec(b []byte) (inventory.Package, error) {
	attrs := map[string][]string{}
	var stub []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), inventory.MaxManifestSize)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# stub: "); ok && stub == nil {
			stub = strings.Fields(rest)
			continue
		}
		m := assignment.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, seen := attrs[m[1]]; !seen {
			attrs[m[1]] = rubyStrings(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		return inventory.Package{}, fmt.Errorf("parsing gemspec: %w", err)
	}
	first := func(key string, stubIndex int) string {
		if v := attrs[key]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		if len(stub) > stubIndex {
			return stub[stubIndex]
		}
		return ""
	}
	name, version, platform := first("name", 0), first("version", 1), first("platform", 2)
	if name == "" || version == "" {
		return inventory.Package{}, fmt.Errorf("parsing gemspec: no string literal for s.name or s.version (and no \"# stub:\" line)")
	}
	licenses := attrs["licenses"]
	if len(licenses) == 0 {
		licenses = attrs["license"]
	}
	p := inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypeGem,
		PURL:     PURL(name, version, platform),
		Licenses: licenses,
	}
	if platform != "" && platform != "ruby" {
		p.Metadata = map[string]string{"platform": platform}
	}
	return p, nil
}

// closers maps the opening bracket of a %q literal to its closing one.
var closers = map[byte]byte{'{': '}', '(': ')', '[': ']', '<': '>'}

// rubyStrings returns the string literals in a line of Ruby: "...", '...'
// and %q{...} (with any of the bracket pairs () [] {} <>). It stops at a
// comment. Interpolation is not evaluated.
func rubyStrings(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '#':
			return out
		case c == '"' || c == '\'':
			lit, end := scanQuoted(s, i+1, c)
			if end < 0 {
				return out
			}
			out = append(out, lit)
			i = end
		case c == '%' && i+2 < len(s) && (s[i+1] == 'q' || s[i+1] == 'Q'):
			closer, ok := closers[s[i+2]]
			if !ok {
				continue
			}
			end := strings.IndexByte(s[i+3:], closer)
			if end < 0 {
				return out
			}
			out = append(out, s[i+3:i+3+end])
			i += 3 + end
		}
	}
	return out
}

// scanQuoted reads a quoted literal starting after its opening quote at
// start. It returns the literal with backslash escapes resolved and the
// index of the closing quote, or -1 when the literal is not closed.
func scanQuoted(s string, start int, quote byte) (string, int) {
	var b strings.Builder
	for i := start; i < len(s); i++ {
		switch s[i] {
		case quote:
			return b.String(), i
		case '\\':
			if i+1 < len(s) {
				i++
			}
		}
		b.WriteByte(s[i])
	}
	return "", -1
}
