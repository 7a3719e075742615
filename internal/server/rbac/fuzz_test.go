package rbac_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/rbac/rbactest"
)

func FuzzParseGlob(f *testing.F) {
	for _, s := range []string{"registry.example.com/team-a/*", "**", "node-?", "a[b]", "a***", "*.example.com", "\xff", ""} {
		f.Add(s, "registry.example.com/team-a/app")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := rbac.ParseGlob(pattern)
		if err != nil {
			return
		}
		if g.String() != pattern {
			t.Fatalf("String() = %q, want %q", g.String(), pattern)
		}
		re, err := regexp.Compile("(?s)" + g.Regexp()) // PostgreSQL: "." matches newline
		if err != nil {
			t.Fatalf("Regexp() %q does not compile: %v", g.Regexp(), err)
		}
		if got := g.Match(name); got != (name != "" && re.MatchString(name)) {
			t.Fatalf("Match(%q) = %v disagrees with Regexp()", name, got)
		}
		if lit, ok := g.Literal(); ok && (!g.Match(lit) || strings.ContainsAny(lit, "*?")) {
			t.Fatalf("literal %q does not match itself", lit)
		}
		if !strings.Contains(pattern, "**") && strings.Contains(name, "/") && !strings.Contains(pattern, "/") && g.Match(name) {
			t.Fatalf("%q matched %q across '/'", pattern, name)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		`{"name":"team-a","artifacts":{"registries":["r.io"],"images":["r.io/team-a/*"]}}`,
		`{"name":"b","workloads":{"namespaces":["b"],"labels":["team=b"],"containers":["*"]}}`,
		`{"name":"x","infrastructure":{"clusters":["prod-*"],"hosts":["node-?"]}}`,
		`{"name":"Global"}`, `{"name":"x"}`, `{}`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := rbac.ParseScope(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := rbac.ParseScope(out)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %s: %+v, %v", out, again, err)
		}
		// A parsed scope never matches a resource with no attributes.
		for _, rt := range rbac.ResourceTypes() {
			if s.Matches(rt, rbac.Attributes{}) {
				t.Fatalf("scope %s matched empty attributes for %s", out, rt)
			}
		}
	})
}

func FuzzParseRole(f *testing.F) {
	f.Add([]byte(`{"name":"R","permissions":{"images":"edit","users":"view"}}`))
	f.Add([]byte(`{"name":"Administrator","permissions":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rbac.ParseRole(data)
		if err != nil {
			return
		}
		for _, rt := range rbac.ResourceTypes() {
			if r.Allows(rbac.Edit, rt) && !r.Allows(rbac.View, rt) {
				t.Fatalf("edit without view on %s", rt)
			}
		}
	})
}

// FuzzListFilterAgrees checks ListFilter(...).Allows and Decide agree for
// every fixture principal on arbitrary attributes.
func FuzzListFilterAgrees(f *testing.F) {
	f.Add("registry-a.example.com", "registry-a.example.com/team-a/app", "prod", "node-1", "b", "web", "team", "b")
	f.Add("", "", "", "", "", "", "", "")
	ps := rbactest.Principals()
	f.Fuzz(func(t *testing.T, registry, image, cluster, host, ns, container, lk, lv string) {
		a := rbac.Attributes{Registry: registry, Image: image, Cluster: cluster, Host: host, Namespace: ns,
			Container: container, Labels: map[string]string{lk: lv}}
		for name, p := range ps {
			for _, action := range rbac.Actions() {
				for _, rt := range rbac.ResourceTypes() {
					d := rbac.Decide(p.Principal, action, rt, a)
					if got := rbac.ListFilter(p.Principal, action, rt).Allows(a); got != d.Allow {
						t.Fatalf("%s %s %s %v: filter %v, decide %+v", name, action, rt, a, got, d)
					}
				}
			}
		}
	})
}
