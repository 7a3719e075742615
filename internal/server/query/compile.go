package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a filterable field.
type Type int

// The field types.
const (
	String Type = iota
	Enum
	Int
	Bool
	Time
	Float
)

func (t Type) String() string {
	return [...]string{"string", "enum", "int", "bool", "time", "float"}[t]
}

// Field is one whitelisted field of a resource.
type Field struct {
	// Name is the name clients use.
	Name string
	// Column is the SQL expression the field maps to, written by the
	// programmer (never taken from input).
	Column string
	Type   Type
	// Values are the allowed values of an Enum, in ascending sort order.
	// When Ordinal is set the column stores the value's index in Values
	// (so that sorting by it sorts by rank); otherwise the value itself.
	Values  []string
	Ordinal bool
	// NoSort excludes the field from sorting (sortable columns must be NOT
	// NULL for keyset pagination).
	NoSort bool
}

// Schema is the whitelist of one resource's fields.
type Schema struct {
	// Resource names the resource in errors ("vulnerabilities").
	Resource string
	Fields   []Field
	// ID is the unique, NOT NULL integer column that ends every order so
	// that keyset pagination is total.
	ID string
	// StringID says the ID column is text rather than an integer.
	StringID bool
}

// Field returns the field named name.
func (s *Schema) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func (s *Schema) names(sortable bool) string {
	var n []string
	for _, f := range s.Fields {
		if !sortable || !f.NoSort {
			n = append(n, f.Name)
		}
	}
	return strings.Join(n, ", ")
}

// Dialect is an SQL dialect's placeholder style.
type Dialect int

// The dialects.
const (
	// SQLite uses ? placeholders.
	SQLite Dialect = iota
	// Postgres uses $1, $2, ... placeholders.
	Postgres
)

// Args collects bound arguments and writes their placeholders.
type Args struct {
	Dialect Dialect
	Values  []any
}

// Add binds v and returns its placeholder.
func (a *Args) Add(v any) string {
	a.Values = append(a.Values, v)
	if a.Dialect == Postgres {
		return "$" + strconv.Itoa(len(a.Values))
	}
	return "?"
}

// Compile validates f against the schema and returns an SQL boolean
// expression ("1=1" for the empty filter) whose values are bound in args.
func (s *Schema) Compile(f Filter, args *Args) (string, error) {
	if len(f.Conds) == 0 {
		return "1=1", nil
	}
	var parts []string
	for _, c := range f.Conds {
		p, err := s.compileCond(c, args)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " AND "), nil
}

func (s *Schema) compileCond(c Cond, args *Args) (string, error) {
	fd, ok := s.Field(c.Field)
	if !ok {
		return "", &Error{Param: "filter", Field: c.Field, Msg: fmt.Sprintf("unknown field for %s (known: %s)", s.Resource, s.names(false))}
	}
	bad := func(msg string, a ...any) error {
		return &Error{Param: "filter", Field: c.Field, Op: c.Op, Msg: fmt.Sprintf(msg, a...)}
	}
	switch c.Op {
	case OpContains, OpNotContains:
		if fd.Type != String {
			return "", bad("applies to string fields only; %s is %s", c.Field, fd.Type)
		}
		not := ""
		if c.Op == OpNotContains {
			not = "NOT "
		}
		pat := "%" + escapeLike(strings.ToLower(c.Values[0])) + "%"
		return fmt.Sprintf("%sLOWER(%s) LIKE %s ESCAPE '\\'", not, fd.Column, args.Add(pat)), nil
	case OpLt, OpLe, OpGt, OpGe:
		if fd.Type == String || fd.Type == Bool {
			return "", bad("does not apply to %s fields", fd.Type)
		}
	}
	vals := make([]string, 0, len(c.Values))
	for _, raw := range c.Values {
		v, err := convert(fd, raw)
		if err != nil {
			return "", bad("%v", err)
		}
		vals = append(vals, args.Add(v))
	}
	switch {
	case len(vals) == 1:
		return fmt.Sprintf("%s %s %s", fd.Column, c.Op, vals[0]), nil
	case c.Op == OpEq:
		return fmt.Sprintf("%s IN (%s)", fd.Column, strings.Join(vals, ", ")), nil
	default:
		return fmt.Sprintf("%s NOT IN (%s)", fd.Column, strings.Join(vals, ", ")), nil
	}
}

// convert turns a value as written into the value bound for the column.
func convert(fd Field, raw string) (any, error) {
	switch fd.Type {
	case String:
		return raw, nil
	case Enum:
		for i, v := range fd.Values {
			if strings.EqualFold(v, raw) {
				if fd.Ordinal {
					return int64(i), nil
				}
				return v, nil
			}
		}
		return nil, fmt.Errorf("value %q is not one of %s", clip(raw), strings.Join(fd.Values, ", "))
	case Int:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q is not an integer", clip(raw))
		}
		return n, nil
	case Float:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("value %q is not a number", clip(raw))
		}
		return f, nil
	case Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("value %q is not true or false", clip(raw))
		}
		return b, nil
	case Time:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.Parse(layout, raw); err == nil {
				return t.UnixMicro(), nil
			}
		}
		return nil, fmt.Errorf("value %q is not a time (RFC 3339 or YYYY-MM-DD)", clip(raw))
	}
	return nil, fmt.Errorf("field of unknown type")
}

// escapeLike escapes the LIKE wildcards of s with '\'.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// GlobToLike turns a glob with * and ? into a LIKE pattern (escape '\').
func GlobToLike(glob string) string {
	return strings.NewReplacer("*", "%", "?", "_").Replace(escapeLike(glob))
}

// Order is a validated sort order ending in the schema's ID column.
type Order struct {
	fields []Field
	desc   []bool
}

// Order validates keys against the schema; def is used when keys is empty.
func (s *Schema) Order(keys, def []SortKey) (*Order, error) {
	if len(keys) == 0 {
		keys = def
	}
	o := &Order{}
	for _, k := range keys {
		fd, ok := s.Field(k.Field)
		if !ok || fd.NoSort {
			return nil, &Error{Param: "sort", Field: k.Field, Msg: fmt.Sprintf("cannot sort %s by it (sortable: %s)", s.Resource, s.names(true))}
		}
		o.fields = append(o.fields, fd)
		o.desc = append(o.desc, k.Desc)
	}
	last := len(o.desc) > 0 && o.desc[len(o.desc)-1]
	idType := Int
	if s.StringID {
		idType = String
	}
	o.fields = append(o.fields, Field{Name: "id", Column: s.ID, Type: idType})
	o.desc = append(o.desc, last)
	return o, nil
}

// Columns returns the ordered columns, for the select list: a cursor is
// made of their values in the last row of a page.
func (o *Order) Columns() []string {
	c := make([]string, len(o.fields))
	for i, f := range o.fields {
		c[i] = f.Column
	}
	return c
}

// SQL returns the ORDER BY list.
func (o *Order) SQL() string {
	var b strings.Builder
	for i, f := range o.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Column)
		if o.desc[i] {
			b.WriteString(" DESC")
		}
	}
	return b.String()
}

// After returns the keyset condition selecting rows after the row whose
// ordered column values are vals (as decoded by DecodeCursor). (A
// separate bound on the leading column was measured to slow SQLite down.)
func (o *Order) After(vals []any, args *Args) string {
	var ors []string
	for i := range o.fields {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, fmt.Sprintf("%s = %s", o.fields[j].Column, args.Add(vals[j])))
		}
		op := ">"
		if o.desc[i] {
			op = "<"
		}
		ands = append(ands, fmt.Sprintf("%s %s %s", o.fields[i].Column, op, args.Add(vals[i])))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// storedKind is how a field's values are stored: 'i' int64, 'f' float64,
// 'b' bool, 's' string.
func storedKind(f Field) byte {
	switch {
	case f.Type == Int || f.Type == Time || f.Type == Enum && f.Ordinal:
		return 'i'
	case f.Type == Bool:
		return 'b'
	case f.Type == Float:
		return 'f'
	}
	return 's'
}

// kinds returns the stored kinds of the order's fields.
func (o *Order) kinds() []byte {
	k := make([]byte, len(o.fields))
	for i, f := range o.fields {
		k[i] = storedKind(f)
	}
	return k
}
