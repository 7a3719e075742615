// Package query parses the filter and sort parameters of the console
// server's list endpoints, validates them against a per-resource whitelist
// of fields and compiles them to SQL with bound placeholders.
//
// A filter is a list of conditions joined by ';', all of which must hold:
//
//	severity=CRITICAL,HIGH;fixable=true;package~log4j
//
// A condition is a field name, an operator and one or more values separated
// by ','. The operators are = and != (any of the values / none of them),
// ~ and !~ (contains / does not contain, case-insensitive, strings only) and
// <, <=, >, >= (numbers, enums and times). A backslash escapes the next
// character, so a value may hold ',', ';' or '\'.
//
// A sort is a list of field names separated by ','; a leading '-' sorts
// that field in descending order: "-created,name".
//
// Field names are never copied into SQL: each whitelisted Field names its
// column, and every value is bound as a placeholder argument.
package query

import (
	"errors"
	"fmt"
	"strings"
)

// Limits bound the work a single request can cause.
const (
	// MaxFilterLen is the longest filter expression accepted, in bytes.
	MaxFilterLen = 4096
	// MaxConditions is the most conditions one filter may have.
	MaxConditions = 32
	// MaxValues is the most values one condition may list.
	MaxValues = 100
	// MaxSortKeys is the most fields one sort may name.
	MaxSortKeys = 8
)

// Op is a comparison operator.
type Op string

// The operators.
const (
	OpEq          Op = "="
	OpNe          Op = "!="
	OpContains    Op = "~"
	OpNotContains Op = "!~"
	OpLt          Op = "<"
	OpLe          Op = "<="
	OpGt          Op = ">"
	OpGe          Op = ">="
)

// Cond is one condition of a filter: Field Op Values.
type Cond struct {
	// Field is the field name as written.
	Field string
	// Op is the operator.
	Op Op
	// Values are the unescaped values; there is at least one.
	Values []string
}

// Filter is a parsed filter expression: all its conditions must hold.
type Filter struct {
	Conds []Cond
}

// SortKey is one field of a sort order.
type SortKey struct {
	Field string
	Desc  bool
}

// Error is a syntax or validation error. Field and Op, when set, name the
// offending part of the expression.
type Error struct {
	// Param is "filter" or "sort".
	Param string
	Field string
	Op    Op
	Msg   string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Param)
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	if e.Op != "" {
		fmt.Fprintf(&b, " operator %q", string(e.Op))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// IsError reports whether err is a query *Error (a client mistake).
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// ParseFilter parses a filter expression. The empty string is the empty
// filter.
func ParseFilter(s string) (Filter, error) {
	if len(s) > MaxFilterLen {
		return Filter{}, &Error{Param: "filter", Msg: fmt.Sprintf("longer than %d bytes", MaxFilterLen)}
	}
	var f Filter
	for _, part := range split(s, ';') {
		if strings.TrimSpace(part) == "" {
			continue
		}
		c, err := parseCond(part)
		if err != nil {
			return Filter{}, err
		}
		if len(f.Conds) == MaxConditions {
			return Filter{}, &Error{Param: "filter", Msg: fmt.Sprintf("more than %d conditions", MaxConditions)}
		}
		f.Conds = append(f.Conds, c)
	}
	return f, nil
}

// parseCond parses "field op values".
func parseCond(s string) (Cond, error) {
	s = strings.TrimLeft(s, " ")
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	name := s[:i]
	if name == "" {
		return Cond{}, &Error{Param: "filter", Msg: fmt.Sprintf("condition %q does not start with a field name", clip(s))}
	}
	rest := strings.TrimLeft(s[i:], " ")
	var op Op
	for _, o := range []Op{OpNe, OpNotContains, OpLe, OpGe, OpEq, OpContains, OpLt, OpGt} {
		if strings.HasPrefix(rest, string(o)) {
			op = o
			break
		}
	}
	if op == "" {
		return Cond{}, &Error{Param: "filter", Field: name, Msg: fmt.Sprintf("expected an operator (=, !=, ~, !~, <, <=, >, >=) in %q", clip(s))}
	}
	raw := rest[len(op):]
	var vals []string
	for _, v := range split(raw, ',') {
		if len(vals) == MaxValues {
			return Cond{}, &Error{Param: "filter", Field: name, Op: op, Msg: fmt.Sprintf("more than %d values", MaxValues)}
		}
		vals = append(vals, unescape(v))
	}
	if len(vals) > 1 && op != OpEq && op != OpNe {
		return Cond{}, &Error{Param: "filter", Field: name, Op: op, Msg: "only = and != take several values"}
	}
	return Cond{Field: name, Op: op, Values: vals}, nil
}

// split splits s at unescaped sep.
func split(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes backslash escapes; a trailing lone backslash is kept.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// clip shortens s for error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ParseSort parses a sort expression such as "-created,name". The empty
// string is no explicit order.
func ParseSort(s string) ([]SortKey, error) {
	if len(s) > MaxFilterLen {
		return nil, &Error{Param: "sort", Msg: fmt.Sprintf("longer than %d bytes", MaxFilterLen)}
	}
	var keys []SortKey
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k := SortKey{Field: part}
		switch part[0] {
		case '-':
			k = SortKey{Field: part[1:], Desc: true}
		case '+':
			k.Field = part[1:]
		}
		if k.Field == "" || strings.IndexFunc(k.Field, func(r rune) bool { return r > 127 || !isNameByte(byte(r)) }) >= 0 {
			return nil, &Error{Param: "sort", Msg: fmt.Sprintf("%q is not a field name (a name, optionally prefixed by - for descending)", clip(part))}
		}
		if seen[k.Field] {
			return nil, &Error{Param: "sort", Field: k.Field, Msg: "named twice"}
		}
		seen[k.Field] = true
		if len(keys) == MaxSortKeys {
			return nil, &Error{Param: "sort", Msg: fmt.Sprintf("more than %d fields", MaxSortKeys)}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// EscapeValue escapes a literal value for a filter condition, so that a
// value holding ',', ';' or '\' is read back as written.
func EscapeValue(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r == '\\' || r == ',' || r == ';' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
