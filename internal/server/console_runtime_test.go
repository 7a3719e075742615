package server

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// tokenRe finds the enrollment token a console page shows once.
var tokenRe = regexp.MustCompile(`id="enrollment-token">([^<]+)<`)

// hostile is markup that must never reach a page unescaped.
const hostile = `<img src=x onerror=alert(1)>`

// unescaped reports whether a page holds hostile markup as markup.
func unescaped(body string) bool {
	return strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert")
}

// reportingAgent enrolls an agent with a group token through the fleet
// backend, sends a heartbeat with capabilities and an inventory.
func (f *fixture) reportingAgent(token, host string, caps []fleet.Capability, inv fleet.Inventory) fleet.EnrollResponse {
	f.t.Helper()
	ctx := context.Background()
	be := f.srv.FleetBackend()
	enr, err := be.Enroll(ctx, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: host, Version: "0.9.0", CSR: newCSR(f.t)})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := be.Heartbeat(ctx, fleet.Heartbeat{AgentID: enr.AgentID, Hostname: host, Version: "0.9.0", Capabilities: caps, PolicyRevision: 3, Containers: len(inv.Containers), EventsBuffered: 7}); err != nil {
		f.t.Fatal(err)
	}
	inv.AgentID = enr.AgentID
	if err := be.Inventory(ctx, inv); err != nil {
		f.t.Fatal(err)
	}
	return enr
}

// TestConsoleRuntime drives the runtime-protection pages without a
// browser: runtime policies (editor, built-ins, enable, import all or
// none, export), enforcer groups (token shown once, rotation, settings),
// agents with their capabilities, the bypass, the Risk Explorer and the
// affected workloads of a vulnerability; hostile names everywhere, and
// each page and form under the REST API's authorization.
func TestConsoleRuntime(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	admin := f.adminConsole(t)

	// Runtime policies: the page offers the built-in baselines.
	code, body, _ := f.page(admin, "/runtime-policies", "")
	for _, b := range runtimepolicy.Builtins() {
		if !strings.Contains(body, `value="`+b.Name+`"`) {
			t.Errorf("built-in %q is not offered", b.Name)
		}
	}
	if code != 200 || !strings.Contains(body, `id="runtime-none"`) {
		t.Fatalf("runtime policies page: %d\n%s", code, body)
	}
	for _, name := range []string{runtimepolicy.BuiltinCIS, runtimepolicy.BuiltinNIST} {
		if code, body := f.post(t, admin, "/runtime-policies/builtin", url.Values{"name": {name}}); code != 200 || !strings.Contains(body, "Built-in policy loaded") {
			t.Errorf("load %s: %d\n%s", name, code, body)
		}
	}
	if code, body := f.post(t, admin, "/runtime-policies/builtin", url.Values{"name": {runtimepolicy.BuiltinCIS}}); code != http.StatusBadRequest || !strings.Contains(body, "role=\"alert\"") {
		t.Errorf("loading a built-in twice: %d\n%s", code, body)
	}
	if code, _ := f.post(t, admin, "/runtime-policies/builtin", url.Values{"name": {"no-such"}}); code != http.StatusNotFound {
		t.Errorf("an unknown built-in: %d", code)
	}
	if sp, err := f.srv.db.GetRuntimePolicy(ctx, runtimepolicy.BuiltinCIS); err != nil || sp.Enabled || sp.Mode != "audit" {
		t.Errorf("stored CIS baseline: %+v %v", sp, err)
	}

	// The editor: the parser's reason for a refusal, then a hostile but
	// valid policy with a scheduled switch to enforce mode, escaped.
	if code, body := f.post(t, admin, "/runtime-policies", url.Values{"definition": {"name: x\ncontrols:\n  reverseShel: {enabled: true}\n"}}); code != http.StatusBadRequest || !strings.Contains(body, "reverseShel") {
		t.Errorf("invalid runtime policy: %d\n%s", code, body)
	}
	if _, err := f.srv.db.GetRuntimePolicy(ctx, "x"); err == nil {
		t.Error("a refused policy was stored")
	}
	const polName = "web shop"
	def := "name: " + polName + "\ndescription: '" + hostile + "<script>alert(2)</script>'\nenabled: true\nmode: audit\nschedule:\n  enforceFrom: 2099-01-02T03:04:05Z\ncriteria: 'label[\"app\"] == \"<script>alert(4)</script>\"'\ncontrols:\n  reverseShell: {enabled: true}\n  forkGuard: {maxProcesses: 100, mode: enforce}\n"
	code, body = f.post(t, admin, "/runtime-policies", url.Values{"definition": {def}})
	if code != 200 || unescaped(body) || !strings.Contains(body, "&lt;img src=x") || !strings.Contains(body, "2099-01-02 03:04") || !strings.Contains(body, "forkGuard (Enforce)") {
		t.Fatalf("hostile runtime policy: %d\n%s", code, body)
	}
	created := func() time.Time {
		sp, err := f.srv.db.GetRuntimePolicy(ctx, polName)
		if err != nil {
			t.Fatal(err)
		}
		p, err := runtimepolicy.Parse(sp.Document)
		if err != nil {
			t.Fatal(err)
		}
		return p.Created
	}
	first := created()
	// Saving again replaces it and keeps the creation time (a schedule
	// counts from it); the edit link fills the editor.
	if code, _ := f.post(t, admin, "/runtime-policies", url.Values{"definition": {def}}); code != 200 || !created().Equal(first) {
		t.Errorf("replace: %d, created %v then %v", code, first, created())
	}
	if code, body, _ := f.page(admin, "/runtime-policies?edit="+url.QueryEscape(polName), ""); code != 200 || !strings.Contains(body, "forkGuard") || unescaped(body) {
		t.Errorf("edit: %d\n%s", code, body)
	}
	if code, _ := f.post(t, admin, "/runtime-policies/toggle", url.Values{"name": {polName}, "enabled": {"false"}}); code != 200 {
		t.Errorf("disable: %d", code)
	}
	if sp, _ := f.srv.db.GetRuntimePolicy(ctx, polName); sp.Enabled {
		t.Error("the policy is still enabled")
	}
	if n := len(f.auditEvents("action=" + actionRuntimePolicy)); n != 5 {
		t.Errorf("%d runtime policy audit events, want 5 (2 loads, create, replace, disable)", n)
	}

	// Import is all or none; the export reads back.
	good, _ := json.Marshal(runtimePolicy("imported", true))
	bad := `{"name":"broken","controls":{"nope":{}}}`
	if code, body := f.post(t, admin, "/runtime-policies/import", url.Values{"policies": {"[" + string(good) + "," + bad + "]"}}); code != http.StatusBadRequest || !strings.Contains(body, "nope") {
		t.Errorf("import with an invalid policy: %d\n%s", code, body)
	}
	if _, err := f.srv.db.GetRuntimePolicy(ctx, "imported"); err == nil {
		t.Error("a refused import stored a policy")
	}
	if code, _ := f.post(t, admin, "/runtime-policies/import", url.Values{"policies": {string(good)}}); code != http.StatusBadRequest {
		t.Errorf("import of an object, not an array: %d", code)
	}
	if code, _ := f.post(t, admin, "/runtime-policies/import", url.Values{"policies": {"[" + string(good) + "]"}}); code != 200 {
		t.Errorf("import: %d", code)
	}
	code, body, hdr := f.page(admin, "/runtime-policies/export", "")
	ps, err := runtimepolicy.ParseBundle([]byte(body))
	if code != 200 || err != nil || len(ps) != 4 || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") {
		t.Errorf("export: %d %v %d policies", code, err, len(ps))
	}
	if code, _ := f.post(t, admin, "/runtime-policies/import", url.Values{"policies": {body}}); code != 200 {
		t.Errorf("re-import of the export: %d", code)
	}

	// Enforcer groups: the token is shown once and enrolls; a rotation
	// ends it.
	code, body = f.post(t, admin, "/enforcers/groups", url.Values{"name": {"web<b>"}, "description": {hostile}, "auditOnly": {"on"}, "containerProtection": {"on"}})
	m := tokenRe.FindStringSubmatch(body)
	if code != 200 || m == nil || unescaped(body) {
		t.Fatalf("create group: %d\n%s", code, body)
	}
	token := html.UnescapeString(m[1])
	if code, body, _ := f.page(admin, "/enforcers", ""); strings.Contains(body, token) || code != 200 {
		t.Errorf("the enrollment token is shown again: %d", code)
	}
	if code, _ := f.post(t, admin, "/enforcers/groups", url.Values{"name": {"web<b>"}}); code != http.StatusBadRequest {
		t.Errorf("a second group of the same name: %d", code)
	}
	caps := []fleet.Capability{
		{Name: "exec-events.tp_btf", Available: true, Detail: "tracepoint sched_process_exec attached"},
		{Name: "lsm.bpf", Available: false, Detail: "<script>alert(3)</script> not in /sys/kernel/security/lsm"},
	}
	web := f.reportingAgent(token, "web-1", caps, fleet.Inventory{
		Containers: []fleet.Container{
			{ID: "c0ffee0000000000000000000000000000000000000000000000000000000001", Name: "shop" + hostile, Image: "reg-a.example/team-a/app:1.0", Runtime: "docker",
				Labels: map[string]string{"note": hostile}, Protected: []string{"default"}},
			{ID: "c0ffee0000000000000000000000000000000000000000000000000000000002", Name: "cache", Image: "docker.io/library/redis:7", Runtime: "docker"},
		},
		Connections: []fleet.Connection{{From: "shop" + hostile, To: "cache", Port: 6379, Proto: "tcp"}},
	})
	code, body = f.post(t, admin, "/enforcers/token", url.Values{"name": {"web<b>"}})
	m = tokenRe.FindStringSubmatch(body)
	if code != 200 || m == nil || html.UnescapeString(m[1]) == token {
		t.Fatalf("rotate: %d\n%s", code, body)
	}
	if _, err := f.srv.FleetBackend().Enroll(ctx, fleet.EnrollRequest{Token: token, Kind: fleet.KindEnforcer, Hostname: "web-2", CSR: newCSR(t)}); err == nil {
		t.Error("the rotated-out token still enrolls")
	}
	db := f.reportingAgent(html.UnescapeString(m[1]), "db-1", nil, fleet.Inventory{
		Containers: []fleet.Container{{ID: "d00d", Name: "postgres", Image: "reg-b.example/team-b/api:2.0", Runtime: "containerd"}},
	})
	kube := f.reportingAgent(html.UnescapeString(m[1]), "web-k8s", nil, fleet.Inventory{
		Workloads: []fleet.Workload{{Namespace: "shop" + hostile, Kind: "Deployment", Name: "front" + hostile, Labels: map[string]string{"app": hostile},
			Pods: []fleet.Pod{{Name: "front-1" + hostile, Node: hostile, Images: []string{"reg-a.example/team-a/app:1.0", hostile}}}}},
		Connections: []fleet.Connection{{From: "shop" + hostile + "/front" + hostile, To: hostile, Port: 1}},
	})
	workloadURL := "/risk/workload?" + url.Values{"agent": {kube.AgentID}, "namespace": {"shop" + hostile}, "name": {"front" + hostile}}.Encode()
	if code, _ := f.post(t, admin, "/enforcers/settings", url.Values{"name": {"web<b>"}, "hostProtection": {"on"}, "failClosed": {"on"}}); code != 200 {
		t.Errorf("settings: %d", code)
	}
	if g, err := f.srv.db.GetEnforcerGroup(ctx, "web<b>"); err != nil || g.Settings != (fleet.GroupSettings{HostProtection: true, FailClosed: true}) {
		t.Errorf("stored settings: %+v %v", g.Settings, err)
	}

	// The agents: health, revision, buffered events and exactly the
	// capabilities reported.
	code, body, _ = f.page(admin, "/enforcers", "")
	if code != 200 || unescaped(body) || !strings.Contains(body, "web-1") || !strings.Contains(body, "db-1") ||
		!strings.Contains(body, `class="health-healthy"`) || !strings.Contains(body, "✓ available: <code>exec-events.tp_btf</code>") ||
		!strings.Contains(body, "✗ unavailable: <code>lsm.bpf</code>") || strings.Contains(body, "fanotify") || !strings.Contains(body, `<td class="num">7</td>`) {
		t.Errorf("enforcers page: %d\n%s", code, body)
	}
	if !strings.Contains(body, `id="bypass-namespaces" name="namespaces" rows="4" cols="40" spellcheck="false">kube-system</textarea>`) {
		t.Errorf("the default bypass is not shown:\n%s", body)
	}
	if code, body, _ := f.page(admin, "/", ""); code != 200 || !strings.Contains(body, `id="enforcer-health"`) || !strings.Contains(body, `<td class="num health-healthy">3</td>`) {
		t.Errorf("dashboard enforcer health: %d\n%s", code, body)
	}
	// The bypass: a hostile label is stored and escaped, a bad
	// namespace refused.
	if code, body := f.post(t, admin, "/enforcers/bypass", url.Values{"namespaces": {"kube-system\nmonitoring"}, "labels": {"team=" + hostile}}); code != 200 || unescaped(body) {
		t.Errorf("bypass: %d\n%s", code, body)
	}
	if b, _ := f.srv.db.Bypass(ctx); len(b.Namespaces) != 2 || len(b.Labels) != 1 || b.Labels[0] != "team="+hostile {
		t.Errorf("stored bypass: %+v", b)
	}
	if code, _ := f.post(t, admin, "/enforcers/bypass", url.Values{"namespaces": {"two words"}}); code != http.StatusBadRequest {
		t.Errorf("a bad namespace: %d", code)
	}

	// The Risk Explorer and the host page, escaped; the image the shop
	// runs is scanned (medium), redis is not.
	code, body, _ = f.page(admin, "/risk", "")
	if code != 200 || unescaped(body) || !strings.Contains(body, `id="risk-graph"`) || !strings.Contains(body, `class="node kind-image risk-MEDIUM"`) ||
		!strings.Contains(body, `class="node kind-image risk-UNSCANNED"`) || !strings.Contains(body, `class="edge conn"`) {
		t.Errorf("risk explorer: %d\n%s", code, body)
	}
	code, body, _ = f.page(admin, workloadURL, "")
	if code != 200 || unescaped(body) || !strings.Contains(body, "front-1&lt;img") || !strings.Contains(body, "app=&lt;img") {
		t.Errorf("workload page: %d\n%s", code, body)
	}
	if code, _, _ := f.page(admin, "/risk/workload?agent="+kube.AgentID+"&namespace=x&name=y", ""); code != http.StatusNotFound {
		t.Errorf("an unknown workload: %d", code)
	}
	code, body, _ = f.page(admin, "/risk/host?agent="+web.AgentID, "")
	if code != 200 || unescaped(body) || !strings.Contains(body, "/images/"+strconv.FormatInt(f.imageA.ID, 10)) {
		t.Errorf("host page: %d\n%s", code, body)
	}
	// The vulnerability's affected workloads.
	code, body, _ = f.page(admin, "/vulnerabilities/CVE-2024-0727", "")
	if code != 200 || !strings.Contains(body, `id="affected-workloads"`) || !strings.Contains(body, "postgres") || unescaped(body) {
		t.Errorf("affected workloads: %d\n%s", code, body)
	}
	// Runtime events show in the feed with their status.
	if _, err := f.srv.FleetBackend().Events(ctx, fleet.EventBatch{AgentID: web.AgentID, Events: []fleet.Event{{ID: "1", Time: time.Now(), Status: fleet.StatusBlock,
		Policy: "default", Control: "reverseShell", Message: "reverse shell " + hostile, Container: "shop"}}}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := f.page(admin, "/", ""); code != 200 || unescaped(body) || !strings.Contains(body, `class="runtime-block"`) || !strings.Contains(body, "block · default/reverseShell · reverse shell &lt;img") {
		t.Errorf("dashboard runtime event: %d\n%s", code, body)
	}

	fctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	code, feed, _ := f.raw("GET", "/events?after=0", nil, func(r *http.Request) {
		r.AddCookie(admin)
		*r = *r.WithContext(fctx)
	})
	cancel()
	if code != 200 || !strings.Contains(string(feed), `"action":"runtime.block"`) || !strings.Contains(string(feed), `"detail":"block · default/reverseShell · reverse shell \u003cimg`) {
		t.Errorf("live feed of a runtime event: %d\n%s", code, feed)
	}

	// A host-scoped viewer sees web-1 only, also by direct URL; bob (no
	// enforcer rights) sees none of it; neither may change anything.
	sc := rbac.ApplicationScope{Name: "web-hosts", Infrastructure: rbac.Infrastructure{Hosts: []rbac.Glob{rbac.MustGlob("web-*")}}}
	if _, err := f.srv.db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Definition: jsonBody(sc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.db.CreateRole(ctx, store.Role{Name: "Host Viewer", Permissions: []string{"enforcers:view", "images:view"}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []store.RoleBinding{{Role: "Host Viewer", Scopes: []string{"web-hosts"}}, {Role: rbac.RoleViewer, Scopes: []string{"team-a"}}} {
		b.SubjectKind, b.Subject = store.SubjectUser, "erin"
		if _, err := f.srv.db.CreateRoleBinding(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	erin := f.consoleLogin(t, "erin", f.setPassword(t, "erin"))
	code, body, _ = f.page(erin, "/enforcers", "")
	if code != 200 || !strings.Contains(body, "web-1") || strings.Contains(body, "db-1") {
		t.Errorf("erin's enforcers: %d\n%s", code, body)
	}
	code, body, _ = f.page(erin, "/risk", "")
	if code != 200 || !strings.Contains(body, "web-1") || strings.Contains(body, "db-1") || strings.Contains(body, "postgres") {
		t.Errorf("erin's risk explorer: %d\n%s", code, body)
	}
	if code, _, _ := f.page(erin, workloadURL, ""); code != 200 {
		t.Errorf("erin opens a workload on web-k8s: %d", code)
	}
	if code, _, _ := f.page(erin, "/risk/workload?agent="+db.AgentID+"&namespace=x&name=y", ""); code != http.StatusNotFound {
		t.Errorf("erin opens a workload of db-1 by URL: %d", code)
	}
	if code, _, _ := f.page(erin, "/risk/host?agent="+db.AgentID, ""); code != http.StatusNotFound {
		t.Errorf("erin opens db-1 by URL: %d", code)
	}
	if code, body, _ := f.page(erin, "/vulnerabilities/CVE-2024-0727", ""); code != 200 || strings.Contains(body, "postgres") {
		t.Errorf("erin's affected workloads: %d\n%s", code, body)
	}
	for _, form := range []struct {
		path string
		v    url.Values
	}{
		{"/enforcers/groups", url.Values{"name": {"erin's"}}},
		{"/enforcers/token", url.Values{"name": {"web<b>"}}},
		{"/enforcers/settings", url.Values{"name": {"web<b>"}}},
		{"/enforcers/bypass", url.Values{"namespaces": {"x"}}},
		{"/runtime-policies", url.Values{"definition": {string(good)}}},
		{"/runtime-policies/builtin", url.Values{"name": {runtimepolicy.BuiltinPCI}}},
	} {
		if code, _ := f.post(t, erin, form.path, form.v); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("erin posts %s: %d", form.path, code)
		}
	}
	if _, err := f.srv.db.GetEnforcerGroup(ctx, "erin's"); err == nil {
		t.Error("erin created a group")
	}
	bob := f.consoleLogin(t, "bob", f.setPassword(t, "bob"))
	for _, path := range []string{"/enforcers", "/risk", "/risk/host?agent=" + web.AgentID, "/runtime-policies", "/runtime-policies/export"} {
		if code, body, _ := f.page(bob, path, ""); code != http.StatusForbidden || strings.Contains(body, "web-1") {
			t.Errorf("bob opens %s: %d", path, code)
		}
	}
	if code, body, _ := f.page(bob, "/", ""); code != 200 || strings.Contains(body, "web&lt;b&gt;") || !strings.Contains(body, "Enforcer health is shown to users") {
		t.Errorf("bob's dashboard: %d\n%s", code, body)
	}

	// Every runtime form needs the session's CSRF token.
	for _, path := range []string{"/runtime-policies", "/runtime-policies/toggle", "/runtime-policies/import", "/runtime-policies/builtin",
		"/enforcers/groups", "/enforcers/settings", "/enforcers/token", "/enforcers/bypass"} {
		form := "name=csrf-test&definition=x&policies=%5B%5D"
		code, _, _ := f.raw("POST", path, nil, func(r *http.Request) {
			r.AddCookie(admin)
			r.Body = ioNopCloser(strings.NewReader(form))
			r.ContentLength = int64(len(form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		})
		if code != http.StatusForbidden {
			t.Errorf("%s without a CSRF token: %d", path, code)
		}
	}
	if _, err := f.srv.db.GetEnforcerGroup(ctx, "csrf-test"); err == nil {
		t.Error("a form without a CSRF token created a group")
	}
}
