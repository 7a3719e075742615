package license

import (
	"errors"
	"fmt"
	"strings"
)

// Expression operators.
const (
	OpAnd = "AND"
	OpOr  = "OR"
)

// Expr is a parsed license expression: a leaf (ID with an optional
// Exception) or an AND or OR of two or more Args.
type Expr struct {
	// Op is OpAnd, OpOr, or "" for a leaf.
	Op string
	// Args are the operands of an AND or OR.
	Args []*Expr
	// ID is a leaf's license identifier or LicenseRef.
	ID string
	// Exception is a leaf's WITH exception identifier, if any.
	Exception string
}

// String renders the expression in SPDX syntax, parenthesizing nested
// operators.
func (e *Expr) String() string {
	if e.Op == "" {
		if e.Exception != "" {
			return e.ID + " WITH " + e.Exception
		}
		return e.ID
	}
	parts := make([]string, len(e.Args))
	for i, a := range e.Args {
		parts[i] = a.String()
		if a.Op != "" {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, " "+e.Op+" ")
}

// Leaves returns the expression's leaves in order.
func (e *Expr) Leaves() []*Expr {
	if e.Op == "" {
		return []*Expr{e}
	}
	var out []*Expr
	for _, a := range e.Args {
		out = append(out, a.Leaves()...)
	}
	return out
}

// join combines expressions with op, flattening operands that already use
// op and dropping repeated operands. One operand is returned as is.
func join(op string, args []*Expr) *Expr {
	var flat []*Expr
	seen := map[string]bool{}
	for _, a := range args {
		sub := []*Expr{a}
		if a.Op == op {
			sub = a.Args
		}
		for _, s := range sub {
			if k := s.String(); !seen[k] {
				seen[k] = true
				flat = append(flat, s)
			}
		}
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return &Expr{Op: op, Args: flat}
}

// Limits on parsed expressions, so hostile input stays cheap.
const (
	maxExprLen   = 4096
	maxExprDepth = 32
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("license expression syntax error")

// ParseExpression parses an SPDX license expression: identifiers joined by
// AND, OR and WITH (WITH binds tightest, then AND, then OR) with
// parentheses. Operators may be upper or lower case. Identifiers are taken
// as written; they are not checked against the SPDX license list.
func ParseExpression(s string) (*Expr, error) {
	return parse(s, false)
}

// parse parses s. In loose mode a term may be several words ("Apache
// License 2.0"), joined by single spaces in the leaf's ID, and WITH may be
// followed by several words.
func parse(s string, loose bool) (*Expr, error) {
	if len(s) > maxExprLen {
		return nil, fmt.Errorf("%w: %d bytes is longer than the %d byte limit", ErrSyntax, len(s), maxExprLen)
	}
	p := &parser{toks: tokenize(s), loose: loose}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("%w: empty expression", ErrSyntax)
	}
	e, err := p.or(0)
	if err != nil {
		return nil, fmt.Errorf("%w in %q", err, s)
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q in %q", ErrSyntax, p.toks[p.pos], s)
	}
	return e, nil
}

// tokenize splits s into words and parentheses.
func tokenize(s string) []string {
	var toks []string
	start := -1
	for i, r := range s {
		switch {
		case r == '(' || r == ')':
			if start >= 0 {
				toks = append(toks, s[start:i])
				start = -1
			}
			toks = append(toks, string(r))
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if start >= 0 {
				toks = append(toks, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		toks = append(toks, s[start:])
	}
	return toks
}

type parser struct {
	toks  []string
	pos   int
	loose bool
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// isOp reports whether tok is the operator op in upper or lower case.
func isOp(tok, op string) bool {
	return tok == op || tok == strings.ToLower(op)
}

func isOperator(tok string) bool {
	return isOp(tok, OpAnd) || isOp(tok, OpOr) || isOp(tok, "WITH")
}

func (p *parser) or(depth int) (*Expr, error) {
	return p.binary(depth, OpOr, p.and)
}

func (p *parser) and(depth int) (*Expr, error) {
	return p.binary(depth, OpAnd, p.with)
}

func (p *parser) binary(depth int, op string, next func(int) (*Expr, error)) (*Expr, error) {
	e, err := next(depth)
	if err != nil {
		return nil, err
	}
	args := []*Expr{e}
	for isOp(p.peek(), op) {
		p.pos++
		e, err := next(depth)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	if len(args) == 1 {
		return args[0], nil
	}
	return &Expr{Op: op, Args: args}, nil
}

func (p *parser) with(depth int) (*Expr, error) {
	e, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	if !isOp(p.peek(), "WITH") {
		return e, nil
	}
	p.pos++
	if e.Op != "" || e.Exception != "" {
		return nil, fmt.Errorf("%w: WITH must follow a single license", ErrSyntax)
	}
	exc, err := p.term()
	if err != nil {
		return nil, err
	}
	e.Exception = exc
	return e, nil
}

func (p *parser) primary(depth int) (*Expr, error) {
	if p.peek() == "(" {
		if depth >= maxExprDepth {
			return nil, fmt.Errorf("%w: parentheses nested deeper than %d", ErrSyntax, maxExprDepth)
		}
		p.pos++
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("%w: missing \")\"", ErrSyntax)
		}
		p.pos++
		return e, nil
	}
	id, err := p.term()
	if err != nil {
		return nil, err
	}
	return &Expr{ID: id}, nil
}

// term reads one identifier, or in loose mode a run of words.
func (p *parser) term() (string, error) {
	tok := p.peek()
	if tok == "" || tok == "(" || tok == ")" || isOperator(tok) {
		if tok == "" {
			return "", fmt.Errorf("%w: expression ends where a license was expected", ErrSyntax)
		}
		return "", fmt.Errorf("%w: %q where a license was expected", ErrSyntax, tok)
	}
	p.pos++
	if !p.loose {
		return tok, nil
	}
	words := []string{tok}
	for t := p.peek(); t != "" && t != "(" && t != ")" && !isOperator(t); t = p.peek() {
		words = append(words, t)
		p.pos++
	}
	return strings.Join(words, " "), nil
}
