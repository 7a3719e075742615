package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// newCSR returns a PEM certificate request for a fresh P-256 key.
func newCSR(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// group creates an enforcer group directly in the database and returns
// its enrollment token.
func (f *fixture) group(name string) string {
	f.t.Helper()
	tok := newSecret("mamori-enroll-", 32)
	if _, err := f.srv.db.CreateEnforcerGroup(context.Background(), store.EnforcerGroup{Name: name, Settings: store.DefaultGroupSettings()}, hashToken(tok)); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// enrolled enrolls an agent on host through the in-process backend.
func (f *fixture) enrolled(group, host string) fleet.EnrollResponse {
	f.t.Helper()
	resp, err := f.srv.FleetBackend().Enroll(context.Background(), fleet.EnrollRequest{Token: f.group(group), Kind: fleet.KindEnforcer, Hostname: host, Version: "test", CSR: newCSR(f.t)})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// runtimePolicy returns a valid runtime policy document named name.
func runtimePolicy(name string, enabled bool, scopes ...string) runtimepolicy.Policy {
	p := runtimepolicy.Builtins()[0]
	p.Name, p.Enabled, p.Scopes = name, enabled, scopes
	return p
}

// storedPolicy stores a runtime policy directly.
func (f *fixture) storedPolicy(name string) {
	f.t.Helper()
	sp, err := parsedPolicy(runtimePolicy(name, true), "admin")
	if err == nil {
		_, err = f.srv.db.CreateRuntimePolicy(context.Background(), sp)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// fleetRequestFor builds the authorization table's requests for the
// runtime and fleet routes.
func (f *fixture) fleetRequestFor(rt *api.Route, uniq string) (request, bool) {
	named := func(name string) string { return strings.Replace(rt.Path, "{name}", name, 1) }
	switch rt.OperationID {
	case "createRuntimePolicyDoc":
		return request{path: rt.Path, body: runtimePolicy("c-"+uniq, true)}, true
	case "getRuntimePolicyDoc", "deleteRuntimePolicyDoc":
		f.storedPolicy("g-" + uniq)
		return request{path: named("g-" + uniq)}, true
	case "updateRuntimePolicyDoc":
		f.storedPolicy("u-" + uniq)
		return request{path: named("u-" + uniq), body: runtimePolicy("u-"+uniq, false)}, true
	case "enableRuntimePolicy":
		f.storedPolicy("e-" + uniq)
		return request{path: named("e-" + uniq), body: map[string]bool{"enabled": false}}, true
	case "importRuntimePolicies":
		return request{path: rt.Path, body: []runtimepolicy.Policy{runtimePolicy("i-"+uniq, true)}}, true
	case "loadBuiltinRuntimePolicy":
		return request{path: named(runtimepolicy.BuiltinCIS)}, true
	case "putBypass":
		return request{path: rt.Path, body: fleet.Bypass{Namespaces: []string{"kube-system"}, Labels: []string{"mamori.dev/bypass"}}}, true
	case "createEnforcerGroup":
		return request{path: rt.Path, body: groupRequest{Name: "g-" + uniq}}, true
	case "getEnforcerGroup", "updateEnforcerGroup", "deleteEnforcerGroup", "rotateEnrollmentToken":
		f.group("eg-" + uniq)
		var body any
		if rt.OperationID == "updateEnforcerGroup" {
			body = groupRequest{Description: "changed", Settings: &fleet.GroupSettings{ContainerProtection: true}}
		}
		return request{path: named("eg-" + uniq), body: body}, true
	case "getAgent", "updateAgent":
		a := f.enrolled("ag-"+uniq, "host-"+uniq)
		var body any
		if rt.OperationID == "updateAgent" {
			body = agentPatch{Disabled: new(true)}
		}
		return request{path: strings.Replace(rt.Path, "{id}", a.AgentID, 1), body: body}, true
	case "fleetEnroll":
		return request{path: rt.Path, body: fleet.EnrollRequest{Token: f.group("en-" + uniq), Kind: fleet.KindEnforcer, Hostname: "host-" + uniq, CSR: newCSR(f.t)}}, true
	case "fleetRenew", "fleetHeartbeat", "fleetPolicies", "fleetEvents", "fleetInventory":
		a := f.enrolled("fl-"+uniq, "host-"+uniq)
		var body any
		switch rt.OperationID {
		case "fleetRenew":
			body = fleet.RenewRequest{AgentID: a.AgentID, CSR: newCSR(f.t)}
		case "fleetHeartbeat":
			body = fleet.Heartbeat{AgentID: a.AgentID, Hostname: "host-" + uniq}
		case "fleetPolicies":
			body = fleet.PolicyRequest{AgentID: a.AgentID}
		case "fleetEvents":
			body = fleet.EventBatch{AgentID: a.AgentID, Events: []fleet.Event{{ID: "1", Time: time.Now(), Status: fleet.StatusDetect, Policy: "default", Control: "reverseShell"}}}
		case "fleetInventory":
			body = fleet.Inventory{AgentID: a.AgentID, Time: time.Now()}
		}
		return request{path: rt.Path, body: body}, true
	}
	return request{}, false
}

// gateway is a fleet gateway's view of the server: an HTTP client with an
// API token bound to the Gateway role.
type gateway struct {
	t     *testing.T
	url   string
	token string
	c     *http.Client
}

// newGateway creates user name bound to Gateway on scope and a token for
// it, and serves the fixture over HTTP.
func (f *fixture) newGateway(name, scope string) *gateway {
	f.t.Helper()
	ctx := context.Background()
	u, err := f.srv.db.CreateUser(ctx, store.User{Username: name, Source: store.SourceLocal})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.srv.db.CreateRoleBinding(ctx, store.RoleBinding{SubjectKind: store.SubjectUser, Subject: name, Role: rbac.RoleGateway, Scopes: []string{scope}}); err != nil {
		f.t.Fatal(err)
	}
	tok, _, err := f.srv.auth.IssueToken(ctx, strconv.FormatInt(u.ID, 10), "gateway", []string{"enforcers:edit"}, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	ts := httptest.NewServer(f.h)
	f.t.Cleanup(ts.Close)
	return &gateway{t: f.t, url: ts.URL, token: tok, c: ts.Client()}
}

// post sends body (JSON-encoded unless it is []byte) and decodes the
// answer into out when the status is 2xx.
func (g *gateway) post(path string, body, out any) (int, string) {
	g.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest("POST", g.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := g.c.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			g.t.Fatalf("%s: %v: %s", path, err, data)
		}
	}
	return resp.StatusCode, string(data)
}

// get reads path as principal and decodes the JSON answer into out.
func (f *fixture) get(principal, path string, out any) {
	f.t.Helper()
	code, body := f.do(principal, "GET", path, nil)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s as %s: %d %s", path, principal, code, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
}

// auditEvents returns the audit events matching filter.
func (f *fixture) auditEvents(filter string) []audit.Event {
	f.t.Helper()
	var page api.Page[audit.Event]
	f.get("admin", "/api/v1/audit?limit=500&filter="+url.QueryEscape(filter), &page)
	return page.Items
}

// TestFleetFlow runs an agent's life through the REST API as a gateway
// does: enrollment, heartbeat, policies, events, inventory, disabling.
func TestFleetFlow(t *testing.T) {
	f := newFixture(t, "")
	gw := f.newGateway("gw", rbac.GlobalScopeName)

	// An operator creates a group, a policy scoped to team-a and a
	// disabled one.
	code, body := f.do("admin", "POST", "/api/v1/enforcer-groups", groupRequest{Name: "prod", Description: "production hosts"})
	if code != http.StatusCreated {
		t.Fatalf("create group: %d %s", code, body)
	}
	var created groupToken
	json.Unmarshal(body, &created)
	if !strings.HasPrefix(created.Token, "mamori-enroll-") || created.Group.Settings != store.DefaultGroupSettings() {
		t.Fatalf("group: %+v", created)
	}
	if strings.Contains(string(f.auditJSON()), created.Token) {
		t.Error("the enrollment token is in the audit trail")
	}
	for _, p := range []runtimepolicy.Policy{runtimePolicy("guard", true, "team-a"), runtimePolicy("dormant", false, "team-b")} {
		if code, body := f.do("admin", "POST", "/api/v1/runtime-policies", p); code != http.StatusCreated {
			t.Fatalf("create policy %s: %d %s", p.Name, code, body)
		}
	}

	// A bad token is refused and audited.
	if code, body := gw.post(fleet.PathEnroll, fleet.EnrollRequest{Token: "mamori-enroll-00", Kind: fleet.KindEnforcer, Hostname: "web-1", CSR: newCSR(t)}, nil); code != http.StatusForbidden {
		t.Fatalf("bad token: %d %s", code, body)
	}
	if evs := f.auditEvents("action=fleet.enroll;outcome=denied"); len(evs) != 1 || evs[0].ResourceID != "web-1" {
		t.Errorf("denied enrollment audit: %+v", evs)
	}

	// Enrollment signs a client certificate the fleet CA verifies.
	var enr fleet.EnrollResponse
	if code, body := gw.post(fleet.PathEnroll, fleet.EnrollRequest{Token: created.Token, Kind: fleet.KindEnforcer, Hostname: "web-1", Version: "0.7.0", CSR: newCSR(t)}, &enr); code != http.StatusOK {
		t.Fatalf("enroll: %d %s", code, body)
	}
	if id, err := f.srv.FleetCA().VerifyPEM([]byte(enr.Certificate), x509.ExtKeyUsageClientAuth); err != nil || id != enr.AgentID || enr.Group != "prod" {
		t.Fatalf("certificate: %q %v (%+v)", id, err, enr)
	}
	if enr.CA != string(f.srv.FleetCA().CertPEM()) || !enr.RenewFrom.Before(enr.NotAfter) {
		t.Errorf("enrollment answer: %+v", enr)
	}

	// Heartbeat: revision and the group's default settings.
	caps := []fleet.Capability{{Name: "pre-exec-deny.fanotify", Available: true, Detail: "FAN_OPEN_EXEC_PERM"}, {Name: "lsm.bpf", Detail: "not in the lsm= list"}}
	var hb fleet.HeartbeatReply
	if code, body := gw.post(fleet.PathHeartbeat, fleet.Heartbeat{AgentID: enr.AgentID, Hostname: "web-1", Version: "0.7.0", Capabilities: caps, Containers: 2}, &hb); code != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	rev, _ := f.srv.db.FleetRevision(context.Background())
	if hb.PolicyRevision != rev || hb.Settings != store.DefaultGroupSettings() {
		t.Errorf("heartbeat reply %+v, revision %d", hb, rev)
	}
	var agent store.Agent
	f.get("carol", "/api/v1/agents/"+enr.AgentID, &agent)
	if agent.Hostname != "web-1" || len(agent.Capabilities) != 2 || agent.Capabilities[0] != caps[0] || agent.LastSeen.IsZero() || agent.Containers != 2 {
		t.Errorf("agent as the console shows it: %+v", agent)
	}

	// The bundle holds the enabled policy and its scope's definition.
	var bundle fleet.PolicyBundle
	if code, body := gw.post(fleet.PathPolicies, fleet.PolicyRequest{AgentID: enr.AgentID}, &bundle); code != http.StatusOK {
		t.Fatalf("policies: %d %s", code, body)
	}
	if len(bundle.Policies) != 1 || !strings.Contains(string(bundle.Policies[0]), `"name":"guard"`) || bundle.Revision != rev {
		t.Errorf("bundle policies: %s", bundle.Policies)
	}
	if len(bundle.Scopes) != 1 {
		t.Fatalf("bundle scopes: %s", bundle.Scopes)
	}
	if sc, err := rbac.ParseScope(bundle.Scopes[0]); err != nil || sc.Name != "team-a" {
		t.Errorf("bundle scope: %+v %v", sc, err)
	}
	if !slices.Equal(bundle.Bypass.Namespaces, []string{"kube-system"}) {
		t.Errorf("bypass: %+v", bundle.Bypass)
	}

	// Events go to the audit trail once.
	now := time.Now().UTC()
	batch := fleet.EventBatch{AgentID: enr.AgentID, Events: []fleet.Event{
		{ID: "1", Time: now, Host: "spoofed", Status: fleet.StatusDetect, Policy: "guard", Control: "cryptoMiner", Message: "xmrig started", Container: "web", Process: fleet.Process{PID: 42, Path: "/tmp/xmrig"}},
		{ID: "2", Time: now, Status: fleet.StatusBlock, Policy: "guard", Control: "driftPrevention", Message: "blocked /tmp/x", Container: "web", Process: fleet.Process{PID: 43, Path: "/tmp/x", Args: []string{"/tmp/x", "-c"}}, Parents: []fleet.Process{{PID: 1, Path: "/bin/sh"}}},
	}}
	var ack fleet.EventAck
	if code, body := gw.post(fleet.PathEvents, batch, &ack); code != http.StatusOK || ack != (fleet.EventAck{Stored: 2}) {
		t.Fatalf("events: %d %s", code, body)
	}
	if code, body := gw.post(fleet.PathEvents, batch, &ack); code != http.StatusOK || ack != (fleet.EventAck{Duplicates: 2}) {
		t.Fatalf("re-sent events: %d %s", code, body)
	}
	var evs api.Page[audit.Event]
	f.get("carol", "/api/v1/runtime-events?type=runtime.block", &evs)
	if len(evs.Items) != 1 {
		t.Fatalf("block events: %+v", evs.Items)
	}
	var ev fleet.Event
	json.Unmarshal(evs.Items[0].After, &ev)
	if ev.ID != "2" || ev.Host != "web-1" || ev.AgentID != enr.AgentID || ev.Process.Path != "/tmp/x" || len(ev.Parents) != 1 || ev.Count != 1 {
		t.Errorf("stored event: %+v", ev)
	}
	f.get("admin", "/api/v1/runtime-events", &evs)
	if len(evs.Items) != 2 {
		t.Errorf("all runtime events: %d", len(evs.Items))
	}
	var ver auditVerification
	f.get("admin", "/api/v1/audit/verify", &ver)
	if !ver.OK {
		t.Errorf("audit chain: %+v", ver)
	}

	// Inventory.
	inv := fleet.Inventory{AgentID: enr.AgentID, Time: now, Containers: []fleet.Container{{ID: "c1", Name: "web", Image: "reg-a.example/team-a/app:1.0", Runtime: "docker"}},
		Workloads:   []fleet.Workload{{Namespace: "shop", Kind: "Deployment", Name: "web", Pods: []fleet.Pod{{Name: "web-1", Images: []string{"app"}}}}},
		Connections: []fleet.Connection{{From: "shop/web", To: "shop/db", Port: 5432, Proto: "tcp"}}}
	if code, body := gw.post(fleet.PathInventory, inv, nil); code != http.StatusNoContent {
		t.Fatalf("inventory: %d %s", code, body)
	}
	var view inventoryView
	f.get("carol", "/api/v1/inventory", &view)
	if len(view.Hosts) != 1 || view.Hosts[0].Host != "web-1" || len(view.Hosts[0].Containers) != 1 || len(view.Namespaces) != 1 ||
		view.Namespaces[0].Workloads[0].Name != "web" || len(view.Connections) != 1 {
		t.Errorf("inventory view: %+v", view)
	}

	// Renewal, then disabling: a disabled agent is refused.
	var ren fleet.RenewResponse
	if code, body := gw.post(fleet.PathRenew, fleet.RenewRequest{AgentID: enr.AgentID, CSR: newCSR(t)}, &ren); code != http.StatusOK {
		t.Fatalf("renew: %d %s", code, body)
	}
	if id, err := f.srv.FleetCA().VerifyPEM([]byte(ren.Certificate), x509.ExtKeyUsageClientAuth); err != nil || id != enr.AgentID {
		t.Errorf("renewed certificate: %q %v", id, err)
	}
	if code, body := f.do("admin", "PATCH", "/api/v1/agents/"+enr.AgentID, agentPatch{Disabled: new(true)}); code != http.StatusOK {
		t.Fatalf("disable: %d %s", code, body)
	}
	for path, body := range map[string]any{
		fleet.PathRenew:     fleet.RenewRequest{AgentID: enr.AgentID, CSR: newCSR(t)},
		fleet.PathHeartbeat: fleet.Heartbeat{AgentID: enr.AgentID},
		fleet.PathPolicies:  fleet.PolicyRequest{AgentID: enr.AgentID},
		fleet.PathEvents:    fleet.EventBatch{AgentID: enr.AgentID},
		fleet.PathInventory: fleet.Inventory{AgentID: enr.AgentID},
	} {
		if code, resp := gw.post(path, body, nil); code != http.StatusForbidden {
			t.Errorf("%s for a disabled agent: %d %s", path, code, resp)
		}
	}
	f.get("admin", "/api/v1/inventory", &view)
	if len(view.Hosts) != 0 {
		t.Errorf("a disabled agent's inventory is shown: %+v", view.Hosts)
	}
}

// auditJSON is the whole audit trail as JSON lines.
func (f *fixture) auditJSON() []byte {
	f.t.Helper()
	code, body := f.do("admin", "GET", "/api/v1/audit/export?format=jsonl", nil)
	if code != http.StatusOK {
		f.t.Fatalf("audit export: %d", code)
	}
	return body
}

// TestFleetBadInput sends malformed fleet requests: each gets a 4xx and
// writes nothing.
func TestFleetBadInput(t *testing.T) {
	f := newFixture(t, "")
	gw := f.newGateway("gw", rbac.GlobalScopeName)
	token := f.group("prod")
	enr := f.enrolled("other", "web-1")
	ctx := context.Background()
	agents := func() int {
		p, err := f.srv.db.ListAgents(ctx, store.ListOptions{Limit: store.MaxLimit}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Items)
	}
	before, seq := agents(), len(f.auditJSON())
	huge := []byte(`{"agentId":"` + enr.AgentID + `","events":[` + strings.Repeat(`{"id":"x","status":"detect"},`, maxFleetBulk/28) + `{}]}`)
	weak, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weak)
	weakCSR := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	for _, tc := range []struct {
		name, path string
		body       any
		want       int
	}{
		{"unknown field", fleet.PathEnroll, []byte(`{"token":"` + token + `","kind":"enforcer","hostname":"h","csr":"","admin":true}`), http.StatusBadRequest},
		{"bad CSR", fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "h", CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, http.StatusBadRequest},
		{"weak key", fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "h", CSR: weakCSR}, http.StatusBadRequest},
		{"bad kind", fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: "root", Hostname: "h", CSR: newCSR(t)}, http.StatusBadRequest},
		{"control chars", fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "h\n", CSR: newCSR(t)}, http.StatusBadRequest},
		{"huge body", fleet.PathEvents, huge, http.StatusRequestEntityTooLarge},
		{"trailing data", fleet.PathHeartbeat, []byte(`{"agentId":"` + enr.AgentID + `"} {}`), http.StatusBadRequest},
		{"unknown agent", fleet.PathHeartbeat, fleet.Heartbeat{AgentID: "agent-nobody"}, http.StatusNotFound},
		{"bad status", fleet.PathEvents, fleet.EventBatch{AgentID: enr.AgentID, Events: []fleet.Event{{ID: "1", Time: time.Now(), Status: fleet.StatusDetect}, {ID: "2", Time: time.Now(), Status: "maybe"}}}, http.StatusBadRequest},
		{"no time", fleet.PathEvents, fleet.EventBatch{AgentID: enr.AgentID, Events: []fleet.Event{{ID: "1", Status: fleet.StatusDetect}}}, http.StatusBadRequest},
		{"negative counters", fleet.PathHeartbeat, fleet.Heartbeat{AgentID: enr.AgentID, Containers: -1}, http.StatusBadRequest},
		{"renew bad CSR", fleet.PathRenew, fleet.RenewRequest{AgentID: enr.AgentID, CSR: "junk"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := gw.post(tc.path, tc.body, nil); code != tc.want {
				t.Errorf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
	if n := agents(); n != before {
		t.Errorf("bad enrollments created %d agents", n-before)
	}
	if n := len(f.auditJSON()); n != seq {
		t.Errorf("bad input wrote to the audit trail: %s", f.auditJSON()[seq:])
	}
	// The event validated in the bad batch was not stored either.
	if seen, _ := f.srv.db.RuntimeEventSeen(ctx, enr.AgentID, "1"); seen {
		t.Error("part of a refused batch was stored")
	}
}

// TestFleetScopedGateway checks that a gateway bound to a host scope acts
// only for agents on those hosts.
func TestFleetScopedGateway(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	sc := rbac.ApplicationScope{Name: "web-hosts", Infrastructure: rbac.Infrastructure{Hosts: []rbac.Glob{rbac.MustGlob("web-*")}}}
	if _, err := f.srv.db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Definition: jsonBody(sc)}); err != nil {
		t.Fatal(err)
	}
	gw := f.newGateway("gw-web", "web-hosts")
	token := f.group("prod")
	var enr fleet.EnrollResponse
	if code, body := gw.post(fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "web-7", CSR: newCSR(t)}, &enr); code != http.StatusOK {
		t.Fatalf("enroll in scope: %d %s", code, body)
	}
	if code, _ := gw.post(fleet.PathEnroll, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "db-1", CSR: newCSR(t)}, nil); code < 400 {
		t.Errorf("enroll outside the scope: %d", code)
	}
	db := f.enrolled("other", "db-2")
	if code, _ := gw.post(fleet.PathHeartbeat, fleet.Heartbeat{AgentID: db.AgentID}, nil); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("heartbeat for an agent outside the scope: %d", code)
	}
	if code, body := gw.post(fleet.PathHeartbeat, fleet.Heartbeat{AgentID: enr.AgentID}, nil); code != http.StatusOK {
		t.Errorf("heartbeat in scope: %d %s", code, body)
	}
	// Token restriction: a gateway token without enforcers:edit is useless.
	u, _ := f.srv.db.GetUserByName(ctx, "gw-web")
	tok, _, err := f.srv.auth.IssueToken(ctx, strconv.FormatInt(u.ID, 10), "weak", []string{"enforcers:view"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gw.token = tok
	if code, _ := gw.post(fleet.PathHeartbeat, fleet.Heartbeat{AgentID: enr.AgentID}, nil); code != http.StatusForbidden {
		t.Errorf("view-only token: %d", code)
	}
}

// TestFleetAgentListScoped checks that agent lists follow host scopes.
func TestFleetAgentListScoped(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	sc := rbac.ApplicationScope{Name: "web-hosts", Infrastructure: rbac.Infrastructure{Hosts: []rbac.Glob{rbac.MustGlob("web-*")}}}
	if _, err := f.srv.db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Definition: jsonBody(sc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.db.CreateRole(ctx, store.Role{Name: "Host Viewer", Permissions: []string{"enforcers:view"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.db.CreateRoleBinding(ctx, store.RoleBinding{SubjectKind: store.SubjectUser, Subject: "erin", Role: "Host Viewer", Scopes: []string{"web-hosts"}}); err != nil {
		t.Fatal(err)
	}
	web := f.enrolled("g1", "web-1")
	db := f.enrolled("g2", "db-1")
	var page api.Page[store.Agent]
	f.get("erin", "/api/v1/agents", &page)
	if len(page.Items) != 1 || page.Items[0].ID != web.AgentID {
		t.Errorf("erin's agents: %+v", page.Items)
	}
	f.get("carol", "/api/v1/agents", &page)
	if len(page.Items) != 2 {
		t.Errorf("carol's agents: %+v", page.Items)
	}
	if code, _ := f.do("erin", "GET", "/api/v1/agents/"+db.AgentID, nil); code != http.StatusNotFound {
		t.Errorf("erin reads an agent outside her scope: %d", code)
	}
	// Runtime events of other hosts are hidden too.
	for _, a := range []fleet.EnrollResponse{web, db} {
		if _, err := f.srv.FleetBackend().Events(ctx, fleet.EventBatch{AgentID: a.AgentID, Events: []fleet.Event{{ID: "1", Time: time.Now(), Status: fleet.StatusBlock}}}); err != nil {
			t.Fatal(err)
		}
	}
	var evs api.Page[audit.Event]
	f.get("erin", "/api/v1/runtime-events", &evs)
	if len(evs.Items) != 1 || evs.Items[0].ResourceID != "web-1" {
		t.Errorf("erin's runtime events: %+v", evs.Items)
	}
	if code, _ := f.do("erin", "POST", "/api/v1/enforcer-groups", groupRequest{Name: "x"}); code != http.StatusForbidden {
		t.Errorf("a scoped viewer created a group: %d", code)
	}
}

// FuzzFleetRelay posts arbitrary bodies to the fleet relay as an
// administrator's token: no input may cause a server error or a panic.
func FuzzFleetRelay(f *testing.F) {
	ctx := context.Background()
	srv, err := New(ctx, Config{DataDir: filepath.Join(f.TempDir(), "data"), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FirstRun: func(_, _ string) {}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	admin, err := srv.db.GetUserByName(ctx, AdminUser)
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := srv.auth.IssueToken(ctx, strconv.FormatInt(admin.ID, 10), "fuzz", everything(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	group := newSecret("mamori-enroll-", 32)
	if _, err := srv.db.CreateEnforcerGroup(ctx, store.EnforcerGroup{Name: "g", Settings: store.DefaultGroupSettings()}, hashToken(group)); err != nil {
		f.Fatal(err)
	}
	enr, err := srv.FleetBackend().Enroll(ctx, fleet.EnrollRequest{Token: group, Kind: fleet.KindEnforcer, Hostname: "h", CSR: newCSR(f)})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{fleet.PathEnroll, fleet.PathRenew, fleet.PathHeartbeat, fleet.PathPolicies, fleet.PathEvents, fleet.PathInventory}
	seed := func(i int, v any) {
		b, _ := json.Marshal(v)
		f.Add(uint8(i), b)
	}
	seed(0, fleet.EnrollRequest{Token: group, Kind: fleet.KindEnforcer, Hostname: "h2", CSR: newCSR(f)})
	seed(1, fleet.RenewRequest{AgentID: enr.AgentID, CSR: "junk"})
	seed(2, fleet.Heartbeat{AgentID: enr.AgentID, Capabilities: []fleet.Capability{{Name: "seccomp", Available: true}}})
	seed(3, fleet.PolicyRequest{AgentID: enr.AgentID})
	seed(4, fleet.EventBatch{AgentID: enr.AgentID, Events: []fleet.Event{{ID: "1", Time: time.Now(), Status: fleet.StatusBlock, Process: fleet.Process{Args: []string{"\x00"}}}}})
	seed(5, fleet.Inventory{AgentID: enr.AgentID, Workloads: []fleet.Workload{{Namespace: "ns", Pods: []fleet.Pod{{Name: "p"}}}}})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest("POST", paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %s: %s", w.Code, req.URL.Path, w.Body)
		}
	})
}
