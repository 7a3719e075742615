package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// MaxPolicyFileSize bounds a standalone policy file.
const MaxPolicyFileSize = runtimepolicy.MaxBundleSize

// StandaloneSettings are the group settings of a standalone agent when its
// policy file sets none: containers protected, policies in the mode they
// say, fail open.
var StandaloneSettings = fleet.GroupSettings{ContainerProtection: true}

// policyFile is the object form of a standalone policy file.
type policyFile struct {
	Policies json.RawMessage      `json:"policies"`
	Bypass   *fleet.Bypass        `json:"bypass"`
	Settings *fleet.GroupSettings `json:"settings"`
}

// ParsePolicyFile reads a standalone policy file (JSON or YAML) into a
// policy bundle. The file holds a list of policies, one policy, or an
// object {"policies": [...], "bypass": {"namespaces": [...], "labels":
// [...]}, "settings": {...}}. Without settings the bundle gets
// StandaloneSettings; without bypass, runtimepolicy.DefaultBypass.
func ParsePolicyFile(data []byte) (fleet.PolicyBundle, error) {
	b := fleet.PolicyBundle{Settings: StandaloneSettings, Bypass: runtimepolicy.DefaultBypass()}
	if len(data) > MaxPolicyFileSize {
		return b, fmt.Errorf("%d bytes, larger than the limit of %d", len(data), MaxPolicyFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return b, fmt.Errorf("empty policy file")
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return b, fmt.Errorf("not JSON or YAML: %w", err)
	}
	var policies []runtimepolicy.Policy
	switch d := doc.(type) {
	case []any:
		ps, err := runtimepolicy.ParseBundle(data)
		if err != nil {
			return b, err
		}
		policies = ps
	case map[string]any:
		if _, ok := d["policies"]; !ok {
			p, err := runtimepolicy.Parse(data)
			if err != nil {
				return b, err
			}
			policies = []runtimepolicy.Policy{p}
			break
		}
		js, err := json.Marshal(d)
		if err != nil {
			return b, fmt.Errorf("policy file: %w", err)
		}
		var f policyFile
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return b, fmt.Errorf("policy file: %w", err)
		}
		ps, err := runtimepolicy.ParseBundle(f.Policies)
		if err != nil {
			return b, err
		}
		policies = ps
		if f.Bypass != nil {
			b.Bypass = *f.Bypass
		}
		if f.Settings != nil {
			b.Settings = *f.Settings
		}
	default:
		return b, fmt.Errorf("want a list of policies, a policy or {\"policies\": [...]}, not %T", doc)
	}
	for _, p := range policies {
		raw, err := json.Marshal(p)
		if err != nil {
			return b, fmt.Errorf("policy %q: %w", p.Name, err)
		}
		b.Policies = append(b.Policies, raw)
	}
	return b, nil
}

// ReadPolicyFile reads and parses the standalone policy file at path.
func ReadPolicyFile(path string) (fleet.PolicyBundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return fleet.PolicyBundle{}, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(io.Reader(f), MaxPolicyFileSize)
	if err != nil {
		return fleet.PolicyBundle{}, fmt.Errorf("policy file %s: %w", path, err)
	}
	b, err := ParsePolicyFile(data)
	if err != nil {
		return b, fmt.Errorf("policy file %s: %w", path, err)
	}
	return b, nil
}
