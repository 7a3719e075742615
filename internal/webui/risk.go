package webui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/server/store"
)

// Risk levels of a node: the severities, then a scanned image without
// findings (RiskNone) and an image mamori has no scan of (RiskUnscanned).
// A node's level is the worst of the images it runs.
const (
	RiskNone      = "NONE"
	RiskUnscanned = "UNSCANNED"
)

// riskRank orders the levels, worst first; a scanned image counts as
// better than an unknown one.
var riskRank = map[string]int{"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "NEGLIGIBLE": 4, "UNKNOWN": 5, RiskUnscanned: 6, RiskNone: 7}

// worse returns the worse of two levels ("" is no level yet).
func worse(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" || riskRank[a] <= riskRank[b] {
		return a
	}
	return b
}

// imageRisk is the level of a stored image: the worst severity its latest
// scan found.
func imageRisk(im store.Image, ok bool) string {
	if !ok || im.LatestScanID == 0 {
		return RiskUnscanned
	}
	s := im.Summary
	for _, c := range []struct {
		n    int
		name string
	}{{s.Critical, "CRITICAL"}, {s.High, "HIGH"}, {s.Medium, "MEDIUM"}, {s.Low, "LOW"}, {s.Negligible, "NEGLIGIBLE"}, {s.Unknown, "UNKNOWN"}} {
		if c.n > 0 {
			return c.name
		}
	}
	return RiskNone
}

// Graph layout, in SVG user units.
const (
	graphColumns = 4
	nodeWidth    = 210
	nodeHeight   = 34
	colGap       = 70
	rowGap       = 12
	graphMargin  = 16
	labelChars   = 26
	// maxGraphNodes bounds the drawing; the table lists what does not fit.
	maxGraphNodes = 600
)

// riskNode is one node of the Risk Explorer graph.
type riskNode struct {
	// Key identifies the node within the graph.
	Key string
	// Kind is namespace, host, workload, pod, container or image.
	Kind string
	// Name is the full name; Label the name as drawn (shortened).
	Name, Label string
	// Detail is the node's kind in its own terms (Deployment, docker...).
	Detail string
	// Parent is the full path to the node, for the table.
	Parent string
	Risk   string
	Href   string
	// ImageID is the stored image (0 when not scanned or not visible).
	ImageID int64
	Col     int
	X, Y    int
	// Match is whether the severity filter selects the node; Dim whether
	// it is drawn faded (a filter is set and it does not match).
	Match, Dim bool
	children   []*riskNode
}

// riskEdge is a line between two nodes: containment (workload → pod) or,
// with Conn, a reported network connection.
type riskEdge struct {
	Path  string
	Conn  bool
	Dim   bool
	Label string
}

// riskGraph is the laid-out graph and its table.
type riskGraph struct {
	Nodes       []*riskNode
	Edges       []riskEdge
	Width       int
	Height      int
	Truncated   bool
	Connections []fleet.Connection
}

// riskFilter is the Risk Explorer's filter form.
type riskFilter struct {
	// Severity selects nodes at least this severe, or RiskUnscanned.
	Severity string
	// Only hides what the filter does not select.
	Only bool
	// Namespace shows one namespace (and no hosts).
	Namespace string
}

func (f riskFilter) active() bool { return f.Severity != "" }

// matches reports whether a level is selected.
func (f riskFilter) matches(risk string) bool {
	switch f.Severity {
	case "":
		return true
	case RiskUnscanned:
		return risk == RiskUnscanned
	}
	r, ok := riskRank[risk]
	return ok && risk != RiskUnscanned && risk != RiskNone && r <= riskRank[f.Severity]
}

func parseRiskFilter(q url.Values) riskFilter {
	f := riskFilter{Only: q.Get("only") == "on", Namespace: q.Get("namespace")}
	switch s := q.Get("severity"); s {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW", RiskUnscanned:
		f.Severity = s
	}
	return f
}

// imageKeys are the references to look an inventory image up by: by
// digest first (the most exact), then as written.
func imageKeys(ref, digest string) []string {
	var keys []string
	if digest != "" && !strings.Contains(ref, "@") && strings.HasPrefix(digest, "sha256:") {
		repo := ref
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		keys = append(keys, repo+"@"+digest)
	}
	if ref != "" {
		keys = append(keys, ref)
	}
	return keys
}

// inventoryRefs lists every image reference the inventory names.
func inventoryRefs(invs []store.AgentInventory) []string {
	seen := map[string]bool{}
	var out []string
	add := func(keys []string) {
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	for _, ai := range invs {
		for _, c := range ai.Inventory.Containers {
			add(imageKeys(c.Image, c.ImageDigest))
		}
		for _, wl := range ai.Inventory.Workloads {
			for _, p := range wl.Pods {
				for _, im := range p.Images {
					add(imageKeys(im, ""))
				}
			}
		}
	}
	return out
}

// graphBuilder collects nodes before layout.
type graphBuilder struct {
	images map[string]store.Image
	nodes  map[string]*riskNode
	roots  []*riskNode
	// imageOrder keeps image nodes in the order first reached.
	imageOrder []*riskNode
}

func (b *graphBuilder) node(key, kind, name, detail, parent, href string, col int) *riskNode {
	if n, ok := b.nodes[key]; ok {
		return n
	}
	n := &riskNode{Key: key, Kind: kind, Name: name, Label: shorten(name, kind == "image"), Detail: detail, Parent: parent, Href: href, Col: col}
	b.nodes[key] = n
	return n
}

// image returns the node of an image reference, colored by its scan.
func (b *graphBuilder) image(ref, digest string) *riskNode {
	var im store.Image
	ok := false
	for _, k := range imageKeys(ref, digest) {
		if im, ok = b.images[k]; ok {
			break
		}
	}
	key := "image:" + ref
	if n, found := b.nodes[key]; found {
		return n
	}
	n := b.node(key, "image", ref, "", "", "", 3)
	n.Risk = imageRisk(im, ok)
	if ok {
		n.ImageID = im.ID
		n.Href = "/images/" + strconv.FormatInt(im.ID, 10)
	}
	b.imageOrder = append(b.imageOrder, n)
	return n
}

// shorten fits a name into a node; an image reference keeps its end
// (the repository and tag say more than the registry).
func shorten(s string, keepEnd bool) string {
	r := []rune(s)
	switch {
	case len(r) <= labelChars:
		return s
	case keepEnd:
		return "…" + string(r[len(r)-labelChars+1:])
	}
	return string(r[:labelChars-1]) + "…"
}

func addChild(p, c *riskNode) {
	if !slices.Contains(p.children, c) {
		p.children = append(p.children, c)
	}
}

// workloadHref links a workload's detail page.
func workloadHref(agent, ns, name string) string {
	return "/risk/workload?" + url.Values{"agent": {agent}, "namespace": {ns}, "name": {name}}.Encode()
}

// hostHref links a host's detail page.
func hostHref(agent string) string { return "/risk/host?" + url.Values{"agent": {agent}}.Encode() }

// buildRiskGraph turns the inventory into the graph: namespaces →
// workloads → pods → images, and hosts → containers → images, each node
// at the risk of the worst image under it, laid out in columns in a
// fixed order (so the same inventory always draws the same picture).
func buildRiskGraph(invs []store.AgentInventory, images map[string]store.Image, f riskFilter) riskGraph {
	b := &graphBuilder{images: images, nodes: map[string]*riskNode{}}
	var g riskGraph
	// Namespaces with their workloads, across every reporting cluster.
	type wlRef struct {
		agent string
		wl    fleet.Workload
	}
	byNS := map[string][]wlRef{}
	for _, ai := range invs {
		for _, wl := range ai.Inventory.Workloads {
			if f.Namespace == "" || wl.Namespace == f.Namespace {
				byNS[wl.Namespace] = append(byNS[wl.Namespace], wlRef{ai.Agent.ID, wl})
			}
		}
	}
	nsNames := make([]string, 0, len(byNS))
	for ns := range byNS {
		nsNames = append(nsNames, ns)
	}
	slices.Sort(nsNames)
	for _, ns := range nsNames {
		nsNode := b.node("ns:"+ns, "namespace", ns, "", "", "/risk?"+url.Values{"namespace": {ns}}.Encode(), 0)
		b.roots = append(b.roots, nsNode)
		wls := byNS[ns]
		slices.SortStableFunc(wls, func(a, c wlRef) int {
			return cmp.Or(strings.Compare(a.wl.Name, c.wl.Name), strings.Compare(a.wl.Kind, c.wl.Kind), strings.Compare(a.agent, c.agent))
		})
		for _, w := range wls {
			href := workloadHref(w.agent, ns, w.wl.Name)
			wn := b.node("wl:"+w.agent+"/"+ns+"/"+w.wl.Kind+"/"+w.wl.Name, "workload", w.wl.Name, w.wl.Kind, ns, href, 1)
			addChild(nsNode, wn)
			pods := slices.Clone(w.wl.Pods)
			slices.SortStableFunc(pods, func(a, c fleet.Pod) int { return strings.Compare(a.Name, c.Name) })
			for _, p := range pods {
				pn := b.node(wn.Key+"/pod/"+p.Name, "pod", p.Name, p.Node, ns+" / "+w.wl.Name, href, 2)
				addChild(wn, pn)
				for _, im := range p.Images {
					addChild(pn, b.image(im, ""))
				}
			}
		}
	}
	// Hosts with their containers (plain Docker hosts and Kubernetes
	// nodes alike: what the enforcer saw).
	if f.Namespace == "" {
		for _, ai := range invs {
			if len(ai.Inventory.Containers) == 0 {
				continue
			}
			hn := b.node("host:"+ai.Agent.ID, "host", ai.Agent.Hostname, ai.Agent.Kind, "", hostHref(ai.Agent.ID), 0)
			b.roots = append(b.roots, hn)
			cs := slices.Clone(ai.Inventory.Containers)
			slices.SortStableFunc(cs, func(a, c fleet.Container) int {
				return cmp.Or(strings.Compare(a.Name, c.Name), strings.Compare(a.ID, c.ID))
			})
			for i, c := range cs {
				name := cmp.Or(c.Name, shortID(c.ID))
				cn := b.node(hn.Key+"/c/"+c.ID+"/"+strconv.Itoa(i), "container", name, c.Runtime, ai.Agent.Hostname, hostHref(ai.Agent.ID)+"#c-"+strconv.Itoa(containerIndex(ai.Inventory.Containers, c)), 2)
				addChild(hn, cn)
				addChild(cn, b.image(c.Image, c.ImageDigest))
			}
		}
	}
	for _, ai := range invs {
		for _, c := range ai.Inventory.Connections {
			if f.Namespace == "" || strings.HasPrefix(c.From, f.Namespace+"/") || strings.HasPrefix(c.To, f.Namespace+"/") {
				g.Connections = append(g.Connections, c)
			}
		}
	}
	// Risk flows up from the images; the filter marks what it selects.
	var rate func(n *riskNode) string
	rate = func(n *riskNode) string {
		if n.Kind != "image" {
			n.Risk = ""
			for _, c := range n.children {
				n.Risk = worse(n.Risk, rate(c))
			}
			if n.Risk == "" {
				n.Risk = RiskUnscanned
			}
		}
		return n.Risk
	}
	var mark func(n *riskNode) bool
	mark = func(n *riskNode) bool {
		any := false
		for _, c := range n.children {
			if mark(c) {
				any = true
			}
		}
		if n.Kind == "image" {
			any = f.matches(n.Risk)
		}
		n.Match = any
		n.Dim = f.active() && !any
		return any
	}
	for _, r := range b.roots {
		rate(r)
		mark(r)
	}
	layout(&g, b, f)
	return g
}

// containerIndex is a container's position in its host's report, which
// the host page uses as its anchor.
func containerIndex(cs []fleet.Container, c fleet.Container) int {
	for i := range cs {
		if cs[i].ID == c.ID && cs[i].Name == c.Name {
			return i
		}
	}
	return 0
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// layout places the nodes column by column in depth-first order and
// draws the edges.
func layout(g *riskGraph, b *graphBuilder, f riskFilter) {
	rows := make([]int, graphColumns)
	placed := map[*riskNode]bool{}
	var order []*riskNode
	var visit func(n *riskNode)
	visit = func(n *riskNode) {
		if placed[n] || (f.Only && !n.Match) || len(order) >= maxGraphNodes {
			if len(order) >= maxGraphNodes && !placed[n] {
				g.Truncated = true
			}
			return
		}
		placed[n] = true
		n.X = graphMargin + n.Col*(nodeWidth+colGap)
		n.Y = graphMargin + rows[n.Col]*(nodeHeight+rowGap)
		rows[n.Col]++
		order = append(order, n)
		for _, c := range n.children {
			visit(c)
		}
	}
	for _, r := range b.roots {
		visit(r)
	}
	// Tables list nodes top to bottom, column by column.
	slices.SortStableFunc(order, func(a, c *riskNode) int { return cmp.Or(a.Col-c.Col, a.Y-c.Y) })
	g.Nodes = order
	for i, n := range order {
		// A node without a page of its own (an image mamori has no scan
		// of) links its row in the table.
		if n.Href == "" {
			n.Href = "#node-" + strconv.Itoa(i)
		}
	}
	maxRows := slices.Max(rows)
	g.Width = 2*graphMargin + graphColumns*nodeWidth + (graphColumns-1)*colGap
	g.Height = 2*graphMargin + max(maxRows, 1)*(nodeHeight+rowGap)
	for _, n := range order {
		for _, c := range n.children {
			if !placed[c] {
				continue
			}
			x1, y1 := n.X+nodeWidth, n.Y+nodeHeight/2
			x2, y2 := c.X, c.Y+nodeHeight/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, riskEdge{Path: fmt.Sprintf("M%d %dC%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2, y2), Dim: c.Dim})
		}
	}
	// Connections join workloads ("namespace/name") or containers (by
	// name), drawn as arcs left of their column.
	find := func(end string) *riskNode {
		for _, n := range order {
			switch n.Kind {
			case "workload":
				if n.Parent+"/"+n.Name == end {
					return n
				}
			case "container":
				if n.Name == end {
					return n
				}
			}
		}
		return nil
	}
	for _, c := range g.Connections {
		a, z := find(c.From), find(c.To)
		if a == nil || z == nil || a == z {
			continue
		}
		y1, y2 := a.Y+nodeHeight/2, z.Y+nodeHeight/2
		bend := 24 + abs(y2-y1)/6
		label := c.Proto
		if c.Port != 0 {
			label = strings.TrimSpace(label + " " + strconv.Itoa(c.Port))
		}
		g.Edges = append(g.Edges, riskEdge{Path: fmt.Sprintf("M%d %dC%d %d %d %d %d %d", a.X, y1, a.X-bend, y1, z.X-bend, y2, z.X, y2),
			Conn: true, Dim: a.Dim && z.Dim, Label: c.From + " → " + c.To + " " + label})
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// riskPage shows the Risk Explorer: the graph of what agents reported,
// with its table, or the honest statement that nothing was reported.
func (u *UI) riskPage(w http.ResponseWriter, r *http.Request) {
	invs, err := u.d.Inventory(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	f := parseRiskFilter(r.URL.Query())
	data := map[string]any{"Filter": f, "Levels": []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", RiskUnscanned},
		"Legend": []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN", RiskNone, RiskUnscanned}}
	if len(invs) > 0 {
		images, err := u.d.LookupImages(r, inventoryRefs(invs))
		if err != nil {
			u.fail(w, r, err)
			return
		}
		g := buildRiskGraph(invs, images, f)
		data["Graph"] = g
	}
	u.render(w, r, http.StatusOK, "risk", page{Page: "risk", Data: data})
}

// inventoryOf finds the reporting agent's inventory among those the
// caller may see.
func (u *UI) inventoryOf(r *http.Request, agent string) (store.AgentInventory, map[string]store.Image, error) {
	invs, err := u.d.Inventory(r)
	if err != nil {
		return store.AgentInventory{}, nil, err
	}
	for _, ai := range invs {
		if ai.Agent.ID == agent && agent != "" {
			images, err := u.d.LookupImages(r, inventoryRefs([]store.AgentInventory{ai}))
			return ai, images, err
		}
	}
	return store.AgentInventory{}, nil, store.ErrNotFound
}

// imageCell is an image reference with its stored image and risk.
type imageCell struct {
	Ref  string
	ID   int64
	Risk string
}

func cellOf(images map[string]store.Image, ref, digest string) imageCell {
	for _, k := range imageKeys(ref, digest) {
		if im, ok := images[k]; ok {
			return imageCell{Ref: ref, ID: im.ID, Risk: imageRisk(im, true)}
		}
	}
	return imageCell{Ref: ref, Risk: RiskUnscanned}
}

// podView is a pod with its images' risk.
type podView struct {
	fleet.Pod
	Cells []imageCell
}

// workloadPage shows one workload a kube-enforcer reported: its pods,
// their images with risk, its labels and its connections.
func (u *UI) workloadPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ai, images, err := u.inventoryOf(r, q.Get("agent"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, wl := range ai.Inventory.Workloads {
		if wl.Namespace != q.Get("namespace") || wl.Name != q.Get("name") {
			continue
		}
		var pods []podView
		for _, p := range wl.Pods {
			v := podView{Pod: p}
			for _, im := range p.Images {
				v.Cells = append(v.Cells, cellOf(images, im, ""))
			}
			pods = append(pods, v)
		}
		var conns []fleet.Connection
		self := wl.Namespace + "/" + wl.Name
		for _, c := range ai.Inventory.Connections {
			if c.From == self || c.To == self {
				conns = append(conns, c)
			}
		}
		u.render(w, r, http.StatusOK, "workload", page{Page: "risk", Title: wl.Namespace + "/" + wl.Name,
			Data: map[string]any{"Workload": wl, "Cluster": ai.Agent.Hostname, "Pods": pods, "Connections": conns, "Labels": sortedLabels(wl.Labels)}})
		return
	}
	u.fail(w, r, store.ErrNotFound)
}

// containerView is a container with its image's risk.
type containerView struct {
	fleet.Container
	Index  int
	Cell   imageCell
	Labels []string
}

// hostPage shows one host an enforcer reported with its containers.
func (u *UI) hostPage(w http.ResponseWriter, r *http.Request) {
	ai, images, err := u.inventoryOf(r, r.URL.Query().Get("agent"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var cs []containerView
	for i, c := range ai.Inventory.Containers {
		cs = append(cs, containerView{Container: c, Index: i, Cell: cellOf(images, c.Image, c.ImageDigest), Labels: sortedLabels(c.Labels)})
	}
	u.render(w, r, http.StatusOK, "host", page{Page: "risk", Title: ai.Agent.Hostname,
		Data: map[string]any{"Agent": ai.Agent, "Time": ai.Inventory.Time, "Containers": cs, "Connections": ai.Inventory.Connections}})
}

// sortedLabels writes labels as key=value, sorted.
func sortedLabels(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// workloadHit is one running workload or container that runs an image.
type workloadHit struct {
	// Kind is "pod" or "container"; Where the namespace/workload or host;
	// Name the pod or container; Href its detail page.
	Kind, Where, Name, Image, Href string
}

// affectedWorkloads lists the pods and containers in the inventory that
// run one of the images.
func affectedWorkloads(invs []store.AgentInventory, images map[string]store.Image, affected []store.Image) []workloadHit {
	ids := map[int64]bool{}
	for _, im := range affected {
		ids[im.ID] = true
	}
	hit := func(ref, digest string) bool {
		for _, k := range imageKeys(ref, digest) {
			if im, ok := images[k]; ok {
				return ids[im.ID]
			}
		}
		return false
	}
	var out []workloadHit
	for _, ai := range invs {
		for _, wl := range ai.Inventory.Workloads {
			for _, p := range wl.Pods {
				for _, im := range p.Images {
					if hit(im, "") {
						out = append(out, workloadHit{Kind: "pod", Where: wl.Namespace + "/" + wl.Name, Name: p.Name, Image: im, Href: workloadHref(ai.Agent.ID, wl.Namespace, wl.Name)})
					}
				}
			}
		}
		for i, c := range ai.Inventory.Containers {
			if hit(c.Image, c.ImageDigest) {
				out = append(out, workloadHit{Kind: "container", Where: ai.Agent.Hostname, Name: cmp.Or(c.Name, shortID(c.ID)), Image: c.Image, Href: hostHref(ai.Agent.ID) + "#c-" + strconv.Itoa(i)})
			}
		}
	}
	return out
}
