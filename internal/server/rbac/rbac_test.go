package rbac_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/rbac/rbactest"
)

func TestDecideTable(t *testing.T) {
	ps := rbactest.Principals()
	cases := rbactest.Cases()
	if len(cases) < 1000 {
		t.Fatalf("only %d cases; the fixture table shrank", len(cases))
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%s/%s/%s", c.Principal, c.Action, c.ResourceType, c.Resource.Name)
		p := ps[c.Principal].Principal
		d := rbac.Decide(p, c.Action, c.ResourceType, c.Resource.Attrs)
		if d.Allow != c.Want.Allow || !strings.Contains(d.Reason, c.Want.Reason) {
			t.Errorf("%s: Decide = %+v, want allow=%v reason containing %q", name, d, c.Want.Allow, c.Want.Reason)
		}
		if d.Allow == (d.Binding == "") {
			t.Errorf("%s: Decide = %+v: Binding must be set exactly when allowed", name, d)
		}
		f := rbac.ListFilter(p, c.Action, c.ResourceType)
		if got := f.Allows(c.Resource.Attrs); got != d.Allow {
			t.Errorf("%s: ListFilter (%+v).Allows = %v, Decide.Allow = %v", name, f, got, d.Allow)
		}
	}
}

func TestDecideInvalid(t *testing.T) {
	admin := rbactest.Principals()["admin"].Principal
	for _, tc := range []struct {
		action rbac.Action
		t      rbac.ResourceType
		reason string
	}{
		{"scan", rbac.Images, `unknown action "scan"`},
		{rbac.View, "secrets", `unknown resource type "secrets"`},
		{"", "", "unknown action"},
	} {
		d := rbac.Decide(admin, tc.action, tc.t, rbac.Attributes{})
		if d.Allow || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("Decide(%q, %q) = %+v, want denial %q", tc.action, tc.t, d, tc.reason)
		}
		if f := rbac.ListFilter(admin, tc.action, tc.t); f.Kind != rbac.FilterNone {
			t.Errorf("ListFilter(%q, %q) = %+v, want none", tc.action, tc.t, f)
		}
	}
}

func TestDecideReasonNamesScopes(t *testing.T) {
	p := rbactest.Principals()["team-a-editor"].Principal
	d := rbac.Decide(p, rbac.Edit, rbac.Images, rbac.Attributes{Registry: rbactest.RegistryA, Image: rbactest.RegistryA + "/team-x/app"})
	want := `user "team-a-editor": roles granting edit on images are bound to scopes that do not match registry="registry-a.example.com" image="registry-a.example.com/team-x/app": Team Editor on scopes (team-a)`
	if d.Reason != want {
		t.Errorf("reason\n got %s\nwant %s", d.Reason, want)
	}
	d = rbac.Decide(p, rbac.Edit, rbac.Images, rbac.Attributes{Registry: rbactest.RegistryA, Image: rbactest.RegistryA + "/team-a/app"})
	if d.Binding != "Team Editor@team-a (user)" {
		t.Errorf("binding = %q", d.Binding)
	}
}

func TestListFilterShape(t *testing.T) {
	ps := rbactest.Principals()
	a := rbactest.RegistryA
	teamA := []rbac.Clause{{Scope: "team-a", All: []rbac.Condition{
		{Attr: rbac.AttrRegistry, Globs: []rbac.Glob{rbac.MustGlob(a)}},
		{Attr: rbac.AttrImage, Globs: []rbac.Glob{rbac.MustGlob(a + "/team-a/*")}},
	}}}
	for _, tc := range []struct {
		principal string
		action    rbac.Action
		t         rbac.ResourceType
		kind      rbac.FilterKind
		any       []rbac.Clause
	}{
		{"admin", rbac.Edit, rbac.Images, rbac.FilterAll, nil},
		{"admin", rbac.View, rbac.Users, rbac.FilterAll, nil},
		{"auditor", rbac.Edit, rbac.Images, rbac.FilterNone, nil},
		{"unbound", rbac.View, rbac.Images, rbac.FilterNone, nil},
		{"disabled", rbac.View, rbac.Images, rbac.FilterNone, nil},
		{"team-a-editor", rbac.Edit, rbac.Images, rbac.FilterScoped, teamA},
		{"team-a-editor", rbac.View, rbac.Registries, rbac.FilterScoped, []rbac.Clause{{Scope: "team-a", All: teamA[0].All[:1]}}},
		{"team-a-editor", rbac.View, rbac.AssurancePolicies, rbac.FilterAll, nil},
		{"team-a-editor", rbac.View, rbac.Users, rbac.FilterNone, nil},
		{"team-b-viewer", rbac.View, rbac.Vulnerabilities, rbac.FilterScoped, []rbac.Clause{{Scope: "team-b", All: []rbac.Condition{
			{Attr: rbac.AttrNamespace, Globs: []rbac.Glob{rbac.MustGlob("b")}}}}}},
		{"team-b-viewer", rbac.View, rbac.Registries, rbac.FilterNone, nil},
		{"multi", rbac.View, rbac.Images, rbac.FilterAll, nil},
		{"multi", rbac.Edit, rbac.Images, rbac.FilterScoped, teamA},
		{"admin-team-a-token", rbac.Edit, rbac.Scans, rbac.FilterScoped, teamA},
		{"admin-view-token", rbac.Edit, rbac.Scans, rbac.FilterNone, nil},
	} {
		f := rbac.ListFilter(ps[tc.principal].Principal, tc.action, tc.t)
		if f.Kind != tc.kind || !reflect.DeepEqual(f.Any, tc.any) {
			t.Errorf("ListFilter(%s, %s, %s) = %+v, want kind %s any %+v", tc.principal, tc.action, tc.t, f, tc.kind, tc.any)
		}
	}
}

func TestListFilterIntersection(t *testing.T) {
	// A token restricted to namespace b, owned by team-a: only rows in
	// both scopes are visible.
	p := rbactest.Principals()["team-a-editor"].Principal
	p.Restriction = &rbac.Restriction{Permissions: rbac.Permissions{rbac.Images: rbac.View}, Scopes: []rbac.ApplicationScope{rbactest.ScopeTeamB}}
	f := rbac.ListFilter(p, rbac.View, rbac.Images)
	if f.Kind != rbac.FilterScoped || len(f.Any) != 1 || f.Any[0].Scope != "team-a∩team-b" || len(f.Any[0].All) != 3 {
		t.Fatalf("ListFilter = %+v, want one clause team-a∩team-b with 3 conditions", f)
	}
	in := rbac.Attributes{Registry: rbactest.RegistryA, Image: rbactest.RegistryA + "/team-a/x", Namespace: "b"}
	out := rbac.Attributes{Registry: rbactest.RegistryA, Image: rbactest.RegistryA + "/team-a/x", Namespace: "c"}
	for _, tc := range []struct {
		a    rbac.Attributes
		want bool
	}{{in, true}, {out, false}} {
		if got := f.Allows(tc.a); got != tc.want {
			t.Errorf("Allows(%v) = %v, want %v", tc.a, got, tc.want)
		}
		if d := rbac.Decide(p, rbac.View, rbac.Images, tc.a); d.Allow != tc.want {
			t.Errorf("Decide(%v) = %+v, want allow=%v", tc.a, d, tc.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"registry.example.com/team-a/*", "registry.example.com/team-a/app", true},
		{"registry.example.com/team-a/*", "registry.example.com/team-a/sub/app", false},
		{"registry.example.com/team-a/*", "registry.example.com/team-a/", true},
		{"registry.example.com/team-a/**", "registry.example.com/team-a/sub/app", true},
		{"registry.example.com/team-a/*", "registryXexample.com/team-a/app", false},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"node-?", "node-1", true},
		{"node-?", "node-12", false},
		{"node-?", "node-/", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"exact", "", false},
		{"**", "", false},
		{"a/**", "a/x\ny", true},
		{"(a|b)+", "(a|b)+", true},
		{"(a|b)+", "a", false},
		{"ü*", "üb", true},
	} {
		g, err := rbac.ParseGlob(tc.pattern)
		if err != nil {
			t.Fatalf("ParseGlob(%q): %v", tc.pattern, err)
		}
		if got := g.Match(tc.name); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v (regexp %s)", tc.pattern, tc.name, got, tc.want, g.Regexp())
		}
	}
	if (rbac.Glob{}).Match("x") {
		t.Error("zero Glob matched")
	}
}

func TestGlobLiteral(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		literal bool
	}{{"registry.example.com", true}, {"a/*", false}, {"a?", false}} {
		got, ok := rbac.MustGlob(tc.pattern).Literal()
		if ok != tc.literal || (ok && got != tc.pattern) {
			t.Errorf("Literal(%q) = %q, %v", tc.pattern, got, ok)
		}
	}
	if got := rbac.MustGlob("r.io/a/*").Regexp(); got != `^r\.io/a/[^/]*$` {
		t.Errorf("Regexp = %s", got)
	}
}

func TestParseGlobErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"", "empty"},
		{strings.Repeat("a", 513), "longer than 512"},
		{"a[bc]", `character '['`},
		{"a{b,c}", `character '{'`},
		{`a\*`, `character '\\'`},
		{"a b", "whitespace"},
		{"a\x00", "control"},
		{"a***", `"***"`},
		{"\xff", "invalid UTF-8"},
	} {
		_, err := rbac.ParseGlob(tc.pattern)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseGlob(%q) error = %v, want containing %q", tc.pattern, err, tc.want)
		}
	}
}

func TestParseLabel(t *testing.T) {
	if l, err := rbac.ParseLabel("app.kubernetes.io/name=web"); err != nil || l != (rbac.Label{Key: "app.kubernetes.io/name", Value: "web"}) {
		t.Errorf("ParseLabel = %+v, %v", l, err)
	}
	if l, err := rbac.ParseLabel("tier="); err != nil || l.Value != "" {
		t.Errorf("ParseLabel(tier=) = %+v, %v", l, err)
	}
	for _, tc := range []struct{ s, want string }{
		{"novalue", "want key=value"},
		{"=v", "key must be"},
		{"k=" + strings.Repeat("v", 64), "longer than 63"},
		{"k=a b", "not allowed"},
		{"k=a=b", "not allowed"},
		{"k*=v", "not allowed"},
	} {
		if _, err := rbac.ParseLabel(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLabel(%q) error = %v, want %q", tc.s, err, tc.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	data := `{"name":"team-a","artifacts":{"registries":["registry-a.example.com"],"images":["registry-a.example.com/team-a/*"]},
		"infrastructure":{"clusters":["prod-*"]},"workloads":{"namespaces":["a"],"labels":["team=a"],"containers":["app-*"]}}`
	s, err := rbac.ParseScope([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rt   rbac.ResourceType
		a    rbac.Attributes
		want bool
	}{
		{rbac.Images, rbac.Attributes{Registry: "registry-a.example.com", Image: "registry-a.example.com/team-a/x"}, true},
		{rbac.Images, rbac.Attributes{Registry: "registry-b.example.com", Image: "registry-a.example.com/team-a/x"}, false},
		{rbac.Images, rbac.Attributes{Cluster: "prod-1"}, true},
		{rbac.Images, rbac.Attributes{Namespace: "a", Container: "app-1", Labels: map[string]string{"team": "a", "x": "y"}}, true},
		{rbac.Images, rbac.Attributes{Namespace: "a", Container: "app-1", Labels: map[string]string{"team": "b"}}, false},
		{rbac.Images, rbac.Attributes{Namespace: "a", Container: "app-1"}, false},
		{rbac.Registries, rbac.Attributes{Registry: "registry-a.example.com"}, true},
		{rbac.Registries, rbac.Attributes{Cluster: "prod-1"}, false},
		{rbac.Enforcers, rbac.Attributes{Cluster: "prod-1"}, true},
		{rbac.Enforcers, rbac.Attributes{Registry: "registry-a.example.com", Image: "registry-a.example.com/team-a/x"}, false},
	} {
		if got := s.Matches(tc.rt, tc.a); got != tc.want {
			t.Errorf("Matches(%s, %v) = %v, want %v", tc.rt, tc.a, got, tc.want)
		}
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rbac.ParseScope(out)
	if err != nil || !reflect.DeepEqual(again, s) {
		t.Errorf("round trip: %+v, %v\nwant %+v", again, err, s)
	}
}

func TestParseScopeErrors(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`{"name":"Global"}`, "reserved"},
		{`{"name":"x"}`, "restricts nothing"},
		{`{"name":"","workloads":{"namespaces":["b"]}}`, "name must be"},
		{`{"name":"x/y","workloads":{"namespaces":["b"]}}`, "not allowed"},
		{`{"name":"x","workloads":{"namespaces":["b["]}}`, "not supported"},
		{`{"name":"x","workloads":{"labels":["b"]}}`, "want key=value"},
		{`{"name":"x","workload":{}}`, "unknown field"},
		{`{"name":"x","workloads":{"namespaces":["b"]}} {}`, "trailing data"},
		{`{"name":"x","workloads":{"namespaces":[""]}}`, "empty"},
		{strings.Repeat(" ", rbac.MaxDefinitionSize+1), "larger than the limit"},
	} {
		if _, err := rbac.ParseScope([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScope(%.60s) error = %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, r := range rbac.BuiltinRoles() {
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		data, _ := json.Marshal(r)
		if _, err := rbac.ParseRole(data); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("ParseRole(built-in %s) error = %v, want reserved", r.Name, err)
		}
	}
	auditor, _ := rbac.BuiltinRole(rbac.RoleAuditor)
	for _, rt := range rbac.ResourceTypes() {
		if !auditor.Allows(rbac.View, rt) || auditor.Allows(rbac.Edit, rt) {
			t.Errorf("Auditor on %s: want view only", rt)
		}
	}
	r, err := rbac.ParseRole([]byte(`{"name":"Registry Admin","permissions":{"registries":"edit","images":"view"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Allows(rbac.View, rbac.Registries) || !r.Allows(rbac.Edit, rbac.Registries) || r.Allows(rbac.Edit, rbac.Images) || r.Allows(rbac.View, rbac.Users) {
		t.Errorf("custom role permissions wrong: %v", r.Permissions)
	}
	for _, tc := range []struct{ data, want string }{
		{`{"name":"x","permissions":{"secrets":"view"}}`, `unknown resource type "secrets"`},
		{`{"name":"x","permissions":{"images":"scan"}}`, `unknown action "scan"`},
		{`{"name":"x","permissions":{},"extra":1}`, "unknown field"},
		{`{"name":" x","permissions":{}}`, "leading or trailing"},
		{`[]`, "cannot unmarshal"},
	} {
		if _, err := rbac.ParseRole([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRole(%s) error = %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestCatalogResolve(t *testing.T) {
	c, err := rbac.NewCatalog([]rbac.Role{rbactest.TeamEditor}, []rbac.ApplicationScope{rbactest.ScopeTeamA})
	if err != nil {
		t.Fatal(err)
	}
	mappings := []rbac.GroupMapping{
		{Group: "cn=ops,ou=groups,dc=example,dc=com", Binding: rbac.BindingRef{Role: rbac.RoleAdministrator, Scopes: []string{rbac.GlobalScopeName}}},
		{Group: "team-a", Binding: rbac.BindingRef{Role: "Team Editor", Scopes: []string{"team-a"}}},
	}
	refs := append([]rbac.BindingRef{{Role: rbac.RoleViewer, Scopes: []string{"Global"}, Source: "user"}},
		rbac.BindingsForGroups(mappings, []string{"team-a", "unrelated"})...)
	bs, err := c.Resolve(refs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name())
	}
	if want := []string{"Viewer@Global (user)", "Team Editor@team-a (group:team-a)"}; !reflect.DeepEqual(names, want) {
		t.Errorf("bindings = %q, want %q", names, want)
	}
	for _, tc := range []struct {
		ref  rbac.BindingRef
		want string
	}{
		{rbac.BindingRef{Role: "nope", Scopes: []string{"Global"}}, `no such role`},
		{rbac.BindingRef{Role: rbac.RoleViewer, Scopes: []string{"nope"}}, `no such application scope "nope"`},
		{rbac.BindingRef{Role: rbac.RoleViewer}, "no application scope"},
	} {
		if _, err := c.Resolve([]rbac.BindingRef{tc.ref}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%+v) error = %v, want %q", tc.ref, err, tc.want)
		}
	}
	if _, err := rbac.NewCatalog([]rbac.Role{{Name: rbac.RoleViewer}}, nil); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("NewCatalog with duplicate role: %v", err)
	}
	if _, err := rbac.NewCatalog(nil, []rbac.ApplicationScope{{Name: "empty"}}); err == nil || !strings.Contains(err.Error(), "restricts nothing") {
		t.Errorf("NewCatalog with empty scope: %v", err)
	}
}
