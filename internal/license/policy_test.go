package license

import (
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

func policyReport(exprs ...string) *Report {
	var pkgs []inventory.Package
	for i, e := range exprs {
		p := inventory.Package{Name: string(rune('a' + i)), Version: "1", Type: inventory.TypeNPM}
		if e != "" {
			p.Licenses = []string{e}
		}
		pkgs = append(pkgs, p)
	}
	return Analyze(&inventory.Report{Packages: pkgs})
}

func TestPolicyCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy Policy
		expr   string
		want   []string // offending license: reason fragment
	}{
		{"no rules", Policy{}, "GPL-3.0-only", nil},
		{"forbidden id", Policy{Forbidden: []string{"GPL-3.0-only"}}, "GPL-3.0-only", []string{"GPL-3.0-only: matches forbidden"}},
		{"forbidden glob", Policy{Forbidden: []string{"gpl-*"}}, "GPL-2.0-or-later", []string{"GPL-2.0-or-later: matches forbidden"}},
		{"glob does not reach LGPL", Policy{Forbidden: []string{"GPL-*"}}, "LGPL-2.1-only", nil},
		{"OR with one good choice", Policy{Forbidden: []string{"GPL-*"}}, "MIT OR GPL-2.0-only", nil},
		{"OR with no good choice", Policy{Forbidden: []string{"GPL-*", "AGPL-*"}}, "AGPL-3.0-only OR GPL-3.0-only",
			[]string{"AGPL-3.0-only: matches forbidden", "GPL-3.0-only: matches forbidden"}},
		{"AND with one bad part", Policy{Forbidden: []string{"GPL-*"}}, "MIT AND GPL-2.0-only", []string{"GPL-2.0-only: matches forbidden"}},
		{"category", Policy{ForbiddenCategories: []string{"strong-copyleft"}}, "MIT AND AGPL-3.0-only", []string{"AGPL-3.0-only: is strong-copyleft"}},
		{"category OR", Policy{ForbiddenCategories: []string{"strong-copyleft"}}, "LGPL-2.1-or-later OR GPL-2.0-or-later", nil},
		{"exception relaxes", Policy{ForbiddenCategories: []string{"strong-copyleft"}}, "GPL-2.0-only WITH Classpath-exception-2.0", nil},
		{"forbidden category", Policy{ForbiddenCategories: []string{"forbidden"}}, "WTFPL", []string{"WTFPL: is forbidden"}},
		{"allow list", Policy{Allowed: []string{"MIT", "BSD-*", "Apache-2.0"}}, "MIT AND ISC", []string{"ISC: is not an allowed"}},
		{"allow list OR", Policy{Allowed: []string{"MIT"}}, "GPL-3.0-only OR MIT", nil},
		{"allow with exception form", Policy{Allowed: []string{"MIT", "GPL-2.0-only WITH Classpath-exception-2.0"}}, "GPL-2.0-only WITH Classpath-exception-2.0", nil},
		{"forbidden wins over allowed", Policy{Allowed: []string{"*"}, Forbidden: []string{"SSPL-1.0"}}, "SSPL-1.0", []string{"SSPL-1.0: matches forbidden"}},
		{"no license, unknown forbidden", Policy{ForbiddenCategories: []string{"unknown"}}, "", []string{": no license found"}},
		{"no license, allow list", Policy{Allowed: []string{"MIT"}}, "", []string{": no license found"}},
		{"no license, no rule", Policy{Forbidden: []string{"GPL-*"}}, "", nil},
		{"unrecognized is unknown", Policy{ForbiddenCategories: []string{"unknown"}}, "Some EULA", []string{"LicenseRef-Some-EULA-"}},
	} {
		if err := c.policy.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		vs := c.policy.Check(policyReport("MIT", c.expr))
		var got []string
		for _, v := range vs {
			if v.Name != "b" || v.Type != inventory.TypeNPM || v.Package == "" {
				t.Errorf("%s: violation for the wrong package: %+v", c.name, v)
			}
			got = append(got, v.License+": "+v.Reason)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			lic, frag, _ := strings.Cut(c.want[i], ": ")
			if !strings.HasPrefix(got[i], lic) || !strings.Contains(got[i], frag) && !strings.HasPrefix(got[i], c.want[i]) {
				t.Errorf("%s: %q, want %q", c.name, got[i], c.want[i])
			}
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		p   Policy
		err string
	}{
		{Policy{Allowed: []string{"MIT", "BSD-*"}, ForbiddenCategories: []string{"forbidden", "unknown"}}, ""},
		{Policy{Forbidden: []string{"GPL-[2"}}, `invalid license pattern "GPL-[2"`},
		{Policy{Allowed: []string{" "}}, "invalid license pattern"},
		{Policy{ForbiddenCategories: []string{"copyleft"}}, `unknown license category "copyleft"`},
	} {
		err := c.p.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Validate(%+v) = %v, want %q", c.p, err, c.err)
		}
	}
}

func TestPolicyCheckParsedExpression(t *testing.T) {
	// A report read back from JSON has no parsed expressions.
	r := &Report{Packages: []PackageLicense{{Key: "k", Name: "x", Expression: "MIT AND GPL-2.0-only"}, {Key: "j", Name: "y", Expression: "MIT AND ("}}}
	vs := Policy{Forbidden: []string{"GPL-2.0-only"}}.Check(r)
	if len(vs) != 2 || vs[0].License != "GPL-2.0-only" || !strings.Contains(vs[1].Reason, "cannot be parsed") {
		t.Errorf("Check = %+v", vs)
	}
}
