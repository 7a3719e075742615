package runtimepolicy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/server/rbac"
)

// Workload is what a policy is matched against: a container, or a host
// process (Container empty).
type Workload struct {
	Host string
	// Cluster is the Kubernetes cluster name, if any.
	Cluster string
	// Container is the container name.
	Container string
	// Image is the image reference the container runs, as the runtime
	// reports it ("nginx:1.27", "registry.example/team-a/app@sha256:...").
	Image     string
	Labels    map[string]string
	Namespace string
	Pod       string
}

// attrs are a workload's attributes with the image split up.
type attrs struct {
	Workload
	repo, registry string
}

func newAttrs(w Workload) attrs {
	repo, registry := Repository(w.Image)
	return attrs{Workload: w, repo: repo, registry: registry}
}

func (a *attrs) get(field, key string) string {
	switch field {
	case "namespace":
		return a.Namespace
	case "image":
		return a.repo
	case "container":
		return a.Container
	case "host":
		return a.Host
	case "pod":
		return a.Pod
	case "cluster":
		return a.Cluster
	case "registry":
		return a.registry
	case "label":
		return a.Labels[key]
	}
	return ""
}

func (a *attrs) rbac() rbac.Attributes {
	return rbac.Attributes{Registry: a.registry, Image: a.repo, Cluster: a.Cluster, Host: a.Host,
		Namespace: a.Namespace, Labels: a.Labels, Container: a.Container}
}

// Repository splits an image reference into its repository name with the
// registry host ("docker.io/library/nginx" for "nginx:1.27") and the
// registry host, dropping the tag and digest. Docker Hub names are
// normalized to docker.io the way the Docker CLI does.
func Repository(image string) (repo, registry string) {
	if image == "" {
		return "", ""
	}
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	first, _, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return name, first
	}
	rest := name
	if !ok {
		rest = "library/" + first
	}
	return "docker.io/" + rest, "docker.io"
}

// DefaultBypass is the global bypass a new enforcer group starts with:
// the kube-system namespace, whose system pods must never be blocked.
func DefaultBypass() fleet.Bypass {
	return fleet.Bypass{Namespaces: []string{"kube-system"}, Labels: []string{}}
}

// Set is a compiled policy bundle.
type Set struct {
	revision  int64
	settings  fleet.GroupSettings
	policies  []compiled
	bypassNS  []rbac.Glob
	bypassLbl []labelSel
}

type labelSel struct {
	key, value string
	anyValue   bool
}

// compiled is one enabled policy with its modes resolved.
type compiled struct {
	p        Policy
	scopes   []rbac.ApplicationScope // nil: every workload
	criteria Criteria
	controls []control
}

// control is one control of one policy with its effective mode.
type control struct {
	name string
	mode Mode
	// Compiled parameters; which are set depends on name.
	globs  []rbac.Glob
	items  []string
	limit  int
	block  bool // fileIntegrity.blockWrites
	out    []Rule
	in     []Rule
	outSet bool
	inSet  bool
}

// Compile decodes and validates the bundle's policies and scopes, resolves
// each policy's mode at now (schedule, then the group's AuditOnly
// setting), and drops disabled policies. A policy naming a scope the
// bundle does not define is an error.
func Compile(bundle fleet.PolicyBundle, now time.Time) (*Set, error) {
	scopes := map[string]rbac.ApplicationScope{rbac.GlobalScopeName: rbac.GlobalScope}
	for i, raw := range bundle.Scopes {
		s, err := rbac.ParseScope(raw)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %d: scopes[%d]: %w", bundle.Revision, i, err)
		}
		scopes[s.Name] = s
	}
	set := &Set{revision: bundle.Revision, settings: bundle.Settings}
	seen := map[string]bool{}
	for i, raw := range bundle.Policies {
		p, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %d: policies[%d]: %w", bundle.Revision, i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("policy bundle %d: policies[%d]: name %q is used twice", bundle.Revision, i, p.Name)
		}
		seen[p.Name] = true
		if !p.Enabled {
			continue
		}
		c, err := compile(p, scopes, now, bundle.Settings.AuditOnly)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %d: policies[%d]: %w", bundle.Revision, i, err)
		}
		set.policies = append(set.policies, c)
	}
	for i, ns := range bundle.Bypass.Namespaces {
		g, err := rbac.ParseGlob(ns)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %d: bypass.namespaces[%d]: %w", bundle.Revision, i, err)
		}
		set.bypassNS = append(set.bypassNS, g)
	}
	for i, l := range bundle.Bypass.Labels {
		sel := labelSel{anyValue: !strings.Contains(l, "=")}
		if sel.anyValue {
			l += "="
		}
		parsed, err := rbac.ParseLabel(l)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %d: bypass.labels[%d]: %w", bundle.Revision, i, err)
		}
		sel.key, sel.value = parsed.Key, parsed.Value
		set.bypassLbl = append(set.bypassLbl, sel)
	}
	return set, nil
}

func compile(p Policy, scopes map[string]rbac.ApplicationScope, now time.Time, auditOnly bool) (compiled, error) {
	c := compiled{p: p}
	for _, name := range p.Scopes {
		s, ok := scopes[name]
		if !ok {
			return c, fmt.Errorf("runtime policy %q: scope %q is not defined in the bundle", p.Name, name)
		}
		c.scopes = append(c.scopes, s)
	}
	var err error
	if c.criteria, err = ParseCriteria(p.Criteria); err != nil {
		return c, fmt.Errorf("runtime policy %q: %w", p.Name, err)
	}
	base := p.EnforcesAt(now)
	mode := func(own Mode) Mode {
		m := base
		if own != "" {
			m = own
		}
		if auditOnly {
			m = Audit
		}
		return m
	}
	globs := func(ps []string) []rbac.Glob {
		out := make([]rbac.Glob, 0, len(ps))
		for _, s := range ps {
			out = append(out, rbac.MustGlob(s)) // Parse validated them
		}
		return out
	}
	rules := func(rs []string) []Rule {
		out := make([]Rule, 0, len(rs))
		for _, s := range rs {
			r, _ := ParseRule(s) // Parse validated them
			out = append(out, r)
		}
		return out
	}
	ct := p.Controls
	add := func(k control) { c.controls = append(c.controls, k) }
	if b := ct.BlockExec; b != nil {
		add(control{name: ControlBlockExec, mode: mode(b.Mode), globs: globs(b.AllowedProcesses)})
	}
	if d := ct.DriftPrevention; d != nil {
		add(control{name: ControlDriftPrevention, mode: mode(d.Mode), globs: globs(d.Allowed)})
	}
	if a := ct.AllowedExecutables; a != nil {
		add(control{name: ControlAllowedExecutables, mode: mode(a.Mode), globs: globs(a.Items)})
	}
	if b := ct.BlockedExecutables; b != nil && len(b.Items) > 0 {
		add(control{name: ControlBlockedExecutables, mode: mode(b.Mode), globs: globs(b.Items)})
	}
	if f := ct.ForkGuard; f != nil {
		add(control{name: ControlForkGuard, mode: mode(f.Mode), limit: f.MaxProcesses})
	}
	if t := ct.BlockUnapprovedImages; t != nil && t.Enabled {
		add(control{name: ControlBlockUnapprovedImages, mode: mode(t.Mode)})
	}
	if f := ct.FileIntegrity; f != nil {
		add(control{name: ControlFileIntegrity, mode: mode(f.Mode), globs: globs(f.Paths), block: f.BlockWrites})
	}
	if s := ct.BlockedSyscalls; s != nil && len(s.Items) > 0 {
		add(control{name: ControlBlockedSyscalls, mode: mode(s.Mode), items: slices.Clone(s.Items)})
	}
	if t := ct.ReverseShell; t != nil && t.Enabled {
		add(control{name: ControlReverseShell, mode: mode(t.Mode)})
	}
	if t := ct.CryptoMiner; t != nil && t.Enabled {
		add(control{name: ControlCryptoMiner, mode: mode(t.Mode)})
	}
	if l := ct.Learning; l != nil && l.Enabled {
		add(control{name: ControlLearning, mode: Audit})
	}
	if f := ct.Firewall; f != nil {
		add(control{name: ControlFirewall, mode: mode(f.Mode), out: rules(f.AllowOutbound), in: rules(f.AllowInbound),
			outSet: f.AllowOutbound != nil, inSet: f.AllowInbound != nil})
	}
	return c, nil
}

// Revision returns the bundle revision the set was compiled from.
func (s *Set) Revision() int64 { return s.revision }

// Settings returns the group settings of the bundle.
func (s *Set) Settings() fleet.GroupSettings { return s.settings }

// Protects reports whether the group's settings switch runtime policies
// on for w: ContainerProtection for containers, HostProtection for host
// processes (Container empty). For does not apply these switches; the
// agent checks them before watching a workload at all.
func (s *Set) Protects(w Workload) bool {
	if w.Container == "" {
		return s.settings.HostProtection
	}
	return s.settings.ContainerProtection
}

// Bypassed reports whether w is exempt through the global bypass.
func (s *Set) Bypassed(w Workload) bool {
	if slices.ContainsFunc(s.bypassNS, func(g rbac.Glob) bool { return g.Match(w.Namespace) }) {
		return true
	}
	return slices.ContainsFunc(s.bypassLbl, func(l labelSel) bool {
		v, ok := w.Labels[l.key]
		return ok && (l.anyValue || v == l.value)
	})
}

// For returns the controls in force for w, merged from every enabled
// policy whose scopes and criteria match it. It returns nil when w is
// bypassed or no policy applies; the decision methods of a nil Effective
// allow everything.
func (s *Set) For(w Workload) *Effective {
	if s == nil || s.Bypassed(w) {
		return nil
	}
	a := newAttrs(w)
	ra := a.rbac()
	e := &Effective{}
	for _, c := range s.policies {
		if len(c.scopes) > 0 && !slices.ContainsFunc(c.scopes, func(sc rbac.ApplicationScope) bool {
			return sc.Matches(rbac.Images, ra)
		}) {
			continue
		}
		if c.criteria.root != nil && !c.criteria.root.eval(&a) {
			continue
		}
		e.Policies = append(e.Policies, c.p.Name)
		for _, k := range c.controls {
			e.Active = append(e.Active, Active{Policy: c.p.Name, Control: k.name, Mode: k.mode})
			e.controls = append(e.controls, applied{policy: c.p.Name, control: k})
		}
	}
	if len(e.Policies) == 0 {
		return nil
	}
	return e
}

// Effective is the merged set of controls for one workload.
type Effective struct {
	// Policies are the names of the policies that apply, in bundle order.
	Policies []string
	// Active lists every control in force with its policy and mode.
	Active   []Active
	controls []applied
}

// Active is one control in force for a workload.
type Active struct {
	Policy  string `json:"policy"`
	Control string `json:"control"`
	Mode    Mode   `json:"mode"`
}

type applied struct {
	policy string
	control
}

// Action is the outcome of a decision, ordered from least to most
// restrictive.
type Action int

// The actions.
const (
	Allow Action = iota
	Detect
	Block
)

// String returns "allow", "detect" or "block".
func (a Action) String() string {
	switch a {
	case Detect:
		return "detect"
	case Block:
		return "block"
	}
	return "allow"
}

// MarshalText returns the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Decision is the answer to one question about a workload. For Allow,
// Policy, Control and Reason are empty.
type Decision struct {
	Action  Action `json:"action"`
	Policy  string `json:"policy,omitempty"`
	Control string `json:"control,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Status returns the fleet.Event status of a Detect or Block decision.
func (d Decision) Status() string {
	if d.Action == Block {
		return fleet.StatusBlock
	}
	return fleet.StatusDetect
}

func violation(a applied, reason string) Decision {
	act := Detect
	if a.mode == Enforce {
		act = Block
	}
	return Decision{Action: act, Policy: a.policy, Control: a.name, Reason: reason}
}

// worst keeps the most restrictive decision; on a tie the first stays.
func worst(cur, d Decision) Decision {
	if d.Action > cur.Action {
		return d
	}
	return cur
}

// Has reports whether the control is in force (in any mode).
func (e *Effective) Has(control string) bool {
	return e != nil && slices.ContainsFunc(e.controls, func(a applied) bool { return a.name == control })
}

// Learning reports whether a policy with learning applies.
func (e *Effective) Learning() bool { return e.Has(ControlLearning) }

// ExecContext describes a process about to run (or that ran, for an event
// seen after the fact).
type ExecContext struct {
	// Path is the executable's absolute path in the container.
	Path string
	// Args are the arguments, Args[0] included.
	Args []string
	// ExecSession is true for a process started by docker exec or kubectl
	// exec (or a descendant of one).
	ExecSession bool
	// FromImage is true when the executable's file is in one of the image
	// layers, false when it was written or changed in the container.
	FromImage bool
	// SocketStdio is true when the process's standard input or output is
	// a network socket.
	SocketStdio bool
	// Parents are the parent executables' paths, nearest first.
	Parents []string
}

// matchPath reports whether path matches any glob; a glob without "/"
// matches the base name.
func matchPath(globs []rbac.Glob, p string) bool {
	base := path.Base(p)
	return slices.ContainsFunc(globs, func(g rbac.Glob) bool {
		if strings.Contains(g.String(), "/") {
			return g.Match(p)
		}
		return g.Match(base)
	})
}

// Exec decides whether a process may run. Every control is checked and
// the most restrictive outcome is returned.
func (e *Effective) Exec(x ExecContext) Decision {
	d := Decision{Action: Allow}
	if e == nil {
		return d
	}
	for _, a := range e.controls {
		switch a.name {
		case ControlBlockExec:
			if x.ExecSession && !matchPath(a.globs, x.Path) {
				d = worst(d, violation(a, fmt.Sprintf("exec session runs %s, which is not an allowed process", x.Path)))
			}
		case ControlDriftPrevention:
			if !x.FromImage && !matchPath(a.globs, x.Path) {
				d = worst(d, violation(a, fmt.Sprintf("drift: %s is not part of the image", x.Path)))
			}
		case ControlAllowedExecutables:
			if !matchPath(a.globs, x.Path) {
				d = worst(d, violation(a, fmt.Sprintf("%s is not an allowed executable", x.Path)))
			}
		case ControlBlockedExecutables:
			if matchPath(a.globs, x.Path) {
				d = worst(d, violation(a, fmt.Sprintf("%s is a blocked executable", x.Path)))
			}
		case ControlReverseShell:
			if why := reverseShell(x); why != "" {
				d = worst(d, violation(a, "reverse shell: "+why))
			}
		case ControlCryptoMiner:
			if why := cryptoMiner(x); why != "" {
				d = worst(d, violation(a, "crypto miner: "+why))
			}
		}
	}
	return d
}

// shells are the base names of interactive shells and interpreters a
// reverse shell runs.
var shells = []string{"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"}

var interpreters = []string{"python", "python2", "python3", "perl", "ruby", "php", "node", "lua"}

func isShell(p string) bool { return slices.Contains(shells, path.Base(p)) }

func isInterpreter(p string) bool {
	base := path.Base(p)
	return slices.ContainsFunc(interpreters, func(s string) bool {
		return base == s || strings.HasPrefix(base, s+".") || strings.HasPrefix(base, s+"3.")
	})
}

// reverseShell returns why x looks like a reverse shell, or "".
func reverseShell(x ExecContext) string {
	if x.SocketStdio && (isShell(x.Path) || isInterpreter(x.Path)) {
		return fmt.Sprintf("%s runs with a network socket as standard input or output", x.Path)
	}
	joined := strings.Join(x.Args, " ")
	base := path.Base(x.Path)
	switch {
	case strings.Contains(joined, "/dev/tcp/") || strings.Contains(joined, "/dev/udp/"):
		return "arguments redirect to /dev/tcp or /dev/udp"
	case (base == "nc" || base == "ncat" || base == "netcat" || strings.HasPrefix(base, "nc.")) &&
		slices.ContainsFunc(x.Args, func(s string) bool {
			return s == "-e" || s == "-c" || strings.HasPrefix(s, "--exec") || s == "--sh-exec"
		}):
		return fmt.Sprintf("%s runs a program for a network connection (-e/-c)", base)
	case base == "socat" && strings.Contains(joined, "exec:") && (strings.Contains(joined, "tcp") || strings.Contains(joined, "TCP")):
		return "socat connects a program to a TCP socket"
	case isShell(x.Path) && len(x.Args) > 1 && slices.Contains(x.Args[1:], "-i") &&
		slices.ContainsFunc(x.Parents, func(p string) bool { b := path.Base(p); return b == "nc" || b == "ncat" || b == "socat" }):
		return "interactive shell started by a network tool"
	case isInterpreter(x.Path) && strings.Contains(joined, "socket") && (strings.Contains(joined, "dup2") || strings.Contains(joined, "pty.spawn")):
		return "interpreter one-liner connects a socket to a shell"
	}
	return ""
}

// Indicator literals are written with a "·" that unmask removes, so that
// mamori's own binary does not carry them and its malware engine (and
// other scanners) never flag mamori itself.
func unmask(s string) string { return strings.ReplaceAll(s, "·", "") }

// miners are the base names of well-known crypto-currency miners.
var miners = func() []string {
	names := []string{"xm·rig", "xmr-·stak", "xmr-·stak-cpu", "mi·nerd", "cpu·miner", "cpu·miner-multi", "cg·miner",
		"bfg·miner", "eth·miner", "nb·miner", "t-·rex", "lol·miner", "phoenix·miner", "nano·miner", "teamred·miner", "cc·miner",
		"kdevtmp·fsi", "kin·sing"}
	for i, n := range names {
		names[i] = unmask(n)
	}
	return names
}()

// poolSchemes and minerOptions are argument indicators of a miner.
var (
	poolSchemes  = []string{unmask("stratum·+tcp://"), unmask("stratum·+ssl://"), unmask("stratum·2+tcp://"), unmask("stratum·+tls://")}
	donateOption = unmask("--donate·-level")
	moneroOption = unmask("--coin=·monero")
)

// cryptoMiner returns why x looks like a miner, or "".
func cryptoMiner(x ExecContext) string {
	if base := strings.ToLower(path.Base(x.Path)); slices.Contains(miners, base) {
		return fmt.Sprintf("%s is a known miner", base)
	}
	for _, a := range x.Args {
		l := strings.ToLower(a)
		if slices.ContainsFunc(poolSchemes, func(p string) bool { return strings.Contains(l, p) }) {
			return "arguments name a mining pool (stratum)"
		}
		if l == donateOption || strings.HasPrefix(l, donateOption+"=") || strings.HasPrefix(l, moneroOption) {
			return "arguments are miner options"
		}
	}
	return ""
}

// ContainerStart decides whether a container may start, given the image
// assurance result for its image and the reasons it failed.
func (e *Effective) ContainerStart(imageApproved bool, reasons []string) Decision {
	d := Decision{Action: Allow}
	if e == nil || imageApproved {
		return d
	}
	why := "image failed image assurance"
	if len(reasons) > 0 {
		why += ": " + strings.Join(reasons, "; ")
	}
	for _, a := range e.controls {
		if a.name == ControlBlockUnapprovedImages {
			d = worst(d, violation(a, why))
		}
	}
	return d
}

// Limit is a numeric limit with the policy and mode that set it.
type Limit struct {
	Max    int    `json:"max"`
	Mode   Mode   `json:"mode"`
	Policy string `json:"policy"`
}

// ForkLimit returns the lowest maxProcesses of the forkGuard controls in
// force (on a tie, an enforce-mode limit wins) and false when none is. In
// enforce mode the enforcer sets pids.max; in audit mode it reports when
// the count reaches the limit.
func (e *Effective) ForkLimit() (Limit, bool) {
	var l Limit
	found := false
	if e == nil {
		return l, false
	}
	for _, a := range e.controls {
		if a.name != ControlForkGuard {
			continue
		}
		if !found || a.limit < l.Max || a.limit == l.Max && a.mode == Enforce && l.Mode != Enforce {
			l = Limit{Max: a.limit, Mode: a.mode, Policy: a.policy}
			found = true
		}
	}
	return l, found
}

// Syscall is one blocked system call with the policy and mode that block
// it.
type Syscall struct {
	Name   string `json:"name"`
	Mode   Mode   `json:"mode"`
	Policy string `json:"policy"`
}

// Syscalls returns the blocked system calls in force, sorted by name, each
// once: enforce wins over audit. A seccomp profile built from them makes
// enforce-mode calls fail and audit-mode calls logged; it applies to
// containers started after the policy.
func (e *Effective) Syscalls() []Syscall {
	if e == nil {
		return nil
	}
	by := map[string]Syscall{}
	for _, a := range e.controls {
		if a.name != ControlBlockedSyscalls {
			continue
		}
		for _, n := range a.items {
			if cur, ok := by[n]; !ok || a.mode == Enforce && cur.Mode != Enforce {
				by[n] = Syscall{Name: n, Mode: a.mode, Policy: a.policy}
			}
		}
	}
	out := make([]Syscall, 0, len(by))
	for _, s := range by {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Syscall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// FirewallRules is one policy's firewall. A nil direction is open.
type FirewallRules struct {
	Policy   string `json:"policy"`
	Mode     Mode   `json:"mode"`
	Outbound []Rule `json:"outbound"`
	Inbound  []Rule `json:"inbound"`
	// OutboundSet and InboundSet say whether the direction is restricted.
	OutboundSet bool `json:"outboundSet"`
	InboundSet  bool `json:"inboundSet"`
}

// Firewall returns the firewall of every policy in force. A connection
// must be allowed by each of them (the intersection, most restrictive).
func (e *Effective) Firewall() []FirewallRules {
	if e == nil {
		return nil
	}
	var out []FirewallRules
	for _, a := range e.controls {
		if a.name == ControlFirewall {
			out = append(out, FirewallRules{Policy: a.policy, Mode: a.mode, Outbound: a.out, Inbound: a.in,
				OutboundSet: a.outSet, InboundSet: a.inSet})
		}
	}
	return out
}

// MarshalJSON writes a rule as it is written in a policy.
func (r Rule) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// Connection decides whether a connection may be made (outbound true) or
// accepted. proto is "tcp" or "udp"; addr is the remote address (the
// destination of an outbound connection, the source of an inbound one)
// and port the destination port. A connection is allowed by a policy's
// direction when any rule matches: a network rule on addr, a proto/port
// rule on proto and port.
func (e *Effective) Connection(outbound bool, proto string, addr netip.Addr, port int) Decision {
	d := Decision{Action: Allow}
	if e == nil {
		return d
	}
	dir := "inbound"
	if outbound {
		dir = "outbound"
	}
	for _, a := range e.controls {
		if a.name != ControlFirewall {
			continue
		}
		rules, set := a.in, a.inSet
		if outbound {
			rules, set = a.out, a.outSet
		}
		if !set || slices.ContainsFunc(rules, func(r Rule) bool { return r.Matches(proto, addr, port) }) {
			continue
		}
		d = worst(d, violation(a, fmt.Sprintf("%s %s connection %s port %d is not allowed", dir, proto, addr, port)))
	}
	return d
}

// FileWrite decides whether a file may be written. A watched file is
// blocked only by an enforce-mode control with blockWrites; otherwise the
// write is detected.
func (e *Effective) FileWrite(p string) Decision {
	d := Decision{Action: Allow}
	if e == nil {
		return d
	}
	for _, a := range e.controls {
		if a.name != ControlFileIntegrity || !matchPath(a.globs, p) {
			continue
		}
		v := violation(a, fmt.Sprintf("write to watched file %s", p))
		if !a.block {
			v.Action = Detect
		}
		d = worst(d, v)
	}
	return d
}
