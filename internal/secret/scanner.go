// Package secret finds credentials in image files and in the image
// configuration: cloud keys, tokens, private keys, passwords in URLs and
// configuration files.
//
// A Scanner holds a compiled rule set (the built-in rules plus an optional
// custom rules file). Scanning a file is one pass of a multi-keyword search
// (Aho-Corasick, ASCII case-insensitive) over its bytes; only the lines that
// hold a rule's keyword are then matched with the rule's regular
// expression. Candidates go through entropy, placeholder and allowlist
// checks, and every reported match is redacted.
package secret

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// DefaultMaxFileSize is the largest file scanned when Config.MaxFileSize
// is zero. Credentials live in small text files; larger files are data.
const DefaultMaxFileSize = 10 << 20

// binaryProbe is how much of a file is checked for NUL bytes.
const binaryProbe = 8 << 10

// Config configures a Scanner.
type Config struct {
	// RulesFile is an optional YAML file of custom rules, disabled
	// built-in rules and extra allowlists (see docs/secrets.md).
	RulesFile string
	// MaxFileSize is the largest file scanned; 0 means DefaultMaxFileSize.
	MaxFileSize int64
}

// Scanner finds secrets. It is safe for concurrent use.
type Scanner struct {
	rules       []*Rule
	maxSize     int64
	allowPaths  []*regexp.Regexp
	allowValues []*regexp.Regexp
	pf          *prefilter
	// kwRules maps a prefilter keyword to the rules it triggers (as
	// indexes into rules) and needKw to the rules that need it.
	kwRules [][]int
	isNeed  []bool
	// needIdx lists, per rule, the keywords of Rule.need.
	needIdx [][]int
	digest  string
}

// New compiles the built-in rules and cfg's custom rules file.
func New(cfg Config) (*Scanner, error) {
	s := &Scanner{rules: builtinRules(), maxSize: cfg.MaxFileSize}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if cfg.RulesFile != "" {
		rf, err := LoadRulesFile(cfg.RulesFile)
		if err != nil {
			return nil, err
		}
		if err := s.apply(rf); err != nil {
			return nil, fmt.Errorf("secret rules file %s: %w", cfg.RulesFile, err)
		}
	}
	s.compile()
	return s, nil
}

// compile builds the prefilter and the digest of the effective rule set.
func (s *Scanner) compile() {
	idx := map[string]int{}
	var kws []string
	add := func(kw string, rule int, need bool) {
		k, ok := idx[kw]
		if !ok {
			k = len(kws)
			idx[kw] = k
			kws = append(kws, kw)
			s.kwRules = append(s.kwRules, nil)
			s.isNeed = append(s.isNeed, false)
		}
		if need {
			s.isNeed[k] = true
			s.needIdx[rule] = append(s.needIdx[rule], k)
		} else {
			s.kwRules[k] = append(s.kwRules[k], rule)
		}
	}
	s.needIdx = make([][]int, len(s.rules))
	h := sha256.New()
	fmt.Fprintf(h, "max %d\n", s.maxSize)
	for i, r := range s.rules {
		if r.before == 0 {
			r.before = defaultBefore
		}
		if r.after == 0 {
			r.after = defaultAfter
		}
		for _, kw := range r.Keywords {
			add(kw, i, false)
		}
		for _, kw := range r.need {
			add(kw, i, true)
		}
		fmt.Fprintf(h, "rule %q %q %q %q %q %q %d %g %v %q %d %v\n", r.ID, r.Title, r.Severity, r.Category,
			r.Keywords, r.Regex, r.SecretGroup, r.Entropy, r.Path, r.need, r.scope, r.placeholders)
		fmt.Fprintf(h, "window %d %d %v %v\n", r.before, r.after, r.multiline, r.anchored)
	}
	for _, a := range s.allowPaths {
		fmt.Fprintf(h, "allow-path %q\n", a)
	}
	for _, a := range s.allowValues {
		fmt.Fprintf(h, "allow-regex %q\n", a)
	}
	s.pf = newPrefilter(kws)
	s.digest = hex.EncodeToString(h.Sum(nil))
}

// Rules returns the effective rules, in matching order.
func (s *Scanner) Rules() []*Rule { return slices.Clone(s.rules) }

// ConfigDigest identifies the effective rule set and allowlists.
func (s *Scanner) ConfigDigest() string { return s.digest }

// ScanBytes scans the contents of the file at path (absolute, with a
// leading "/"). Findings have Source SourceFile and Path set.
func (s *Scanner) ScanBytes(path string, data []byte) []inventory.Finding {
	if s.allowedPath(path) {
		return nil
	}
	if f, ok := pkcs12Finding(path, data); ok {
		return []inventory.Finding{f}
	}
	if bytes.IndexByte(data[:min(len(data), binaryProbe)], 0) >= 0 {
		return nil
	}
	fs := s.scan(path, data, fileScope(path))
	for i := range fs {
		fs[i].Source = inventory.SourceFile
		fs[i].Path = path
	}
	return fs
}

// fileScope returns the rule scopes for the file at path.
func fileScope(path string) scope {
	sc := scopeFile
	if isDotenv(path) {
		sc |= scopeDotenv
	}
	if isShellHistory(path) {
		sc |= scopeHistory
	}
	return sc
}

// isDotenv reports whether path names a file of KEY=value lines.
func isDotenv(p string) bool {
	b := path.Base(p)
	return b == ".env" || strings.HasPrefix(b, ".env.") || strings.HasSuffix(b, ".env") ||
		b == "environment" || b == ".envrc"
}

// isShellHistory reports whether path names a shell's command history,
// which holds the same kind of command lines as build history.
func isShellHistory(p string) bool {
	switch path.Base(p) {
	case ".bash_history", ".zsh_history", ".ash_history", ".sh_history", ".history", ".mysql_history", ".psql_history":
		return true
	}
	return false
}

// candidate is a rule match before redaction.
type candidate struct {
	rule       *Rule
	start, end int // the whole match
	s0, s1     int // the secret
}

// window is a byte range of the text a rule's regex runs on. clipped
// says it starts inside a line.
type window struct {
	start, end int
	clipped    bool
}

// Bounds of the text around a keyword occurrence that a rule's regex
// sees, unless the rule sets its own.
const (
	defaultBefore = 256
	defaultAfter  = 512
	customContext = 4 << 10
	maxWindow     = 2 << 10
)

// scan runs the rules of scope sc over data.
func (s *Scanner) scan(p string, data []byte, sc scope) []inventory.Finding {
	return s.findings(data, s.candidates(p, data, sc))
}

// candidates returns the matches of the rules of scope sc in data that
// pass the rules' checks.
func (s *Scanner) candidates(p string, data []byte, sc scope) []candidate {
	// active[i] is 0 until rule i's first keyword hit, then 1 if the rule
	// applies to this text and 2 if not.
	active := make([]uint8, len(s.rules))
	windows := make([][]window, len(s.rules))
	var seen []bool
	s.pf.scan(data, func(kw, end int) {
		if s.isNeed[kw] {
			if seen == nil {
				seen = make([]bool, len(s.isNeed))
			}
			seen[kw] = true
		}
		for _, ri := range s.kwRules[kw] {
			if active[ri] == 0 {
				active[ri] = 2
				if s.applies(ri, p, sc) {
					active[ri] = 1
				}
			}
			if active[ri] != 1 {
				continue
			}
			r := s.rules[ri]
			lo := max(0, end-r.before)
			start, clipped := lo, lo > 0
			if i := bytes.LastIndexByte(data[lo:end], '\n'); i >= 0 {
				start, clipped = lo+i+1, false
			}
			if clipped && r.anchored {
				continue // a line-anchored match cannot start this far back
			}
			stop := min(len(data), end+r.after)
			if !r.multiline {
				if i := bytes.IndexByte(data[end:stop], '\n'); i >= 0 {
					stop = end + i
				}
			}
			ws := windows[ri]
			// Overlapping windows merge up to maxWindow bytes, which keeps
			// the regex engine on its fast path for small inputs; beyond
			// that they overlap, and the overlap's duplicate matches are
			// dropped with the other duplicates.
			if n := len(ws); n > 0 && start <= ws[n-1].end && stop-ws[n-1].start <= maxWindow {
				ws[n-1].end = max(ws[n-1].end, stop)
			} else {
				windows[ri] = append(ws, window{start, stop, clipped})
			}
		}
	})
	var cands []candidate
	for ri, ws := range windows {
		if len(ws) == 0 || !s.needsSeen(ri, seen) {
			continue
		}
		r := s.rules[ri]
		for _, w := range ws {
			for _, m := range r.Regex.FindAllSubmatchIndex(data[w.start:w.end], -1) {
				if w.clipped && m[0] == 0 {
					continue // may have matched only because the window cut a word
				}
				if c, ok := s.check(r, data, w.start, m); ok {
					cands = append(cands, c)
				}
			}
		}
	}
	return cands
}

// applies reports whether rule ri runs on a text of scope sc at path p.
func (s *Scanner) applies(ri int, p string, sc scope) bool {
	r := s.rules[ri]
	rs := r.scope
	if rs == 0 {
		rs = scopeAll
	}
	return rs&sc != 0 && (r.Path == nil || r.Path.MatchString(p))
}

// needsSeen reports whether every keyword rule ri needs was seen.
func (s *Scanner) needsSeen(ri int, seen []bool) bool {
	for _, k := range s.needIdx[ri] {
		if seen == nil || !seen[k] {
			return false
		}
	}
	return true
}

// check validates one regex match m found at offset base and returns it
// as a candidate.
func (s *Scanner) check(r *Rule, data []byte, base int, m []int) (candidate, bool) {
	c := candidate{rule: r, start: base + m[0], end: base + m[1]}
	g := r.SecretGroup
	if g < 0 { // the first group that matched
		for i := 1; 2*i < len(m); i++ {
			if m[2*i] >= 0 {
				g = i
				break
			}
		}
	}
	if g < 0 || 2*g+1 >= len(m) || m[2*g] < 0 || m[2*g] == m[2*g+1] {
		return c, false
	}
	c.s0, c.s1 = base+m[2*g], base+m[2*g+1]
	sec := data[c.s0:c.s1]
	if r.Entropy > 0 && entropy(sec) < r.Entropy {
		return c, false
	}
	if r.placeholders && (!notPlaceholder(sec) || docWord(sec)) {
		return c, false
	}
	if r.validate != nil && !r.validate(sec) {
		return c, false
	}
	if r.validateMatch != nil {
		groups := make([][]byte, len(m)/2)
		for i := range groups {
			if m[2*i] >= 0 {
				groups[i] = data[base+m[2*i] : base+m[2*i+1]]
			}
		}
		if !r.validateMatch(groups) {
			return c, false
		}
	}
	for _, a := range s.allowValues {
		if a.Match(sec) || a.Match(data[c.start:c.end]) {
			return c, false
		}
	}
	return c, true
}

// findings drops candidates that overlap an earlier rule's secret or
// repeat a secret, and turns the rest into redacted findings.
func (s *Scanner) findings(data []byte, cands []candidate) []inventory.Finding {
	if len(cands) == 0 {
		return nil
	}
	order := map[*Rule]int{}
	for i, r := range s.rules {
		order[r] = i
	}
	sort.SliceStable(cands, func(i, j int) bool { return order[cands[i].rule] < order[cands[j].rule] })
	var kept []candidate
	seen := map[string]bool{}
next:
	for _, c := range cands {
		for _, k := range kept {
			if c.s0 < k.s1 && k.s0 < c.s1 {
				continue next
			}
		}
		key := c.rule.ID + "\x00" + string(data[c.s0:c.s1])
		if seen[key] {
			continue
		}
		seen[key] = true
		kept = append(kept, c)
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].s0 < kept[j].s0 })
	// Every candidate's secret is redacted, kept or not.
	spans := make([][2]int, len(cands))
	for i, c := range cands {
		spans[i] = [2]int{c.s0, c.s1}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	out := make([]inventory.Finding, 0, len(kept))
	for _, k := range kept {
		start := bytes.Count(data[:k.start], []byte("\n")) + 1
		out = append(out, inventory.Finding{
			Kind:      inventory.KindSecret,
			RuleID:    k.rule.ID,
			Title:     k.rule.Title,
			Severity:  k.rule.Severity,
			Category:  k.rule.Category,
			StartLine: start,
			EndLine:   start + bytes.Count(data[k.start:k.s1], []byte("\n")),
			Match:     excerpt(data, k.start, k.s0, k.s1, spans),
			Engine:    "builtin",
		})
	}
	return out
}
