package server

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/webui/webtest"
)

// ingestWith stores a scan of registry/repo:tag with one finding of
// severity per entry (none: a clean scan) and returns the image.
func (f *fixture) ingestWith(registry, repo, tag string, sevs ...vuln.Severity) store.Image {
	f.t.Helper()
	im := store.Image{Registry: registry, Repository: repo, Tag: tag}
	pkg := inventory.Package{Name: "libexample", Version: "1.0-1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status"}
	rep := &report.Scan{SchemaVersion: report.SchemaVersion,
		Inventory: &inventory.Report{SchemaVersion: 1, Image: inventory.ImageInfo{Ref: im.Ref(), Name: im.Ref()}, Packages: []inventory.Package{pkg}}}
	for i, s := range sevs {
		rep.Vulnerabilities = append(rep.Vulnerabilities, vuln.Finding{ID: "CVE-2026-" + strconv.Itoa(1000+i), Package: vuln.PackageOf(&pkg), Severity: s})
	}
	sc, err := f.srv.db.IngestScan(context.Background(), im, rep)
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := f.srv.db.GetImage(context.Background(), sc.ImageID, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

// graphNode is what the test reads of one drawn node.
type graphNode struct {
	Kind, Risk, Label, Fill string
	Dim                     bool
}

// readGraph returns the Risk Explorer's drawn nodes with their computed
// fill color.
func readGraph(b *webtest.Browser) []graphNode {
	var out []graphNode
	b.Eval(`[...document.querySelectorAll('#risk-graph a.node')].map(a => ({
		Kind: a.dataset.kind, Risk: a.dataset.risk, Label: a.dataset.name,
		Fill: getComputedStyle(a.querySelector('rect')).fill, Dim: a.classList.contains('dim')}))`, &out)
	return out
}

// TestConsoleRuntimeBrowser creates an enforcer group in the console,
// enrolls a kube-enforcer and a Docker host enforcer with its token
// through the server's real fleet backend (certificate requests signed,
// heartbeats with preflight results, inventories with namespaces,
// workloads, pods, containers and connections), and checks in Chromium
// that the enforcers page shows them, that runtime policies can be
// loaded and written, and that the Risk Explorer draws the inventory with
// each node colored by the risk of the scanned image it runs, and that
// its severity filter works, in English and Japanese.
func TestConsoleRuntimeBrowser(t *testing.T) {
	f := newFixtureConfig(t, "", func(c *Config) { c.InsecureCookie = true })
	ctx := context.Background()
	payments := f.ingestWith("reg-c.example", "team-c/payments", "3", vuln.SeverityCritical, vuln.SeverityHigh)
	clean := f.ingestWith("reg-a.example", "team-a/clean", "1")
	hs := httptest.NewServer(f.h)
	defer hs.Close()
	defer f.srv.console.Stop()

	b := webtest.New(t)
	browserFirstLogin(t, b, hs.URL, f)

	// A group made in the console; its token is shown once.
	b.Navigate(hs.URL + "/enforcers")
	b.WaitVisible("#group-name")
	b.SetValue("#group-name", "production")
	b.SetValue("#group-description", "prod cluster and hosts")
	b.Submit("#new-group")
	b.WaitVisible("#enrollment-token")
	token := strings.TrimSpace(b.Text("#enrollment-token"))
	if !strings.HasPrefix(token, "mamori-enroll-") {
		t.Fatalf("enrollment token %q", token)
	}
	checkPage(t, b, "enforcers-token")

	be := f.srv.FleetBackend()
	enroll := func(kind, host string, caps []fleet.Capability, inv fleet.Inventory) string {
		t.Helper()
		enr, err := be.Enroll(ctx, fleet.EnrollRequest{Token: token, Kind: kind, Hostname: host, Version: "0.9.0", CSR: newCSR(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := be.Heartbeat(ctx, fleet.Heartbeat{AgentID: enr.AgentID, Hostname: host, Version: "0.9.0", Capabilities: caps, PolicyRevision: 1, Containers: len(inv.Containers)}); err != nil {
			t.Fatal(err)
		}
		inv.AgentID = enr.AgentID
		if err := be.Inventory(ctx, inv); err != nil {
			t.Fatal(err)
		}
		return enr.AgentID
	}
	enroll(fleet.KindKubeEnforcer, "cluster-1", nil, fleet.Inventory{
		Workloads: []fleet.Workload{
			{Namespace: "payments", Kind: "Deployment", Name: "checkout", Pods: []fleet.Pod{
				{Name: "checkout-7d9f-a", Node: "node-1", Images: []string{payments.Ref(), f.imageA.Ref()}},
				{Name: "checkout-7d9f-b", Node: "node-2", Images: []string{payments.Ref(), f.imageA.Ref()}},
			}},
			{Namespace: "web", Kind: "Deployment", Name: "frontend", Labels: map[string]string{"app": "frontend"}, Pods: []fleet.Pod{{Name: "frontend-1", Node: "node-1", Images: []string{clean.Ref()}}}},
			{Namespace: "tools", Kind: "Job", Name: "debug", Pods: []fleet.Pod{{Name: "debug-x", Images: []string{"docker.io/library/busybox:1.36"}}}},
		},
		Connections: []fleet.Connection{{From: "web/frontend", To: "payments/checkout", Port: 8443, Proto: "tcp"}},
	})
	enroll(fleet.KindEnforcer, "docker-1", []fleet.Capability{
		{Name: "exec-events.tp_btf", Available: true, Detail: "sched_process_exec attached"},
		{Name: "pre-exec-deny.fanotify", Available: true, Detail: "FAN_OPEN_EXEC_PERM"},
		{Name: "lsm.bpf", Available: false, Detail: "bpf is not in /sys/kernel/security/lsm"},
	}, fleet.Inventory{Containers: []fleet.Container{
		{ID: strings.Repeat("a", 64), Name: "api", Image: f.imageB.Ref(), Runtime: "docker"},
		{ID: strings.Repeat("b", 64), Name: "cache", Image: "docker.io/library/redis:7", Runtime: "docker"},
	}})

	b.Navigate(hs.URL + "/enforcers")
	b.WaitVisible("table.agents")
	got := b.Text("main")
	for _, want := range []string{"cluster-1", "docker-1", "kube-enforcer", "available: exec-events.tp_btf", "unavailable: lsm.bpf", "Healthy"} {
		if !strings.Contains(got, want) {
			t.Errorf("enforcers page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, token) {
		t.Error("the enrollment token is shown again")
	}
	checkPage(t, b, "enforcers")

	// Runtime policies: load a baseline, write one in the editor.
	b.Navigate(hs.URL + "/runtime-policies")
	b.WaitVisible("#definition")
	b.Click(`form[action="/runtime-policies/builtin"] input[value="nist-sp-800-190"] ~ button`)
	b.WaitVisible("#runtime-policies")
	// A fresh page, so that the save's notice is the only one.
	b.Navigate(hs.URL + "/runtime-policies")
	b.WaitVisible("#definition")
	b.SetValue("#definition", "name: payments-lockdown\nenabled: true\nmode: audit\nschedule:\n  enforceAfterDays: 14\ncriteria: 'namespace == \"payments\"'\ncontrols:\n  blockExec: {}\n  reverseShell: true\n")
	b.Submit("form.policy")
	b.WaitVisible(".notice")
	if got := b.Text("#runtime-policies"); !strings.Contains(got, "payments-lockdown") || !strings.Contains(got, "nist-sp-800-190") || !strings.Contains(got, "blockExec") {
		t.Errorf("runtime policies: %q", got)
	}
	checkPage(t, b, "runtime-policies")
	if sp, err := f.srv.db.GetRuntimePolicy(ctx, "payments-lockdown"); err != nil || !sp.Enabled {
		t.Errorf("the console's runtime policy: %+v %v", sp, err)
	}

	// The Risk Explorer: every node at the risk of its worst image.
	b.Navigate(hs.URL + "/risk")
	b.WaitVisible("#risk-graph")
	nodes := readGraph(b)
	fills := map[string]string{"CRITICAL": "rgb(255, 235, 233)", "MEDIUM": "rgb(255, 248, 197)", "NONE": "rgb(218, 251, 225)", "UNSCANNED": "rgb(255, 255, 255)"}
	want := map[string]string{
		"payments": "CRITICAL", "checkout": "CRITICAL", "checkout-7d9f-a": "CRITICAL", "reg-c.example/team-c/payments:3": "CRITICAL",
		"web": "NONE", "frontend": "NONE", "reg-a.example/team-a/clean:1": "NONE",
		"tools": "UNSCANNED", "docker.io/library/busybox:1.36": "UNSCANNED", "cache": "UNSCANNED",
		"docker-1": "MEDIUM", "api": "MEDIUM", "reg-b.example/team-b/api:2.0": "MEDIUM", "reg-a.example/team-a/app:1.0": "MEDIUM",
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		w, ok := want[n.Label]
		if !ok {
			continue
		}
		seen[n.Label] = true
		if n.Risk != w || n.Fill != fills[w] {
			t.Errorf("node %s (%s): risk %s fill %s, want %s %s", n.Label, n.Kind, n.Risk, n.Fill, w, fills[w])
		}
	}
	for l := range want {
		if !seen[l] {
			t.Errorf("node %q is not drawn; nodes: %+v", l, nodes)
		}
	}
	var conns int
	b.Eval(`document.querySelectorAll('#risk-graph path.edge.conn').length`, &conns)
	if conns != 1 {
		t.Errorf("%d connection edges, want 1", conns)
	}
	if got := b.Text("#risk-table"); !strings.Contains(got, "checkout-7d9f-b") || !strings.Contains(got, "Critical") {
		t.Errorf("risk table: %q", got)
	}
	checkPage(t, b, "risk")

	// The filter: highlight, then show only, the critical risk.
	b.SetValue("#risk-severity", "CRITICAL")
	b.Submit("form.filter")
	b.WaitVisible("#risk-graph.filtered")
	for _, n := range readGraph(b) {
		if (n.Risk == "CRITICAL") == n.Dim {
			t.Errorf("highlight critical: node %s (%s) dim %v", n.Label, n.Risk, n.Dim)
		}
	}
	b.Click(`input[name="only"]`)
	b.Submit("form.filter")
	b.WaitVisible(`#risk-graph.filtered.only`)
	var loc string
	b.Eval("location.search", &loc)
	nodes = readGraph(b)
	if !strings.Contains(loc, "only=on") || len(nodes) != 5 {
		t.Errorf("only critical (%s): %+v", loc, nodes)
	}
	for _, n := range nodes {
		if n.Risk != "CRITICAL" {
			t.Errorf("only critical shows %+v", n)
		}
	}
	checkPage(t, b, "risk-critical")
	// A node is a link: the image node opens the image's page.
	b.Click(`#risk-graph a.node[data-kind="image"]`)
	b.WaitVisible("#scan-state")
	b.Eval("location.pathname", &loc)
	if loc != "/images/"+strconv.FormatInt(payments.ID, 10) {
		t.Errorf("the image node leads to %s", loc)
	}
	// A workload node opens the workload's page.
	b.Navigate(hs.URL + "/risk")
	b.WaitVisible("#risk-graph")
	b.Click(`#risk-graph a.node[data-kind="workload"][data-risk="NONE"]`)
	b.WaitVisible("#pods")
	if got := b.Text("main"); !strings.Contains(got, "web/frontend") || !strings.Contains(got, "frontend-1") || !strings.Contains(got, "app=frontend") {
		t.Errorf("workload page: %q", got)
	}
	checkPage(t, b, "workload")

	// The dashboard's enforcer health.
	b.Navigate(hs.URL + "/")
	b.WaitVisible("#enforcer-health")
	if got := b.Text("#enforcer-health"); !strings.Contains(got, "production") || !strings.Contains(got, "2") {
		t.Errorf("dashboard enforcer health: %q", got)
	}

	// Japanese.
	ja := webtest.NewWithLanguage(t, "ja")
	browserLogin(t, ja, hs.URL, "admin", f.adminPwd)
	for _, pg := range []struct{ path, sel, want string }{
		{"/risk", "#risk-graph", "リスクエクスプローラー"},
		{"/enforcers", "table.agents", "エンフォーサー"},
		{"/runtime-policies", "#runtime-policies", "ランタイムポリシー"},
	} {
		ja.Navigate(hs.URL + pg.path)
		ja.WaitVisible(pg.sel)
		if got := ja.Text("h1"); got != pg.want {
			t.Errorf("%s in Japanese: %q", pg.path, got)
		}
		checkPage(t, ja, strings.TrimPrefix(pg.path, "/")+"-ja")
	}
}
