// Package runtimepolicy is the runtime policy model and its evaluator,
// shared by the console server, mamori enforcer and mamori kube-enforcer.
//
// A Policy names the workloads it applies to (application scopes and a
// criteria expression) and the runtime controls it switches on, each in
// audit mode (detect and report) or enforce mode (block). Compile turns a
// fleet.PolicyBundle into a Set; Set.For merges the controls of every
// policy that applies to one workload into an Effective, whose decision
// methods (Exec, ContainerStart, FileWrite, Connection...) the enforcers
// call. docs/runtime-policies.md describes the model.
package runtimepolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/server/rbac"
)

// Limits on policy documents.
const (
	// MaxPolicySize bounds one policy document in bytes.
	MaxPolicySize = 256 << 10
	// MaxBundleSize bounds a list of policies given to ParseBundle.
	MaxBundleSize = 8 << 20
	// MaxListLen bounds every list in a policy (globs, syscalls, rules).
	MaxListLen = 1024
	// MaxNameLen bounds a policy name.
	MaxNameLen = 128
)

// Mode says what a control does when it is violated.
type Mode string

// The modes.
const (
	// Audit reports a violation as a detection and lets it happen.
	Audit Mode = "audit"
	// Enforce blocks a violation (where the control can block) and reports
	// it.
	Enforce Mode = "enforce"
)

func (m Mode) valid() bool { return m == Audit || m == Enforce }

// Policy is one runtime policy.
type Policy struct {
	// Name identifies the policy in events; it is unique in a bundle.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Enabled switches the policy on; disabled policies are ignored.
	Enabled bool `json:"enabled"`
	// Mode is the mode of every control that does not set its own;
	// empty means Audit.
	Mode Mode `json:"mode"`
	// Schedule, when set, switches an audit policy to enforce mode at a
	// point in time.
	Schedule *Schedule `json:"schedule,omitempty"`
	// Scopes are the names of the application scopes whose workloads the
	// policy applies to; empty means every workload.
	Scopes []string `json:"scopes,omitempty"`
	// Criteria is an extra expression a workload must satisfy (see
	// ParseCriteria); empty means every workload of the scopes.
	Criteria string `json:"criteria,omitempty"`
	// Controls are the runtime controls the policy switches on.
	Controls Controls `json:"controls"`
	// Created and Updated are set by the server.
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// Schedule is a scheduled change from audit to enforce mode. When both
// fields are set, enforcement starts at the earlier of the two times.
type Schedule struct {
	// EnforceFrom is the time from which the policy enforces.
	EnforceFrom *time.Time `json:"enforceFrom,omitempty"`
	// EnforceAfterDays counts days from the policy's Created time, which
	// the server sets when it first stores the policy; while Created is
	// unset it never triggers.
	EnforceAfterDays int `json:"enforceAfterDays,omitempty"`
}

// Controls are the runtime controls of a policy. Every control is
// optional; the zero value of each means "off". Every control may set its
// own Mode, overriding the policy's.
type Controls struct {
	// BlockExec blocks exec sessions (docker exec, kubectl exec) except
	// for the allowed processes.
	BlockExec *BlockExec `json:"blockExec,omitempty"`
	// DriftPrevention blocks executables that are not part of the image.
	DriftPrevention *DriftPrevention `json:"driftPrevention,omitempty"`
	// AllowedExecutables, when set, is the only executables that may run.
	AllowedExecutables *List `json:"allowedExecutables,omitempty"`
	// BlockedExecutables may not run.
	BlockedExecutables *List `json:"blockedExecutables,omitempty"`
	// ForkGuard limits the number of processes in a container.
	ForkGuard *ForkGuard `json:"forkGuard,omitempty"`
	// BlockUnapprovedImages refuses to start containers whose image fails
	// image assurance.
	BlockUnapprovedImages *Toggle `json:"blockUnapprovedImages,omitempty"`
	// FileIntegrity watches writes to files.
	FileIntegrity *FileIntegrity `json:"fileIntegrity,omitempty"`
	// BlockedSyscalls are system calls new containers may not make.
	BlockedSyscalls *List `json:"blockedSyscalls,omitempty"`
	// ReverseShell detects shells whose input and output are a socket.
	ReverseShell *Toggle `json:"reverseShell,omitempty"`
	// CryptoMiner detects crypto-currency miners.
	CryptoMiner *Toggle `json:"cryptoMiner,omitempty"`
	// Learning records the executables of the workloads, to propose an
	// allow-list policy. It never blocks.
	Learning *Learning `json:"learning,omitempty"`
	// Firewall restricts network connections of containers.
	Firewall *Firewall `json:"firewall,omitempty"`
}

// BlockExec is the exec-session control.
type BlockExec struct {
	// AllowedProcesses may run in an exec session.
	AllowedProcesses []string `json:"allowedProcesses,omitempty"`
	Mode             Mode     `json:"mode,omitempty"`
}

// DriftPrevention is the drift control.
type DriftPrevention struct {
	// Allowed executables may run even when they are not in the image.
	Allowed []string `json:"allowed,omitempty"`
	Mode    Mode     `json:"mode,omitempty"`
}

// ForkGuard is the process-count control.
type ForkGuard struct {
	MaxProcesses int  `json:"maxProcesses"`
	Mode         Mode `json:"mode,omitempty"`
}

// FileIntegrity is the file-integrity control.
type FileIntegrity struct {
	// Paths are the globs of the watched files.
	Paths []string `json:"paths"`
	// BlockWrites blocks writes in enforce mode; without it writes are only
	// reported, whatever the mode.
	BlockWrites bool `json:"blockWrites,omitempty"`
	Mode        Mode `json:"mode,omitempty"`
}

// Learning is the learning control.
type Learning struct {
	Enabled bool `json:"enabled"`
}

// Firewall lists the connections a container may make and accept. Each
// rule is "proto/port" (tcp/443, udp/53, tcp/*), a CIDR (192.0.2.0/24) or
// an address. A nil list leaves that direction open; an empty list
// allows nothing.
type Firewall struct {
	AllowOutbound []string `json:"allowOutbound"`
	AllowInbound  []string `json:"allowInbound"`
	Mode          Mode     `json:"mode,omitempty"`
}

// Toggle is an on/off control. Its JSON form is true or false, or
// {"enabled": true, "mode": "enforce"} to set a mode.
type Toggle struct {
	Enabled bool
	Mode    Mode
}

type toggleObject struct {
	Enabled bool `json:"enabled"`
	Mode    Mode `json:"mode,omitempty"`
}

// MarshalJSON writes true/false, or an object when a mode is set.
func (t Toggle) MarshalJSON() ([]byte, error) {
	if t.Mode == "" {
		return json.Marshal(t.Enabled)
	}
	return json.Marshal(toggleObject(t))
}

// UnmarshalJSON reads a boolean or an object with enabled and mode.
func (t *Toggle) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		var on bool
		if err := json.Unmarshal(b, &on); err != nil {
			return fmt.Errorf("want true, false or {\"enabled\": ..., \"mode\": ...}")
		}
		*t = Toggle{Enabled: on}
		return nil
	}
	var o toggleObject
	if err := decodeStrict(b, &o); err != nil {
		return err
	}
	*t = Toggle(o)
	return nil
}

// List is a list control. Its JSON form is a list, or
// {"items": [...], "mode": "enforce"} to set a mode.
type List struct {
	Items []string
	Mode  Mode
}

type listObject struct {
	Items []string `json:"items"`
	Mode  Mode     `json:"mode,omitempty"`
}

// MarshalJSON writes a list, or an object when a mode is set.
func (l List) MarshalJSON() ([]byte, error) {
	items := l.Items
	if items == nil {
		items = []string{}
	}
	if l.Mode == "" {
		return json.Marshal(items)
	}
	return json.Marshal(listObject{Items: items, Mode: l.Mode})
}

// UnmarshalJSON reads a list or an object with items and mode.
func (l *List) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		var items []string
		if err := json.Unmarshal(b, &items); err != nil {
			return fmt.Errorf("want a list of strings or {\"items\": [...], \"mode\": ...}")
		}
		*l = List{Items: items}
		return nil
	}
	var o listObject
	if err := decodeStrict(b, &o); err != nil {
		return err
	}
	*l = List(o)
	return nil
}

// Parse decodes and validates one policy from JSON or YAML. Unknown fields
// are rejected. An empty Mode becomes Audit; times are converted to UTC.
func Parse(data []byte) (Policy, error) {
	if len(data) > MaxPolicySize {
		return Policy{}, fmt.Errorf("runtime policy: %d bytes, larger than the limit of %d", len(data), MaxPolicySize)
	}
	js, err := toJSON(data)
	if err != nil {
		return Policy{}, fmt.Errorf("runtime policy: %w", err)
	}
	var p Policy
	if err := decodeStrict(js, &p); err != nil {
		return Policy{}, fmt.Errorf("runtime policy: %w", err)
	}
	if p.Mode == "" {
		p.Mode = Audit
	}
	// Times are kept in UTC so that a policy compares equal to its export.
	p.Created, p.Updated = p.Created.UTC(), p.Updated.UTC()
	if p.Schedule != nil && p.Schedule.EnforceFrom != nil {
		t := p.Schedule.EnforceFrom.UTC()
		p.Schedule.EnforceFrom = &t
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// ParseBundle decodes and validates a list of policies (a JSON or YAML
// sequence), as exported by ExportBundle. Names must be unique.
func ParseBundle(data []byte) ([]Policy, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("runtime policies: %d bytes, larger than the limit of %d", len(data), MaxBundleSize)
	}
	js, err := toJSON(data)
	if err != nil {
		return nil, fmt.Errorf("runtime policies: %w", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(js, &raws); err != nil {
		return nil, fmt.Errorf("runtime policies: want a list of policies: %w", err)
	}
	seen := map[string]bool{}
	out := make([]Policy, 0, len(raws))
	for i, raw := range raws {
		p, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("runtime policies[%d]: %w", i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("runtime policies[%d]: name %q is used twice", i, p.Name)
		}
		seen[p.Name] = true
		out = append(out, p)
	}
	return out, nil
}

// Export returns the policy's JSON form, indented, which Parse reads back.
func (p Policy) Export() ([]byte, error) {
	return json.MarshalIndent(p, "", "  ")
}

// ExportBundle returns the JSON list of policies which ParseBundle reads.
func ExportBundle(ps []Policy) ([]byte, error) {
	if ps == nil {
		ps = []Policy{}
	}
	return json.MarshalIndent(ps, "", "  ")
}

// toJSON converts a YAML (or JSON, which is YAML) document to JSON, so that
// one strict JSON decoder checks both.
func toJSON(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("document is empty")
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		return trimmed, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("document is empty")
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	v, err := yamlValue(&doc, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// maxYAMLDepth bounds nesting, which also stops alias expansion loops.
const maxYAMLDepth = 16

func yamlValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxYAMLDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, errors.New("document is empty")
		}
		return yamlValue(n.Content[0], depth)
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not supported", n.Line)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: mapping keys must be plain strings", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q is repeated", k.Line, k.Value)
			}
			v, err := yamlValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a decimal number", n.Line, n.Value)
			}
			return f, nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// Validate checks every field and names the first one that is wrong.
func (p Policy) Validate() error {
	if err := validateName(p.Name); err != nil {
		return fmt.Errorf("runtime policy %q: name: %w", p.Name, err)
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("runtime policy %q: %w", p.Name, err)
	}
	return nil
}

func (p Policy) validate() error {
	if p.Mode != "" && !p.Mode.valid() {
		return fmt.Errorf("mode: %q is not audit or enforce", p.Mode)
	}
	if len(p.Description) > 4096 {
		return errors.New("description: longer than 4096 bytes")
	}
	if s := p.Schedule; s != nil {
		if p.Mode == Enforce {
			return errors.New("schedule: the policy already enforces; a schedule switches an audit policy to enforce")
		}
		if s.EnforceFrom == nil && s.EnforceAfterDays == 0 {
			return errors.New("schedule: set enforceFrom or enforceAfterDays")
		}
		if s.EnforceAfterDays < 0 || s.EnforceAfterDays > 3650 {
			return fmt.Errorf("schedule.enforceAfterDays: %d is not between 1 and 3650", s.EnforceAfterDays)
		}
	}
	if len(p.Scopes) > MaxListLen {
		return fmt.Errorf("scopes: more than %d entries", MaxListLen)
	}
	for i, s := range p.Scopes {
		if strings.TrimSpace(s) == "" || strings.TrimSpace(s) != s {
			return fmt.Errorf("scopes[%d]: %q is not a scope name", i, s)
		}
	}
	if p.Criteria != "" {
		if _, err := ParseCriteria(p.Criteria); err != nil {
			return err
		}
	}
	if err := p.Controls.validate(); err != nil {
		return fmt.Errorf("controls.%w", err)
	}
	return nil
}

func validateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("must be 1 to %d characters", MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range name {
		if !(r < utf8.RuneSelf && (isAlnum(r) || strings.ContainsRune(" _.-/:@", r))) {
			return fmt.Errorf("character %q is not allowed (letters, digits, space, _ . - / : @)", r)
		}
	}
	if strings.TrimSpace(name) != name {
		return errors.New("leading or trailing spaces")
	}
	return nil
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

func checkMode(field string, m Mode) error {
	if m != "" && !m.valid() {
		return fmt.Errorf("%s.mode: %q is not audit or enforce", field, m)
	}
	return nil
}

func checkGlobs(field string, globs []string) error {
	if len(globs) > MaxListLen {
		return fmt.Errorf("%s: more than %d entries", field, MaxListLen)
	}
	for i, g := range globs {
		if _, err := rbac.ParseGlob(g); err != nil {
			return fmt.Errorf("%s[%d]: %w", field, i, err)
		}
	}
	return nil
}

// Names of the controls, as used in Decision.Control and events.
const (
	ControlBlockExec             = "blockExec"
	ControlDriftPrevention       = "driftPrevention"
	ControlAllowedExecutables    = "allowedExecutables"
	ControlBlockedExecutables    = "blockedExecutables"
	ControlForkGuard             = "forkGuard"
	ControlBlockUnapprovedImages = "blockUnapprovedImages"
	ControlFileIntegrity         = "fileIntegrity"
	ControlBlockedSyscalls       = "blockedSyscalls"
	ControlReverseShell          = "reverseShell"
	ControlCryptoMiner           = "cryptoMiner"
	ControlLearning              = "learning"
	ControlFirewall              = "firewall"
)

func (c Controls) validate() error {
	if b := c.BlockExec; b != nil {
		if err := checkGlobs(ControlBlockExec+".allowedProcesses", b.AllowedProcesses); err != nil {
			return err
		}
		if err := checkMode(ControlBlockExec, b.Mode); err != nil {
			return err
		}
	}
	if d := c.DriftPrevention; d != nil {
		if err := checkGlobs(ControlDriftPrevention+".allowed", d.Allowed); err != nil {
			return err
		}
		if err := checkMode(ControlDriftPrevention, d.Mode); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		name string
		l    *List
	}{{ControlAllowedExecutables, c.AllowedExecutables}, {ControlBlockedExecutables, c.BlockedExecutables}} {
		if l.l == nil {
			continue
		}
		if err := checkGlobs(l.name, l.l.Items); err != nil {
			return err
		}
		if err := checkMode(l.name, l.l.Mode); err != nil {
			return err
		}
	}
	if a := c.AllowedExecutables; a != nil && len(a.Items) == 0 {
		return errors.New(ControlAllowedExecutables + ": empty; it would block every executable")
	}
	if f := c.ForkGuard; f != nil {
		if f.MaxProcesses < 1 || f.MaxProcesses > 1<<22 {
			return fmt.Errorf("%s.maxProcesses: %d is not between 1 and %d", ControlForkGuard, f.MaxProcesses, 1<<22)
		}
		if err := checkMode(ControlForkGuard, f.Mode); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		name string
		t    *Toggle
	}{{ControlBlockUnapprovedImages, c.BlockUnapprovedImages}, {ControlReverseShell, c.ReverseShell}, {ControlCryptoMiner, c.CryptoMiner}} {
		if t.t != nil {
			if err := checkMode(t.name, t.t.Mode); err != nil {
				return err
			}
		}
	}
	if f := c.FileIntegrity; f != nil {
		if len(f.Paths) == 0 {
			return errors.New(ControlFileIntegrity + ".paths: empty; name the files to watch")
		}
		if err := checkGlobs(ControlFileIntegrity+".paths", f.Paths); err != nil {
			return err
		}
		if err := checkMode(ControlFileIntegrity, f.Mode); err != nil {
			return err
		}
	}
	if s := c.BlockedSyscalls; s != nil {
		if len(s.Items) > MaxListLen {
			return fmt.Errorf("%s: more than %d entries", ControlBlockedSyscalls, MaxListLen)
		}
		for i, name := range s.Items {
			if !validSyscallName(name) {
				return fmt.Errorf("%s[%d]: %q is not a system call name", ControlBlockedSyscalls, i, name)
			}
		}
		if err := checkMode(ControlBlockedSyscalls, s.Mode); err != nil {
			return err
		}
	}
	if f := c.Firewall; f != nil {
		for _, dir := range []struct {
			name  string
			rules []string
		}{{ControlFirewall + ".allowOutbound", f.AllowOutbound}, {ControlFirewall + ".allowInbound", f.AllowInbound}} {
			if len(dir.rules) > MaxListLen {
				return fmt.Errorf("%s: more than %d entries", dir.name, MaxListLen)
			}
			for i, r := range dir.rules {
				if _, err := ParseRule(r); err != nil {
					return fmt.Errorf("%s[%d]: %w", dir.name, i, err)
				}
			}
		}
		if err := checkMode(ControlFirewall, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

func validSyscallName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return unicode.IsLetter(rune(s[0])) || s[0] == '_'
}

// Rule is one parsed firewall rule: a protocol and port, or a network.
type Rule struct {
	// Proto is "tcp", "udp" or "" for a network rule.
	Proto string
	// Port is the port, or 0 for every port of Proto.
	Port int
	// Prefix is the network of a network rule.
	Prefix netip.Prefix
}

// ParseRule parses a firewall rule: "tcp/443", "udp/53", "tcp/*", a CIDR
// such as "192.0.2.0/24" or "2001:db8::/32", or a single address.
func ParseRule(s string) (Rule, error) {
	if proto, port, ok := strings.Cut(s, "/"); ok && (proto == "tcp" || proto == "udp") {
		if port == "*" {
			return Rule{Proto: proto}, nil
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return Rule{}, fmt.Errorf("firewall rule %.80q: port must be 1 to 65535 or *", s)
		}
		return Rule{Proto: proto, Port: n}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Rule{}, fmt.Errorf("firewall rule %.80q: want tcp/PORT, udp/PORT, a CIDR or an address", s)
		}
		if p.Masked() != p {
			return Rule{}, fmt.Errorf("firewall rule %.80q: host bits are set; did you mean %s?", s, p.Masked())
		}
		return Rule{Prefix: p}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return Rule{}, fmt.Errorf("firewall rule %.80q: want tcp/PORT, udp/PORT, a CIDR or an address", s)
	}
	return Rule{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

// String returns the rule as written in a policy.
func (r Rule) String() string {
	if r.Proto == "" {
		return r.Prefix.String()
	}
	if r.Port == 0 {
		return r.Proto + "/*"
	}
	return r.Proto + "/" + strconv.Itoa(r.Port)
}

// Matches reports whether a connection to (or from) addr with proto and
// port is allowed by r.
func (r Rule) Matches(proto string, addr netip.Addr, port int) bool {
	if r.Proto == "" {
		return r.Prefix.Contains(addr.Unmap())
	}
	return r.Proto == proto && (r.Port == 0 || r.Port == port)
}

// EnforcesAt returns the mode in force at now for controls that do not set
// their own, with the schedule applied.
func (p Policy) EnforcesAt(now time.Time) Mode {
	if p.Mode == Enforce {
		return Enforce
	}
	if s := p.Schedule; s != nil {
		if s.EnforceFrom != nil && !now.Before(*s.EnforceFrom) {
			return Enforce
		}
		if s.EnforceAfterDays > 0 && !p.Created.IsZero() && !now.Before(p.Created.AddDate(0, 0, s.EnforceAfterDays)) {
			return Enforce
		}
	}
	return Audit
}
