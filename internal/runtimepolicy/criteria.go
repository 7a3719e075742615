package runtimepolicy

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mamorisec/mamori/internal/server/rbac"
)

// Limits of the criteria language.
const (
	// MaxCriteriaLen bounds a criteria expression in bytes.
	MaxCriteriaLen = 4096
	// MaxCriteriaDepth bounds the nesting of parentheses and "!".
	MaxCriteriaDepth = 32
)

// Criteria is a compiled criteria expression. The language is:
//
//	expr       = and { "||" and }
//	and        = unary { "&&" unary }
//	unary      = "!" unary | "(" expr ")" | comparison
//	comparison = field ( "==" | "!=" ) string
//	field      = "namespace" | "image" | "container" | "host" | "pod"
//	           | "cluster" | "registry" | "label" "[" string "]"
//	string     = '"' { char | '\"' | '\\' } '"'
//
// "&&" binds tighter than "||". The right side of a comparison is a glob
// (see rbac.Glob: * within a path segment, ** across, ? one character);
// "" matches an absent or empty attribute. A zero Criteria matches
// everything.
type Criteria struct {
	root node
	src  string
}

// String returns the expression as written.
func (c Criteria) String() string { return c.src }

// CriteriaError is a syntax error with its position.
type CriteriaError struct {
	// Column is the 1-based byte column of the error.
	Column int
	Msg    string
}

func (e *CriteriaError) Error() string {
	return fmt.Sprintf("criteria: column %d: %s", e.Column, e.Msg)
}

type node interface {
	eval(w *attrs) bool
}

type (
	orNode  struct{ l, r node }
	andNode struct{ l, r node }
	notNode struct{ x node }
	cmpNode struct {
		field string
		key   string // label key
		neg   bool
		glob  rbac.Glob // zero when the pattern is ""
	}
)

func (n orNode) eval(w *attrs) bool  { return n.l.eval(w) || n.r.eval(w) }
func (n andNode) eval(w *attrs) bool { return n.l.eval(w) && n.r.eval(w) }
func (n notNode) eval(w *attrs) bool { return !n.x.eval(w) }
func (n cmpNode) eval(w *attrs) bool {
	var m bool
	if n.field == "image" {
		m = n.match(w.repo) || n.match(w.Image)
	} else {
		m = n.match(w.get(n.field, n.key))
	}
	return m != n.neg
}

func (n cmpNode) match(v string) bool {
	if n.glob.IsZero() {
		return v == ""
	}
	return n.glob.Match(v)
}

var criteriaFields = []string{"namespace", "image", "container", "host", "pod", "cluster", "registry", "label"}

// ParseCriteria compiles an expression. Errors give the column.
func ParseCriteria(src string) (Criteria, error) {
	if strings.TrimSpace(src) == "" {
		return Criteria{}, nil
	}
	if len(src) > MaxCriteriaLen {
		return Criteria{}, &CriteriaError{Column: MaxCriteriaLen + 1, Msg: fmt.Sprintf("longer than %d bytes", MaxCriteriaLen)}
	}
	if !utf8.ValidString(src) {
		return Criteria{}, &CriteriaError{Column: 1, Msg: "invalid UTF-8"}
	}
	p := &parser{src: src}
	p.next()
	n, err := p.expr(0)
	if err != nil {
		return Criteria{}, err
	}
	if p.tok.kind != tEOF {
		return Criteria{}, p.errf("unexpected %s after the end of the expression", p.tok)
	}
	return Criteria{root: n, src: src}, nil
}

// Matches reports whether w satisfies c.
func (c Criteria) Matches(w Workload) bool {
	if c.root == nil {
		return true
	}
	a := newAttrs(w)
	return c.root.eval(&a)
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tOr
	tAnd
	tNot
	tEq
	tNe
	tLParen
	tRParen
	tLBrack
	tRBrack
	tErr
)

type token struct {
	kind tokKind
	val  string
	col  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tIdent:
		return fmt.Sprintf("%q", t.val)
	case tString:
		return fmt.Sprintf("string %q", t.val)
	}
	return fmt.Sprintf("%q", t.val)
}

type parser struct {
	src string
	pos int
	tok token
	err *CriteriaError
}

func (p *parser) errf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &CriteriaError{Column: p.tok.col, Msg: fmt.Sprintf(format, args...)}
}

// next reads the next token into p.tok; a lexical error is stored in p.err
// and reported as a tErr token.
func (p *parser) next() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
	col := p.pos + 1
	if p.pos >= len(p.src) {
		p.tok = token{kind: tEOF, col: col}
		return
	}
	two := ""
	if p.pos+2 <= len(p.src) {
		two = p.src[p.pos : p.pos+2]
	}
	switch two {
	case "||":
		p.pos += 2
		p.tok = token{tOr, two, col}
		return
	case "&&":
		p.pos += 2
		p.tok = token{tAnd, two, col}
		return
	case "==":
		p.pos += 2
		p.tok = token{tEq, two, col}
		return
	case "!=":
		p.pos += 2
		p.tok = token{tNe, two, col}
		return
	}
	c := p.src[p.pos]
	single := map[byte]tokKind{'!': tNot, '(': tLParen, ')': tRParen, '[': tLBrack, ']': tRBrack}
	if k, ok := single[c]; ok {
		p.pos++
		p.tok = token{k, string(c), col}
		return
	}
	if c == '"' {
		var b strings.Builder
		for i := p.pos + 1; i < len(p.src); i++ {
			switch p.src[i] {
			case '"':
				p.pos = i + 1
				p.tok = token{tString, b.String(), col}
				return
			case '\\':
				if i+1 < len(p.src) && (p.src[i+1] == '"' || p.src[i+1] == '\\') {
					b.WriteByte(p.src[i+1])
					i++
					continue
				}
				p.fail(i+1, `only \" and \\ are escapes in a string`)
				return
			case '\n':
				p.fail(i+1, "newline in a string")
				return
			}
			b.WriteByte(p.src[i])
		}
		p.fail(col, "string is not closed")
		return
	}
	if isIdentByte(c) {
		i := p.pos
		for i < len(p.src) && isIdentByte(p.src[i]) {
			i++
		}
		p.tok = token{tIdent, p.src[p.pos:i], col}
		p.pos = i
		return
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	p.fail(col, fmt.Sprintf("unexpected character %q", r))
}

func (p *parser) fail(col int, msg string) {
	p.err = &CriteriaError{Column: col, Msg: msg}
	p.tok = token{kind: tErr, col: col}
	p.pos = len(p.src)
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (p *parser) expr(depth int) (node, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOr {
		p.next()
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tAnd {
		p.next()
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth >= MaxCriteriaDepth {
		return nil, p.errf("nested deeper than %d levels", MaxCriteriaDepth)
	}
	switch p.tok.kind {
	case tNot:
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	case tLParen:
		p.next()
		x, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errf("want \")\", found %s", p.tok)
		}
		p.next()
		return x, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (node, error) {
	if p.tok.kind != tIdent {
		return nil, p.errf("want a field (%s), \"!\" or \"(\", found %s", strings.Join(criteriaFields, ", "), p.tok)
	}
	n := cmpNode{field: p.tok.val}
	known := false
	for _, f := range criteriaFields {
		known = known || f == n.field
	}
	if !known {
		return nil, p.errf("unknown field %q (fields: %s)", n.field, strings.Join(criteriaFields, ", "))
	}
	p.next()
	if n.field == "label" {
		if p.tok.kind != tLBrack {
			return nil, p.errf("want [\"key\"] after label, found %s", p.tok)
		}
		p.next()
		if p.tok.kind != tString || p.tok.val == "" {
			return nil, p.errf("want a label key string, found %s", p.tok)
		}
		n.key = p.tok.val
		p.next()
		if p.tok.kind != tRBrack {
			return nil, p.errf("want \"]\", found %s", p.tok)
		}
		p.next()
	}
	switch p.tok.kind {
	case tEq:
	case tNe:
		n.neg = true
	default:
		return nil, p.errf("want == or != after %s, found %s", n.field, p.tok)
	}
	p.next()
	if p.tok.kind != tString {
		return nil, p.errf("want a quoted string, found %s", p.tok)
	}
	if p.tok.val != "" {
		g, err := rbac.ParseGlob(p.tok.val)
		if err != nil {
			return nil, p.errf("%v", err)
		}
		n.glob = g
	}
	p.next()
	return n, nil
}
