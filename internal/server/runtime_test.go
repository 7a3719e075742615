package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/store"
)

// TestRuntimePolicyAPI exercises import, export, enable and the
// revision an agent sees.
func TestRuntimePolicyAPI(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	rev := func() int64 {
		r, err := f.srv.db.FleetRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r0 := rev()
	pols := []runtimepolicy.Policy{runtimePolicy("a", true), runtimePolicy("b", false, "team-a")}
	code, body := f.do("admin", "POST", "/api/v1/runtime-policies/import", pols)
	if code != http.StatusOK {
		t.Fatalf("import: %d %s", code, body)
	}
	if rev() != r0+2 {
		t.Errorf("import of two policies: revision %d → %d", r0, rev())
	}
	// A bad policy in an import stores nothing.
	bad := append(pols, runtimepolicy.Policy{Name: "bad name!", Mode: "audit"})
	if code, body := f.do("admin", "POST", "/api/v1/runtime-policies/import", bad); code != http.StatusBadRequest || !strings.Contains(string(body), api.CodeInvalidPolicy) {
		t.Errorf("import with a bad policy: %d %s", code, body)
	}
	if code, _ := f.do("admin", "POST", "/api/v1/runtime-policies/import", runtimePolicy("single", true)); code != http.StatusBadRequest {
		t.Errorf("import of an object: %d", code)
	}
	if code, _ := f.do("admin", "POST", "/api/v1/runtime-policies", map[string]any{"name": "x", "mode": "audit", "controls": map[string]any{}, "unknown": 1}); code != http.StatusBadRequest {
		t.Errorf("policy with an unknown field: %d", code)
	}
	if code, _ := f.do("admin", "PUT", "/api/v1/runtime-policies/a", runtimePolicy("b", true)); code != http.StatusBadRequest {
		t.Errorf("PUT with another name: %d", code)
	}
	var exported []runtimepolicy.Policy
	f.get("dave", "/api/v1/runtime-policies/export", &exported)
	if len(exported) != 2 || exported[0].Name != "a" || exported[1].Scopes[0] != "team-a" || exported[0].Created.IsZero() {
		t.Fatalf("export: %+v", exported)
	}
	b, _ := json.Marshal(exported)
	if _, err := runtimepolicy.ParseBundle(b); err != nil {
		t.Errorf("the export does not parse back: %v", err)
	}

	r1 := rev()
	code, body = f.do("admin", "PATCH", "/api/v1/runtime-policies/b", enabledPatch{Enabled: new(true)})
	var sp store.RuntimePolicy
	json.Unmarshal(body, &sp)
	if code != http.StatusOK || !sp.Enabled || !strings.Contains(string(sp.Document), `"enabled":true`) || sp.Revision != r1+1 {
		t.Fatalf("enable: %d %s", code, body)
	}
	if code, _ := f.do("admin", "PATCH", "/api/v1/runtime-policies/b", map[string]any{}); code != http.StatusBadRequest {
		t.Errorf("PATCH without enabled: %d", code)
	}
	var page api.Page[store.RuntimePolicy]
	f.get("dave", "/api/v1/runtime-policies?filter=enabled%3Dtrue", &page)
	if len(page.Items) != 2 {
		t.Errorf("enabled policies: %+v", page.Items)
	}

	// Built-ins are listed and loadable once.
	var builtins []runtimepolicy.Policy
	f.get("dave", "/api/v1/runtime-policies/builtins", &builtins)
	if len(builtins) != len(runtimepolicy.Builtins()) {
		t.Errorf("builtins: %d", len(builtins))
	}
	if code, body := f.do("admin", "POST", "/api/v1/runtime-policies/builtins/"+runtimepolicy.BuiltinDefault, nil); code != http.StatusCreated {
		t.Errorf("load builtin: %d %s", code, body)
	}
	if code, _ := f.do("admin", "POST", "/api/v1/runtime-policies/builtins/"+runtimepolicy.BuiltinDefault, nil); code != http.StatusConflict {
		t.Errorf("load builtin twice: %d", code)
	}
	if code, _ := f.do("admin", "POST", "/api/v1/runtime-policies/builtins/nope", nil); code != http.StatusNotFound {
		t.Errorf("load unknown builtin: %d", code)
	}
}

// TestBypassAPI checks the bypass defaults, validation and revision.
func TestBypassAPI(t *testing.T) {
	f := newFixture(t, "")
	var b fleet.Bypass
	f.get("dave", "/api/v1/settings/bypass", &b)
	if len(b.Namespaces) != 1 || b.Namespaces[0] != "kube-system" || b.Labels == nil {
		t.Errorf("default bypass: %+v", b)
	}
	for _, in := range []fleet.Bypass{{Namespaces: []string{"a b"}}, {Labels: []string{"=x"}}, {Labels: []string{"k=\n"}}, {Namespaces: make([]string, 257)}} {
		if code, _ := f.do("admin", "PUT", "/api/v1/settings/bypass", in); code != http.StatusBadRequest {
			t.Errorf("bypass %+v: %d", in, code)
		}
	}
	r0, _ := f.srv.db.FleetRevision(context.Background())
	if code, body := f.do("admin", "PUT", "/api/v1/settings/bypass", fleet.Bypass{Labels: []string{"mamori.dev/bypass=true"}}); code != http.StatusOK {
		t.Fatalf("put: %d %s", code, body)
	}
	if r, _ := f.srv.db.FleetRevision(context.Background()); r != r0+1 {
		t.Errorf("bypass change: revision %d → %d", r0, r)
	}
	f.get("dave", "/api/v1/settings/bypass", &b)
	if len(b.Namespaces) != 0 || b.Labels[0] != "mamori.dev/bypass=true" {
		t.Errorf("bypass: %+v", b)
	}
	if code, _ := f.do("dave", "PUT", "/api/v1/settings/bypass", fleet.Bypass{}); code != http.StatusForbidden {
		t.Errorf("a viewer changed the bypass: %d", code)
	}
}

// TestEnforcerGroupAPI checks token rotation and deletion rules.
func TestEnforcerGroupAPI(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	code, body := f.do("admin", "POST", "/api/v1/enforcer-groups", groupRequest{Name: "edge", Settings: &fleet.GroupSettings{HostProtection: true}})
	var created groupToken
	json.Unmarshal(body, &created)
	if code != http.StatusCreated || !created.Group.Settings.HostProtection || created.Group.Settings.AuditOnly {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := f.do("admin", "POST", "/api/v1/enforcer-groups", groupRequest{Name: "edge"}); code != http.StatusConflict {
		t.Errorf("duplicate group: %d", code)
	}
	code, body = f.do("admin", "POST", "/api/v1/enforcer-groups/edge/token", nil)
	var rotated groupToken
	json.Unmarshal(body, &rotated)
	if code != http.StatusOK || rotated.Token == created.Token || rotated.Token == "" {
		t.Fatalf("rotate: %d %s", code, body)
	}
	enroll := func(token string) error {
		_, err := f.srv.FleetBackend().Enroll(ctx, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "edge-1", CSR: newCSR(t)})
		return err
	}
	if err := enroll(created.Token); err == nil {
		t.Error("the rotated-out token still enrolls")
	}
	if err := enroll(rotated.Token); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do("admin", "DELETE", "/api/v1/enforcer-groups/edge", nil); code != http.StatusConflict {
		t.Errorf("deleting a group with agents: %d", code)
	}
	code, body = f.do("admin", "PUT", "/api/v1/enforcer-groups/edge", groupRequest{Description: "edge sites", Settings: &fleet.GroupSettings{FailClosed: true}})
	var g store.EnforcerGroup
	json.Unmarshal(body, &g)
	if code != http.StatusOK || !g.Settings.FailClosed || g.Description != "edge sites" {
		t.Errorf("update: %d %s", code, body)
	}
}

func TestValidBypass(t *testing.T) {
	for _, tc := range []struct {
		in fleet.Bypass
		ok bool
	}{
		{fleet.Bypass{}, true},
		{fleet.Bypass{Namespaces: []string{"kube-system"}, Labels: []string{"app", "tier=infra"}}, true},
		{fleet.Bypass{Namespaces: []string{""}}, false},
		{fleet.Bypass{Namespaces: []string{strings.Repeat("n", 64)}}, false},
		{fleet.Bypass{Labels: []string{"=v"}}, false},
		{fleet.Bypass{Labels: []string{"a b=c"}}, false},
		{fleet.Bypass{Labels: []string{"k=\x00"}}, false},
	} {
		if err := validBypass(tc.in); (err == nil) != tc.ok {
			t.Errorf("validBypass(%+v) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzValidBypass(f *testing.F) {
	f.Add(`{"namespaces":["kube-system"],"labels":["app=x"]}`)
	f.Add(`{"namespaces":["a b"],"labels":["=v"]}`)
	f.Add(`{"labels":["k=\u0000"]}`)
	f.Fuzz(func(t *testing.T, s string) {
		var b fleet.Bypass
		if json.Unmarshal([]byte(s), &b) != nil {
			return
		}
		if validBypass(b) != nil {
			return
		}
		for _, l := range b.Labels {
			if k, _, _ := strings.Cut(l, "="); k == "" {
				t.Fatalf("accepted label %q without a key", l)
			}
		}
		for _, ns := range b.Namespaces {
			if ns == "" || len(ns) > 63 {
				t.Fatalf("accepted namespace %q", ns)
			}
		}
	})
}
