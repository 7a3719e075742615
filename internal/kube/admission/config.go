// Package admission is mamori's Kubernetes admission webhook (the
// kube-enforcer): an HTTPS handler of AdmissionReview v1 requests that
// gates Pods and workload templates on the image assurance verdicts of the
// console server, enforces Kubernetes posture controls, and blocks
// exec/attach/port-forward into protected pods. Every decision is recorded
// as a fleet.Event on a bounded queue that never blocks admission.
package admission

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Mode is how a control acts.
type Mode string

// Modes.
const (
	// Off disables the control.
	Off Mode = "off"
	// Audit admits the request and records the violation.
	Audit Mode = "audit"
	// Enforce denies the request.
	Enforce Mode = "enforce"
)

// Unscanned policies: what the image gate does with an image the server
// never scanned.
const (
	UnscannedDeny  = "deny"
	UnscannedAllow = "allow"
	// UnscannedScan queues a scan on the server and denies until the image
	// has a verdict.
	UnscannedScan = "scan"
)

// Config is the kube-enforcer's admission policy. The zero value of a
// field means its default (see DefaultConfig).
type Config struct {
	// Mode "audit" turns every enforce-mode control into audit: nothing is
	// denied, every violation is recorded.
	Mode Mode `yaml:"mode"`
	// AgentID and Cluster fill the AgentID and Host of recorded events.
	AgentID string `yaml:"agentId"`
	Cluster string `yaml:"cluster"`
	// BypassNamespaces are exempt from every control: requests in them and
	// pods labelled io.kubernetes.pod.namespace with one of them are
	// admitted without evaluation. Default ["kube-system"]; an explicit
	// empty list bypasses nothing.
	BypassNamespaces *[]string `yaml:"bypassNamespaces"`
	// Images is the image assurance gate.
	Images ImageGate `yaml:"images"`
	// Exec is the mode of the exec/attach/port-forward block when the
	// ExecPolicy does not name one.
	Exec Mode `yaml:"exec"`
	// Posture are the Kubernetes posture controls.
	Posture Posture `yaml:"posture"`
}

// ImageGate configures the image assurance gate.
type ImageGate struct {
	Mode Mode `yaml:"mode"`
	// Unscanned is UnscannedDeny, UnscannedAllow or UnscannedScan.
	Unscanned string `yaml:"unscanned"`
	// OnError is "allow" (the default) or "deny": what to do when no
	// verdict can be had (server unreachable and nothing cached).
	OnError string `yaml:"onError"`
}

// Posture are the posture controls, each Off, Audit or Enforce.
type Posture struct {
	Privileged             Mode `yaml:"privileged"`
	HostNamespaces         Mode `yaml:"hostNamespaces"`
	HostPath               Mode `yaml:"hostPath"`
	Capabilities           Mode `yaml:"capabilities"`
	RunAsNonRoot           Mode `yaml:"runAsNonRoot"`
	ReadOnlyRootFilesystem Mode `yaml:"readOnlyRootFilesystem"`
	ResourceLimits         Mode `yaml:"resourceLimits"`
	LatestTag              Mode `yaml:"latestTag"`
	ServiceAccountToken    Mode `yaml:"serviceAccountToken"`
	// AllowedCapabilities may be added by containers (upper case, without
	// the CAP_ prefix: "NET_BIND_SERVICE").
	AllowedCapabilities []string `yaml:"allowedCapabilities"`
}

// DefaultConfig returns the defaults: image gate enforcing with unscanned
// images denied, exec block enforcing, privileged containers and host
// namespaces enforced, the other posture controls audited, kube-system
// bypassed.
func DefaultConfig() Config {
	bypass := []string{"kube-system"}
	return Config{
		Mode:             Enforce,
		BypassNamespaces: &bypass,
		Images:           ImageGate{Mode: Enforce, Unscanned: UnscannedDeny, OnError: "allow"},
		Exec:             Enforce,
		Posture: Posture{
			Privileged:             Enforce,
			HostNamespaces:         Enforce,
			HostPath:               Audit,
			Capabilities:           Audit,
			RunAsNonRoot:           Audit,
			ReadOnlyRootFilesystem: Audit,
			ResourceLimits:         Audit,
			LatestTag:              Audit,
			ServiceAccountToken:    Audit,
			AllowedCapabilities:    []string{"NET_BIND_SERVICE"},
		},
	}
}

// ParseConfig reads a YAML (or JSON) configuration, filling unset fields
// with DefaultConfig. Unknown fields and invalid values are errors.
func ParseConfig(data []byte) (Config, error) {
	c := Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("kube-enforcer configuration: %w", err)
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// withDefaults fills unset fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(m *Mode, def Mode) {
		if *m == "" {
			*m = def
		}
	}
	set(&c.Mode, d.Mode)
	if c.BypassNamespaces == nil {
		c.BypassNamespaces = d.BypassNamespaces
	}
	set(&c.Images.Mode, d.Images.Mode)
	if c.Images.Unscanned == "" {
		c.Images.Unscanned = d.Images.Unscanned
	}
	if c.Images.OnError == "" {
		c.Images.OnError = d.Images.OnError
	}
	set(&c.Exec, d.Exec)
	p, dp := &c.Posture, d.Posture
	set(&p.Privileged, dp.Privileged)
	set(&p.HostNamespaces, dp.HostNamespaces)
	set(&p.HostPath, dp.HostPath)
	set(&p.Capabilities, dp.Capabilities)
	set(&p.RunAsNonRoot, dp.RunAsNonRoot)
	set(&p.ReadOnlyRootFilesystem, dp.ReadOnlyRootFilesystem)
	set(&p.ResourceLimits, dp.ResourceLimits)
	set(&p.LatestTag, dp.LatestTag)
	set(&p.ServiceAccountToken, dp.ServiceAccountToken)
	if p.AllowedCapabilities == nil {
		p.AllowedCapabilities = dp.AllowedCapabilities
	}
	return c
}

// Validate checks every mode and policy value.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Mode != Audit && c.Mode != Enforce {
		return fmt.Errorf("kube-enforcer configuration: mode %q is not audit or enforce", c.Mode)
	}
	modes := map[string]Mode{
		"images.mode": c.Images.Mode, "exec": c.Exec,
		"posture.privileged": c.Posture.Privileged, "posture.hostNamespaces": c.Posture.HostNamespaces,
		"posture.hostPath": c.Posture.HostPath, "posture.capabilities": c.Posture.Capabilities,
		"posture.runAsNonRoot": c.Posture.RunAsNonRoot, "posture.readOnlyRootFilesystem": c.Posture.ReadOnlyRootFilesystem,
		"posture.resourceLimits": c.Posture.ResourceLimits, "posture.latestTag": c.Posture.LatestTag,
		"posture.serviceAccountToken": c.Posture.ServiceAccountToken,
	}
	for field, m := range modes {
		if m != Off && m != Audit && m != Enforce {
			return fmt.Errorf("kube-enforcer configuration: %s %q is not off, audit or enforce", field, m)
		}
	}
	if !slices.Contains([]string{UnscannedDeny, UnscannedAllow, UnscannedScan}, c.Images.Unscanned) {
		return fmt.Errorf("kube-enforcer configuration: images.unscanned %q is not deny, allow or scan", c.Images.Unscanned)
	}
	if c.Images.OnError != "allow" && c.Images.OnError != "deny" {
		return fmt.Errorf("kube-enforcer configuration: images.onError %q is not allow or deny", c.Images.OnError)
	}
	for _, capName := range c.Posture.AllowedCapabilities {
		if capName == "" || strings.ToUpper(capName) != capName || strings.HasPrefix(capName, "CAP_") {
			return fmt.Errorf("kube-enforcer configuration: posture.allowedCapabilities %q: use the upper-case name without CAP_ (NET_BIND_SERVICE)", capName)
		}
	}
	return nil
}

// bypassed reports whether namespace is in the bypass list.
func (c *Config) bypassed(namespace string) bool {
	return namespace != "" && c.BypassNamespaces != nil && slices.Contains(*c.BypassNamespaces, namespace)
}
