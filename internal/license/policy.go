package license

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Policy says which licenses an image may contain.
type Policy struct {
	// Allowed, when not empty, lists the only licenses allowed: SPDX
	// identifiers or path.Match globs ("BSD-*"), matched without regard to
	// case against the identifier and against "ID WITH EXCEPTION".
	Allowed []string `json:"allowed,omitempty" yaml:"allowed,omitempty"`
	// Forbidden lists licenses that are never allowed, in the same form.
	// It wins over Allowed.
	Forbidden []string `json:"forbidden,omitempty" yaml:"forbidden,omitempty"`
	// ForbiddenCategories lists categories ("strong-copyleft",
	// "forbidden", "unknown") whose licenses are not allowed.
	ForbiddenCategories []string `json:"forbiddenCategories,omitempty" yaml:"forbiddenCategories,omitempty"`
}

// Violation is a package whose license breaks a policy.
type Violation struct {
	// Package is the package's key (inventory.Package.Key).
	Package string `json:"package"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    string `json:"type"`
	PURL    string `json:"purl,omitempty"`
	// Expression is the package's license expression.
	Expression string `json:"expression,omitempty"`
	// License is the offending license ("" when the package has none).
	License string `json:"license"`
	// Reason says which rule it breaks.
	Reason string `json:"reason"`
}

// Validate checks that every pattern is a valid glob and every category
// is known.
func (p Policy) Validate() error {
	for _, list := range [][]string{p.Allowed, p.Forbidden} {
		for _, pat := range list {
			if _, err := path.Match(pat, ""); err != nil || strings.TrimSpace(pat) == "" {
				return fmt.Errorf("license policy: invalid license pattern %q", pat)
			}
		}
	}
	for _, c := range p.ForbiddenCategories {
		if !slices.Contains(Categories, Category(c)) {
			return fmt.Errorf("license policy: unknown license category %q (want one of %v)", c, Categories)
		}
	}
	return nil
}

// Check returns the policy's violations in r, in package order. A package
// passes when its expression can be satisfied with allowed licenses: every
// part of an AND must pass, one choice of an OR is enough. When it fails,
// each license that failed is reported. A package without a license is a
// violation when "unknown" is a forbidden category or Allowed is set.
func (p Policy) Check(r *Report) []Violation {
	var out []Violation
	for i := range r.Packages {
		pl := &r.Packages[i]
		v := Violation{
			Package: pl.Key, Name: pl.Name, Version: pl.Version, Type: pl.Type, PURL: pl.PURL,
			Expression: pl.Expression,
		}
		e := pl.expr
		if e == nil && pl.Expression != "" {
			var err error
			if e, err = ParseExpression(pl.Expression); err != nil {
				v.Reason = "license expression cannot be parsed: " + err.Error()
				out = append(out, v)
				continue
			}
		}
		if e == nil {
			if reason := p.noLicense(); reason != "" {
				v.Reason = reason
				out = append(out, v)
			}
			continue
		}
		for _, f := range p.failures(e) {
			v.License, v.Reason = f.license, f.reason
			out = append(out, v)
		}
	}
	return out
}

func (p Policy) noLicense() string {
	switch {
	case slices.Contains(p.ForbiddenCategories, string(Unknown)):
		return "no license found, and category unknown is forbidden"
	case len(p.Allowed) > 0:
		return "no license found, and only allowed licenses may be used"
	}
	return ""
}

type failure struct{ license, reason string }

// failures returns why e cannot be satisfied, nil when it can.
func (p Policy) failures(e *Expr) []failure {
	switch e.Op {
	case OpAnd, OpOr:
		var all []failure
		for _, a := range e.Args {
			f := p.failures(a)
			if e.Op == OpOr && f == nil {
				return nil
			}
			all = append(all, f...)
		}
		return all
	}
	name := e.String()
	if pat := matchAny(p.Forbidden, e); pat != "" {
		return []failure{{name, fmt.Sprintf("%s matches forbidden license %q", name, pat)}}
	}
	if c := leafCategory(e.ID, e.Exception); slices.Contains(p.ForbiddenCategories, string(c)) {
		return []failure{{name, fmt.Sprintf("%s is %s, a forbidden category", name, c)}}
	}
	if len(p.Allowed) > 0 && matchAny(p.Allowed, e) == "" {
		return []failure{{name, name + " is not an allowed license"}}
	}
	return nil
}

// matchAny returns the first pattern that matches the leaf's identifier
// or its "ID WITH EXCEPTION" form, "" when none does.
func matchAny(patterns []string, leaf *Expr) string {
	names := []string{strings.ToLower(leaf.ID)}
	if leaf.Exception != "" {
		names = append(names, strings.ToLower(leaf.String()))
	}
	for _, pat := range patterns {
		lp := strings.ToLower(strings.TrimSpace(pat))
		for _, n := range names {
			if ok, _ := path.Match(lp, n); ok {
				return pat
			}
		}
	}
	return ""
}
