package rbac

import (
	"slices"
	"strings"
)

// FilterKind says how a list query must be restricted.
type FilterKind string

// The filter kinds.
const (
	// FilterAll: no restriction; return every row.
	FilterAll FilterKind = "all"
	// FilterNone: return no row (the store may skip the query).
	FilterNone FilterKind = "none"
	// FilterScoped: return the rows satisfying at least one clause of
	// Filter.Any.
	FilterScoped FilterKind = "scoped"
)

// Filter is what a list query of one resource type must be restricted to,
// in disjunctive normal form:
//
//	visible(row) = OR over Any of ( AND over Clause.All of Condition )
//
// A Condition on a glob attribute holds when the row's attribute value is
// non-empty and matches at least one of the globs (Glob.Literal for "=",
// Glob.Regexp for PostgreSQL "~"). A label Condition holds when the row
// carries the label key with exactly the value. A condition on an
// attribute the resource type has no column for is false.
type Filter struct {
	Kind FilterKind
	// Reason explains a FilterNone (or which binding gave FilterAll).
	Reason string
	// Any holds the clauses of a FilterScoped filter; it is empty for the
	// other kinds.
	Any []Clause
}

// Clause is a conjunction of conditions derived from one scope category
// (or, for a restricted token, from a binding scope and a restriction
// scope together).
type Clause struct {
	// Scope names the scope(s) the clause comes from, for debugging.
	Scope string
	All   []Condition
}

// Condition restricts one attribute.
type Condition struct {
	Attr Attr
	// Globs are alternatives (OR), for every Attr but AttrLabel.
	Globs []Glob
	// Label is the exact label required when Attr is AttrLabel.
	Label Label
}

// Matches reports whether a satisfies c.
func (c Condition) Matches(a Attributes) bool {
	if c.Attr == AttrLabel {
		v, ok := a.Labels[c.Label.Key]
		return ok && v == c.Label.Value
	}
	v := a.get(c.Attr)
	return slices.ContainsFunc(c.Globs, func(g Glob) bool { return g.Match(v) })
}

// Matches reports whether a satisfies every condition of c.
func (c Clause) Matches(a Attributes) bool {
	if len(c.All) == 0 {
		return false
	}
	for _, cond := range c.All {
		if !cond.Matches(a) {
			return false
		}
	}
	return true
}

// Allows reports whether a row with attributes a is visible under f; it
// evaluates the same expression a store compiles to SQL.
func (f Filter) Allows(a Attributes) bool {
	switch f.Kind {
	case FilterAll:
		return true
	case FilterScoped:
		return slices.ContainsFunc(f.Any, func(c Clause) bool { return c.Matches(a) })
	}
	return false
}

// ListFilter returns what a list of resources of type t must be restricted
// to for p to perform action on each row. For every row,
// ListFilter(p, action, t).Allows(attrs) equals Decide(p, action, t,
// attrs).Allow.
func ListFilter(p Principal, action Action, t ResourceType) Filter {
	d := Decide(p, action, t, Attributes{})
	if d.Allow && ClassOf(t) != ClassScoped {
		return Filter{Kind: FilterAll, Reason: d.Reason}
	}
	if !action.Valid() || !t.Valid() || p.Disabled || len(p.Bindings) == 0 ||
		(p.Restriction != nil && !p.Restriction.Permissions.Allows(action, t)) || ClassOf(t) != ClassScoped {
		return Filter{Kind: FilterNone, Reason: d.Reason}
	}
	var f Filter
	for _, b := range p.Bindings {
		if b.Role.Allows(action, t) {
			f = union(f, scopeFilter(b.Scopes, t))
		}
	}
	if r := p.Restriction; r != nil && len(r.Scopes) > 0 {
		f = intersect(f, scopeFilter(r.Scopes, t))
	}
	if f.Kind != FilterAll && len(f.Any) == 0 {
		return Filter{Kind: FilterNone, Reason: d.Reason}
	}
	return f
}

// scopeFilter returns the filter matching what scopes cover for the
// scoped resource type t.
func scopeFilter(scopes []ApplicationScope, t ResourceType) Filter {
	f := Filter{Kind: FilterNone}
	for _, s := range scopes {
		if s.IsGlobal() {
			return Filter{Kind: FilterAll, Reason: "scope " + s.Name}
		}
		f.Any = append(f.Any, s.clauses(t)...)
	}
	if len(f.Any) > 0 {
		f.Kind = FilterScoped
	}
	return f
}

func union(a, b Filter) Filter {
	switch {
	case a.Kind == FilterAll:
		return a
	case b.Kind == FilterAll:
		return b
	case len(a.Any)+len(b.Any) == 0:
		return Filter{Kind: FilterNone}
	}
	return Filter{Kind: FilterScoped, Any: append(slices.Clone(a.Any), b.Any...)}
}

func intersect(a, b Filter) Filter {
	switch {
	case a.Kind == FilterAll:
		return b
	case b.Kind == FilterAll:
		return a
	}
	var out []Clause
	for _, x := range a.Any {
		for _, y := range b.Any {
			out = append(out, Clause{
				Scope: strings.Join([]string{x.Scope, y.Scope}, "∩"),
				All:   append(slices.Clone(x.All), y.All...),
			})
		}
	}
	if len(out) == 0 {
		return Filter{Kind: FilterNone}
	}
	return Filter{Kind: FilterScoped, Any: out}
}
