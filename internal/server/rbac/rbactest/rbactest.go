// Package rbactest holds the authorization fixtures shared by the rbac
// tests and the server's per-route authorization tests: principals,
// sample resources, and the expected decision for every combination.
//
// The expectations are written out per principal from the fixture's
// intent, not computed with the rbac package, so they check it. To extend
// the table, add a principal to Principals with its expectation function,
// or a resource to Resources and to the membership sets below.
package rbactest

import (
	"slices"

	"github.com/mamorisec/mamori/internal/server/rbac"
)

// Registry host names of the fixtures.
const (
	RegistryA = "registry-a.example.com"
	RegistryB = "registry-b.example.com"
)

// TeamEditor is a custom role: edit images, scans, vulnerabilities and
// exceptions, view registries and policies.
var TeamEditor = rbac.Role{
	Name: "Team Editor",
	Permissions: rbac.Permissions{
		rbac.Images: rbac.Edit, rbac.Scans: rbac.Edit, rbac.Vulnerabilities: rbac.Edit, rbac.Exceptions: rbac.Edit,
		rbac.Registries: rbac.View, rbac.AssurancePolicies: rbac.View, rbac.RuntimePolicies: rbac.View,
	},
}

// ScopeTeamA covers registry A's repositories directly under team-a/.
var ScopeTeamA = rbac.ApplicationScope{
	Name: "team-a",
	Artifacts: rbac.Artifacts{
		Registries: []rbac.Glob{rbac.MustGlob(RegistryA)},
		Images:     []rbac.Glob{rbac.MustGlob(RegistryA + "/team-a/*")},
	},
}

// ScopeTeamB covers workloads in namespace b.
var ScopeTeamB = rbac.ApplicationScope{
	Name:      "team-b",
	Workloads: rbac.Workloads{Namespaces: []rbac.Glob{rbac.MustGlob("b")}},
}

// Resource is a named sample object.
type Resource struct {
	Name  string
	Attrs rbac.Attributes
}

// Resources returns the sample resources. Attributes irrelevant to a
// resource type are ignored by the model, so every resource is checked
// against every resource type.
func Resources() []Resource {
	return []Resource{
		{"team-a-app", rbac.Attributes{Registry: RegistryA, Image: RegistryA + "/team-a/app", Cluster: "prod", Host: "node-1",
			Namespace: "a", Container: "app", Labels: map[string]string{"team": "a"}}},
		// "*" does not cross "/": a nested repository is outside team-a.
		{"team-a-nested", rbac.Attributes{Registry: RegistryA, Image: RegistryA + "/team-a/sub/app"}},
		{"team-x-app", rbac.Attributes{Registry: RegistryA, Image: RegistryA + "/team-x/app"}},
		{"ns-b-workload", rbac.Attributes{Registry: RegistryB, Image: RegistryB + "/lib/web", Namespace: "b",
			Container: "web", Labels: map[string]string{"team": "b"}}},
		{"registry-a", rbac.Attributes{Registry: RegistryA}},
		{"registry-b", rbac.Attributes{Registry: RegistryB}},
		{"enforcer-prod", rbac.Attributes{Cluster: "prod", Host: "node-1"}},
		{"none", rbac.Attributes{}},
	}
}

// inScope lists, per scope and resource type, the resources the scope
// covers. Resource types absent from a scope's map are covered for no
// resource.
var inScope = map[string]map[rbac.ResourceType][]string{
	"team-a": {
		rbac.Images: {"team-a-app"}, rbac.Scans: {"team-a-app"}, rbac.Vulnerabilities: {"team-a-app"}, rbac.Exceptions: {"team-a-app"},
		// Registries are matched on the registry name only.
		rbac.Registries: {"team-a-app", "team-a-nested", "team-x-app", "registry-a"},
	},
	"team-b": {
		rbac.Images: {"ns-b-workload"}, rbac.Scans: {"ns-b-workload"}, rbac.Vulnerabilities: {"ns-b-workload"}, rbac.Exceptions: {"ns-b-workload"},
	},
}

func covers(scope string, t rbac.ResourceType, resource string) bool {
	return slices.Contains(inScope[scope][t], resource)
}

// Expectation is the expected decision: Allow, and a substring of the
// decision's reason.
type Expectation struct {
	Allow  bool
	Reason string
}

// Reason substrings of the expectations.
const (
	ViaGlobal        = "via scope Global"
	NoRoleGrants     = "no role grants"
	NoMatch          = "do not match"
	NotGlobal        = "are not Global"
	Disabled         = "is disabled"
	NoBindings       = "has no role bindings"
	TokenPermissions = "token restriction does not allow"
	TokenScopes      = "token restriction scopes"
)

var (
	allow = func(reason string) Expectation { return Expectation{Allow: true, Reason: reason} }
	deny  = func(reason string) Expectation { return Expectation{Reason: reason} }
)

// scoped is the expectation for a role that grants the action, bound to
// scope, on a resource.
func scoped(scope string, action rbac.Action, t rbac.ResourceType, resource string) Expectation {
	switch rbac.ClassOf(t) {
	case rbac.ClassScoped:
		if covers(scope, t, resource) {
			return allow("via scope " + scope)
		}
		return deny(NoMatch)
	case rbac.ClassShared:
		if action == rbac.View {
			return allow("via scope " + scope)
		}
	}
	return deny(NotGlobal)
}

// Principal is a fixture principal with its expected decisions.
type Principal struct {
	Principal rbac.Principal
	Expect    func(action rbac.Action, t rbac.ResourceType, resource string) Expectation
}

func user(name string, bindings ...rbac.Binding) rbac.Principal {
	return rbac.Principal{Kind: rbac.KindUser, ID: "u-" + name, Name: name, Bindings: bindings}
}

func bind(role rbac.Role, scopes ...rbac.ApplicationScope) rbac.Binding {
	return rbac.Binding{Role: role, Scopes: scopes, Source: "user"}
}

func builtin(name string) rbac.Role {
	r, ok := rbac.BuiltinRole(name)
	if !ok {
		panic("rbactest: no built-in role " + name)
	}
	return r
}

func allOf(a rbac.Action) rbac.Permissions {
	p := rbac.Permissions{}
	for _, t := range rbac.ResourceTypes() {
		p[t] = a
	}
	return p
}

// Principals returns the fixture principals by name.
func Principals() map[string]Principal {
	admin := user("admin", bind(builtin(rbac.RoleAdministrator), rbac.GlobalScope))
	viewToken := admin
	viewToken.Kind, viewToken.ID, viewToken.Name = rbac.KindToken, "t-admin-view", "admin-view-token"
	viewToken.Restriction = &rbac.Restriction{Permissions: allOf(rbac.View)}
	teamAToken := admin
	teamAToken.Kind, teamAToken.ID, teamAToken.Name = rbac.KindToken, "t-admin-team-a", "admin-team-a-token"
	teamAToken.Restriction = &rbac.Restriction{Permissions: allOf(rbac.Edit), Scopes: []rbac.ApplicationScope{ScopeTeamA}}
	disabled := user("disabled", bind(builtin(rbac.RoleAdministrator), rbac.GlobalScope))
	disabled.Disabled = true

	viewer, scanner := builtin(rbac.RoleViewer), builtin(rbac.RoleScanner)
	return map[string]Principal{
		"admin": {admin, func(rbac.Action, rbac.ResourceType, string) Expectation { return allow(ViaGlobal) }},
		"auditor": {user("auditor", bind(builtin(rbac.RoleAuditor), rbac.GlobalScope)), func(a rbac.Action, _ rbac.ResourceType, _ string) Expectation {
			if a == rbac.View {
				return allow(ViaGlobal)
			}
			return deny(NoRoleGrants)
		}},
		"scanner": {user("scanner", bind(builtin(rbac.RoleScanner), rbac.GlobalScope)), func(a rbac.Action, t rbac.ResourceType, _ string) Expectation {
			if scanner.Allows(a, t) {
				return allow(ViaGlobal)
			}
			return deny(NoRoleGrants)
		}},
		"team-a-editor": {user("team-a-editor", bind(TeamEditor, ScopeTeamA)), func(a rbac.Action, t rbac.ResourceType, r string) Expectation {
			if !TeamEditor.Allows(a, t) {
				return deny(NoRoleGrants)
			}
			return scoped("team-a", a, t, r)
		}},
		"team-b-viewer": {user("team-b-viewer", bind(builtin(rbac.RoleViewer), ScopeTeamB)), func(a rbac.Action, t rbac.ResourceType, r string) Expectation {
			if !viewer.Allows(a, t) {
				return deny(NoRoleGrants)
			}
			return scoped("team-b", a, t, r)
		}},
		// Viewer everywhere, and Team Editor on team-a.
		"multi": {user("multi", bind(builtin(rbac.RoleViewer), rbac.GlobalScope), bind(TeamEditor, ScopeTeamA)), func(a rbac.Action, t rbac.ResourceType, r string) Expectation {
			switch {
			case viewer.Allows(a, t):
				return allow(ViaGlobal)
			case TeamEditor.Allows(a, t):
				return scoped("team-a", a, t, r)
			}
			return deny(NoRoleGrants)
		}},
		"admin-view-token": {viewToken, func(a rbac.Action, _ rbac.ResourceType, _ string) Expectation {
			if a == rbac.View {
				return allow(ViaGlobal)
			}
			return deny(TokenPermissions)
		}},
		"admin-team-a-token": {teamAToken, func(a rbac.Action, t rbac.ResourceType, r string) Expectation {
			e := scoped("team-a", a, t, r)
			if e.Allow {
				// The owner's binding on Global is what grants.
				return allow(ViaGlobal)
			}
			return deny(TokenScopes)
		}},
		"disabled": {disabled, func(rbac.Action, rbac.ResourceType, string) Expectation { return deny(Disabled) }},
		"unbound":  {user("unbound"), func(rbac.Action, rbac.ResourceType, string) Expectation { return deny(NoBindings) }},
	}
}

// Case is one row of the decision table.
type Case struct {
	Principal    string
	Action       rbac.Action
	ResourceType rbac.ResourceType
	Resource     Resource
	Want         Expectation
}

// Cases returns every principal × action × resource type × resource, in
// a fixed order.
func Cases() []Case {
	ps := Principals()
	var names []string
	for n := range ps {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Case
	for _, n := range names {
		for _, a := range rbac.Actions() {
			for _, t := range rbac.ResourceTypes() {
				for _, r := range Resources() {
					out = append(out, Case{Principal: n, Action: a, ResourceType: t, Resource: r, Want: ps[n].Expect(a, t, r.Name)})
				}
			}
		}
	}
	return out
}
