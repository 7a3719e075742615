package admission

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"

	"gopkg.in/yaml.v3"
)

// ExecPolicy decides whether an exec, attach or port-forward into a pod is
// allowed. command is the exec command (nil for attach and port-forward).
// mode is Audit or Enforce (empty means the Config's Exec mode); policy
// names the deciding policy and reason says why it denies.
//
// RuntimeExec decides with the runtime policies of internal/runtimepolicy
// (blockExec with its scopes and allowed processes); ExecRules is a local,
// file-based implementation.
type ExecPolicy interface {
	Decide(namespace, pod string, labels map[string]string, command []string) (allow bool, mode string, policy, reason string)
}

// ExecRules is a list of exec rules read from a YAML file; the first rule
// whose scope matches a pod decides. A pod no rule matches may be exec'ed
// into.
type ExecRules struct {
	Rules []ExecRule `yaml:"rules"`
}

// ExecRule protects the pods of its scope.
type ExecRule struct {
	// Name names the rule in denials and events.
	Name string `yaml:"name"`
	// Mode is audit or enforce.
	Mode Mode `yaml:"mode"`
	// Namespaces are globs (path.Match) of namespaces; empty matches any.
	Namespaces []string `yaml:"namespaces"`
	// Labels must all be on the pod (value "*" matches any value).
	Labels map[string]string `yaml:"labels"`
	// AllowedProcesses are globs of exec commands (argv[0]) that stay
	// allowed; attach and port-forward are always denied in scope.
	AllowedProcesses []string `yaml:"allowedProcesses"`
}

// ParseExecRules reads exec rules, checking every field.
func ParseExecRules(data []byte) (*ExecRules, error) {
	var r ExecRules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("exec rules: %w", err)
	}
	for i, rule := range r.Rules {
		if rule.Name == "" {
			return nil, fmt.Errorf("exec rules: rule %d has no name", i+1)
		}
		if rule.Mode != Audit && rule.Mode != Enforce {
			return nil, fmt.Errorf("exec rules: rule %s: mode %q is not audit or enforce", rule.Name, rule.Mode)
		}
		for _, g := range append(slices.Clone(rule.Namespaces), rule.AllowedProcesses...) {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("exec rules: rule %s: bad glob %q", rule.Name, g)
			}
		}
	}
	return &r, nil
}

// Decide implements ExecPolicy.
func (r *ExecRules) Decide(namespace, pod string, labels map[string]string, command []string) (bool, string, string, string) {
	for _, rule := range r.Rules {
		if !rule.matches(namespace, labels) {
			continue
		}
		if len(command) > 0 {
			for _, g := range rule.AllowedProcesses {
				if ok, _ := path.Match(g, command[0]); ok {
					return true, string(rule.Mode), rule.Name, ""
				}
			}
			return false, string(rule.Mode), rule.Name, fmt.Sprintf("exec of %q into pod %s/%s is not an allowed process", command[0], namespace, pod)
		}
		return false, string(rule.Mode), rule.Name, fmt.Sprintf("pod %s/%s is protected", namespace, pod)
	}
	return true, "", "", ""
}

func (rule *ExecRule) matches(namespace string, labels map[string]string) bool {
	if len(rule.Namespaces) > 0 && !slices.ContainsFunc(rule.Namespaces, func(g string) bool {
		ok, _ := path.Match(g, namespace)
		return ok
	}) {
		return false
	}
	for k, v := range rule.Labels {
		got, ok := labels[k]
		if !ok || v != "*" && got != v {
			return false
		}
	}
	return true
}
