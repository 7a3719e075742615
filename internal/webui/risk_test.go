package webui

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/store"
)

// testInventory is a kube-enforcer's cluster and a Docker host.
func testInventory() []store.AgentInventory {
	return []store.AgentInventory{
		{Agent: store.Agent{ID: "agent-k", Hostname: "cluster-1", Kind: fleet.KindKubeEnforcer}, Inventory: fleet.Inventory{
			Workloads: []fleet.Workload{
				{Namespace: "shop", Kind: "Deployment", Name: "web", Pods: []fleet.Pod{
					{Name: "web-b", Images: []string{"reg.example/shop/web:1"}},
					{Name: "web-a", Images: []string{"reg.example/shop/web:1", "reg.example/shop/sidecar:2"}},
				}},
				{Namespace: "shop", Kind: "StatefulSet", Name: "db", Pods: []fleet.Pod{{Name: "db-0", Images: []string{"reg.example/shop/db@sha256:" + strings.Repeat("a", 64)}}}},
				{Namespace: "batch", Kind: "Job", Name: "report", Pods: []fleet.Pod{{Name: "report-x", Images: []string{"busybox:1"}}}},
			},
			Connections: []fleet.Connection{{From: "shop/web", To: "shop/db", Port: 5432, Proto: "tcp"}, {From: "shop/web", To: "elsewhere"}},
		}},
		{Agent: store.Agent{ID: "agent-d", Hostname: "docker-1", Kind: fleet.KindEnforcer}, Inventory: fleet.Inventory{
			Containers: []fleet.Container{
				{ID: "2222", Name: "cache", Image: "redis:7", Runtime: "docker"},
				{ID: "1111", Name: "api", Image: "reg.example/shop/api:3", ImageDigest: "sha256:" + strings.Repeat("b", 64), Runtime: "docker"},
			},
		}},
	}
}

// testImages are the stored images the inventory's references name.
func testImages() map[string]store.Image {
	return map[string]store.Image{
		"reg.example/shop/web:1":                                 {ID: 1, LatestScanID: 1, Summary: store.Summary{High: 2, Low: 1}},
		"reg.example/shop/sidecar:2":                             {ID: 2, LatestScanID: 2, Summary: store.Summary{Critical: 1}},
		"reg.example/shop/db@sha256:" + strings.Repeat("a", 64):  {ID: 3, LatestScanID: 3},
		"reg.example/shop/api@sha256:" + strings.Repeat("b", 64): {ID: 4, LatestScanID: 4, Summary: store.Summary{Medium: 1}},
		"busybox:1": {ID: 5},
	}
}

func byName(g riskGraph) map[string]*riskNode {
	m := map[string]*riskNode{}
	for _, n := range g.Nodes {
		m[n.Kind+":"+n.Name] = n
	}
	return m
}

func TestBuildRiskGraph(t *testing.T) {
	g := buildRiskGraph(testInventory(), testImages(), riskFilter{})
	n := byName(g)
	for _, c := range []struct{ node, risk, href string }{
		{"image:reg.example/shop/sidecar:2", "CRITICAL", "/images/2"},
		{"image:reg.example/shop/web:1", "HIGH", "/images/1"},
		{"image:reg.example/shop/db@sha256:" + strings.Repeat("a", 64), RiskNone, "/images/3"},
		{"image:reg.example/shop/api:3", "MEDIUM", "/images/4"}, // by its digest
		{"image:redis:7", RiskUnscanned, "#node-"},
		{"image:busybox:1", RiskUnscanned, "/images/5"}, // stored but never scanned
		{"pod:web-a", "CRITICAL", "/risk/workload?agent=agent-k&name=web&namespace=shop"},
		{"pod:web-b", "HIGH", ""},
		{"workload:web", "CRITICAL", ""},
		{"workload:db", RiskNone, ""},
		{"namespace:shop", "CRITICAL", "/risk?namespace=shop"},
		{"namespace:batch", RiskUnscanned, ""},
		{"host:docker-1", "MEDIUM", "/risk/host?agent=agent-d"},
		{"container:api", "MEDIUM", "/risk/host?agent=agent-d#c-1"},
	} {
		got := n[c.node]
		if got == nil {
			t.Errorf("no node %s", c.node)
			continue
		}
		if got.Risk != c.risk || !strings.HasPrefix(got.Href, c.href) {
			t.Errorf("%s: risk %s href %s, want %s %s", c.node, got.Risk, got.Href, c.risk, c.href)
		}
	}
	// Columns: roots, workloads, pods and containers, images; namespaces
	// before hosts, each sorted.
	var cols [graphColumns][]string
	for _, nd := range g.Nodes {
		cols[nd.Col] = append(cols[nd.Col], nd.Kind+":"+nd.Name)
	}
	want := [graphColumns][]string{
		{"namespace:batch", "namespace:shop", "host:docker-1"},
		{"workload:report", "workload:db", "workload:web"},
		{"pod:report-x", "pod:db-0", "pod:web-a", "pod:web-b", "container:api", "container:cache"},
	}
	for i := range 3 {
		if !slices.Equal(cols[i], want[i]) {
			t.Errorf("column %d: %q, want %q", i, cols[i], want[i])
		}
	}
	if len(cols[3]) != 6 {
		t.Errorf("images: %q", cols[3])
	}
	// One connection joins two drawn workloads; the other names an
	// endpoint nobody reported and stays in the table only.
	conns := 0
	for _, e := range g.Edges {
		if e.Conn {
			conns++
		}
	}
	if conns != 1 || len(g.Connections) != 2 {
		t.Errorf("%d connection edges, %d connections", conns, len(g.Connections))
	}
	// Deterministic: the same inventory in another order draws the same.
	inv := testInventory()
	slices.Reverse(inv[0].Inventory.Workloads)
	slices.Reverse(inv[1].Inventory.Containers)
	again := buildRiskGraph(inv, testImages(), riskFilter{})
	if !reflect.DeepEqual(positions(g), positions(again)) || !reflect.DeepEqual(g.Edges[:len(g.Edges)-1], again.Edges[:len(again.Edges)-1]) {
		t.Errorf("the layout depends on the input order:\n%v\n%v", positions(g), positions(again))
	}
}

func positions(g riskGraph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.Key+"@"+jsonOf(n.X)+","+jsonOf(n.Y))
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRiskFilter(t *testing.T) {
	for _, c := range []struct {
		query string
		want  riskFilter
		// shown and dimmed are image names drawn plain and faded.
		shown, dimmed []string
	}{
		{"", riskFilter{}, []string{"reg.example/shop/sidecar:2", "redis:7"}, nil},
		{"severity=HIGH", riskFilter{Severity: "HIGH"}, []string{"reg.example/shop/web:1", "reg.example/shop/sidecar:2"}, []string{"redis:7", "reg.example/shop/api:3"}},
		{"severity=HIGH&only=on", riskFilter{Severity: "HIGH", Only: true}, []string{"reg.example/shop/web:1"}, nil},
		{"severity=UNSCANNED&only=on", riskFilter{Severity: RiskUnscanned, Only: true}, []string{"redis:7", "busybox:1"}, nil},
		{"severity=NONE", riskFilter{}, nil, nil},
		{"severity=%3Cscript%3E&namespace=batch", riskFilter{Namespace: "batch"}, []string{"busybox:1"}, nil},
	} {
		q, _ := url.ParseQuery(c.query)
		f := parseRiskFilter(q)
		if f != c.want {
			t.Errorf("%q: filter %+v, want %+v", c.query, f, c.want)
			continue
		}
		n := byName(buildRiskGraph(testInventory(), testImages(), f))
		for _, s := range c.shown {
			if nd := n["image:"+s]; nd == nil || nd.Dim {
				t.Errorf("%q: %s is not shown plainly", c.query, s)
			}
		}
		for _, s := range c.dimmed {
			if nd := n["image:"+s]; nd == nil || !nd.Dim {
				t.Errorf("%q: %s is not dimmed", c.query, s)
			}
		}
		if f.Only {
			for _, nd := range n {
				if !nd.Match {
					t.Errorf("%q: %s is drawn although it does not match", c.query, nd.Key)
				}
			}
		}
		if f.Namespace != "" && (n["host:docker-1"] != nil || n["namespace:shop"] != nil) {
			t.Errorf("%q: other namespaces or hosts are drawn", c.query)
		}
	}
}

func TestRiskGraphBounded(t *testing.T) {
	inv := store.AgentInventory{Agent: store.Agent{ID: "a", Hostname: "h"}}
	for i := range maxGraphNodes * 2 {
		inv.Inventory.Containers = append(inv.Inventory.Containers, fleet.Container{ID: jsonOf(i), Name: "c" + jsonOf(i), Image: "img:" + jsonOf(i)})
	}
	g := buildRiskGraph([]store.AgentInventory{inv}, nil, riskFilter{})
	if len(g.Nodes) != maxGraphNodes || !g.Truncated {
		t.Errorf("%d nodes drawn, truncated %v", len(g.Nodes), g.Truncated)
	}
}

func TestImageKeys(t *testing.T) {
	d := "sha256:" + strings.Repeat("c", 64)
	for _, c := range []struct {
		ref, digest string
		want        []string
	}{
		{"reg:5000/a/b:1", d, []string{"reg:5000/a/b@" + d, "reg:5000/a/b:1"}},
		{"reg:5000/a/b", d, []string{"reg:5000/a/b@" + d, "reg:5000/a/b"}},
		{"a/b@" + d, d, []string{"a/b@" + d}},
		{"a/b:1", "abc", []string{"a/b:1"}},
		{"", "", nil},
	} {
		if got := imageKeys(c.ref, c.digest); !slices.Equal(got, c.want) {
			t.Errorf("imageKeys(%q, %q) = %q, want %q", c.ref, c.digest, got, c.want)
		}
	}
}

func TestControlsOf(t *testing.T) {
	p := runtimepolicy.Policy{Controls: runtimepolicy.Controls{
		ForkGuard:    &runtimepolicy.ForkGuard{MaxProcesses: 10, Mode: runtimepolicy.Enforce},
		ReverseShell: &runtimepolicy.Toggle{Enabled: true},
		CryptoMiner:  &runtimepolicy.Toggle{Enabled: false},
	}}
	want := []controlSummary{{"forkGuard", "enforce"}, {"reverseShell", ""}}
	if got := controlsOf(p.Controls); !reflect.DeepEqual(got, want) {
		t.Errorf("controlsOf = %+v, want %+v", got, want)
	}
}

func TestGroupsWithAgents(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	agents := []store.Agent{
		{ID: "1", Group: "a", LastSeen: now.Add(-time.Minute)},
		{ID: "2", Group: "a", LastSeen: now.Add(-3 * time.Minute)},
		{ID: "3", Group: "b"},
	}
	gs := groupsWithAgents([]store.EnforcerGroup{{Name: "a", ID: 1}, {Name: "empty", ID: 2}}, agents, now)
	got := map[string][3]int{}
	for _, g := range gs {
		got[g.Name] = [3]int{g.Healthy, g.Stale, g.Silent}
	}
	want := map[string][3]int{"a": {1, 1, 0}, "empty": {0, 0, 0}, "b": {0, 0, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups: %v, want %v", got, want)
	}
}

func TestEventDetail(t *testing.T) {
	ev, _ := json.Marshal(fleet.Event{Status: fleet.StatusBlock, Policy: "default", Control: "reverseShell", Message: "a shell", Namespace: "shop", Pod: "web-a", Image: "reg/x:1"})
	for _, c := range []struct {
		e    audit.Event
		want string
	}{
		{audit.Event{Action: "runtime.block", After: ev, Outcome: audit.Success}, "block · default/reverseShell · a shell · shop/web-a · reg/x:1"},
		{audit.Event{Action: "runtime.detect", After: []byte(`{"status":"detect","container":"c","message":"m"}`)}, "detect · m · c"},
		{audit.Event{Action: "runtime.detect", After: []byte(`not json`)}, ""},
		{audit.Event{Action: "image.get", Outcome: audit.Denied, Reason: "no role"}, "no role"},
		{audit.Event{Action: "image.get", Outcome: audit.Success, Reason: "x"}, ""},
		{audit.Event{Action: "runtime.block", After: []byte(`{"message":"` + strings.Repeat("x", 400) + `"}`)}, strings.Repeat("x", maxDetail-1) + "…"},
	} {
		if got := eventDetail(c.e); got != c.want {
			t.Errorf("eventDetail(%s %s) = %q, want %q", c.e.Action, c.e.After, got, c.want)
		}
	}
}

// FuzzRiskGraph builds graphs from arbitrary names, images and
// connections: no panic, every node inside the drawing, at most
// maxGraphNodes nodes.
func FuzzRiskGraph(f *testing.F) {
	f.Add("shop", "web", "reg.example/shop/web:1", "shop/web", "sha256:00", "HIGH")
	f.Add("", "", "", "", "", "")
	f.Add("<ns>", "a/b", "@@::", "/", "sha256:", "UNSCANNED")
	f.Fuzz(func(t *testing.T, ns, name, image, conn, digest, severity string) {
		inv := []store.AgentInventory{{Agent: store.Agent{ID: name, Hostname: ns}, Inventory: fleet.Inventory{
			Workloads:   []fleet.Workload{{Namespace: ns, Name: name, Pods: []fleet.Pod{{Name: name, Images: []string{image, image}}}}},
			Containers:  []fleet.Container{{ID: name, Name: conn, Image: image, ImageDigest: digest}, {ID: name, Name: conn, Image: image}},
			Connections: []fleet.Connection{{From: conn, To: ns + "/" + name}, {From: ns + "/" + name, To: conn}},
		}}}
		images := map[string]store.Image{image: {ID: 1, LatestScanID: 1, Summary: store.Summary{High: 1}}}
		g := buildRiskGraph(inv, images, parseRiskFilter(url.Values{"severity": {severity}, "only": {"on"}, "namespace": {ns}}))
		if len(g.Nodes) > maxGraphNodes {
			t.Fatalf("%d nodes", len(g.Nodes))
		}
		for _, n := range g.Nodes {
			if n.X < 0 || n.Y < 0 || n.X+nodeWidth > g.Width || n.Y+nodeHeight > g.Height {
				t.Fatalf("node %q at %d,%d outside %dx%d", n.Key, n.X, n.Y, g.Width, g.Height)
			}
		}
	})
}
