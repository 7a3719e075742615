package rbac

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// GlobalScopeName names the built-in scope that matches everything. The
// name is reserved: ParseScope rejects user-defined scopes using it.
const GlobalScopeName = "Global"

// GlobalScope is the built-in scope that matches every resource.
var GlobalScope = ApplicationScope{Name: GlobalScopeName, Description: "Every artifact, host and workload."}

// MaxDefinitionSize bounds the JSON of a role or scope definition.
const MaxDefinitionSize = 64 << 10

// ApplicationScope is a named set of artifacts, infrastructure and
// workloads.
//
// A scope matches a resource when at least one of its non-empty categories
// matches. A category matches when every one of its non-empty fields that
// is relevant to the resource type matches: a glob list matches when any of
// its globs matches the attribute, and a label list matches when the
// resource carries every listed label with exactly the listed value.
// Fields irrelevant to a resource type are ignored (registries are matched
// on the registry name only, enforcers on cluster and host only); a
// category left with no relevant field does not match.
type ApplicationScope struct {
	Name           string         `json:"name"`
	Description    string         `json:"description,omitempty"`
	Artifacts      Artifacts      `json:"artifacts,omitzero"`
	Infrastructure Infrastructure `json:"infrastructure,omitzero"`
	Workloads      Workloads      `json:"workloads,omitzero"`
}

// Artifacts restricts registries and image names (registry host included,
// e.g. "registry.example.com/team-a/*").
type Artifacts struct {
	Registries []Glob `json:"registries,omitempty"`
	Images     []Glob `json:"images,omitempty"`
}

// Infrastructure restricts clusters and hosts.
type Infrastructure struct {
	Clusters []Glob `json:"clusters,omitempty"`
	Hosts    []Glob `json:"hosts,omitempty"`
}

// Workloads restricts namespaces, labels and container names.
type Workloads struct {
	Namespaces []Glob  `json:"namespaces,omitempty"`
	Labels     []Label `json:"labels,omitempty"`
	Containers []Glob  `json:"containers,omitempty"`
}

// IsGlobal reports whether s is the built-in Global scope.
func (s ApplicationScope) IsGlobal() bool { return s.Name == GlobalScopeName }

// ParseScope decodes and validates a user-defined scope from JSON. Unknown
// fields, invalid globs and labels, and the reserved name Global are
// rejected.
func ParseScope(data []byte) (ApplicationScope, error) {
	var s ApplicationScope
	if err := decodeStrict(data, &s); err != nil {
		return ApplicationScope{}, fmt.Errorf("application scope: %w", err)
	}
	if s.IsGlobal() {
		return ApplicationScope{}, fmt.Errorf("application scope %q: the name is reserved for the built-in scope", s.Name)
	}
	if err := s.Validate(); err != nil {
		return ApplicationScope{}, err
	}
	// Empty lists mean the same as absent ones; store them as absent.
	for _, l := range []*[]Glob{&s.Artifacts.Registries, &s.Artifacts.Images, &s.Infrastructure.Clusters,
		&s.Infrastructure.Hosts, &s.Workloads.Namespaces, &s.Workloads.Containers} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(s.Workloads.Labels) == 0 {
		s.Workloads.Labels = nil
	}
	return s, nil
}

// Validate checks the name, that every glob was compiled, and that a
// scope other than Global restricts something (an empty scope would match
// nothing and is almost certainly a mistake).
func (s ApplicationScope) Validate() error {
	if err := validateName(s.Name); err != nil {
		return fmt.Errorf("application scope %q: %w", s.Name, err)
	}
	conds := s.conditions()
	if s.IsGlobal() {
		if len(conds) != 0 {
			return fmt.Errorf("application scope %q: the built-in scope takes no restrictions", s.Name)
		}
		return nil
	}
	if len(conds) == 0 {
		return fmt.Errorf("application scope %q: restricts nothing; set artifacts, infrastructure or workloads", s.Name)
	}
	for _, cat := range conds {
		for _, c := range cat {
			for _, g := range c.Globs {
				if g.IsZero() {
					return fmt.Errorf("application scope %q: %s pattern is empty", s.Name, c.Attr)
				}
			}
		}
	}
	return nil
}

// conditions returns one conjunction per non-empty category, with no
// resource-type relevance applied.
func (s ApplicationScope) conditions() [][]Condition {
	var out [][]Condition
	add := func(conds ...Condition) {
		var kept []Condition
		for _, c := range conds {
			if len(c.Globs) > 0 || c.Attr == AttrLabel {
				kept = append(kept, c)
			}
		}
		if len(kept) > 0 {
			out = append(out, kept)
		}
	}
	add(Condition{Attr: AttrRegistry, Globs: s.Artifacts.Registries},
		Condition{Attr: AttrImage, Globs: s.Artifacts.Images})
	add(Condition{Attr: AttrCluster, Globs: s.Infrastructure.Clusters},
		Condition{Attr: AttrHost, Globs: s.Infrastructure.Hosts})
	w := []Condition{{Attr: AttrNamespace, Globs: s.Workloads.Namespaces}}
	for _, l := range s.Workloads.Labels {
		w = append(w, Condition{Attr: AttrLabel, Label: l})
	}
	w = append(w, Condition{Attr: AttrContainer, Globs: s.Workloads.Containers})
	add(w...)
	return out
}

// clauses returns the scope as a disjunction of conjunctions for resource
// type t, dropping conditions irrelevant to t. It is not meaningful for
// the Global scope.
func (s ApplicationScope) clauses(t ResourceType) []Clause {
	var out []Clause
	for _, cat := range s.conditions() {
		var kept []Condition
		for _, c := range cat {
			if relevant(t, c.Attr) {
				kept = append(kept, c)
			}
		}
		if len(kept) > 0 {
			out = append(out, Clause{Scope: s.Name, All: kept})
		}
	}
	return out
}

// Clauses returns the scope as a disjunction of conjunctions for resource
// type t (conditions irrelevant to t dropped), for filtering lists by a
// scope the user picks. It is nil for the Global scope.
func (s ApplicationScope) Clauses(t ResourceType) []Clause {
	if s.IsGlobal() {
		return nil
	}
	return s.clauses(t)
}

// Matches reports whether s covers a resource of type t with attributes a.
func (s ApplicationScope) Matches(t ResourceType, a Attributes) bool {
	if s.IsGlobal() {
		return true
	}
	return slices.ContainsFunc(s.clauses(t), func(c Clause) bool { return c.Matches(a) })
}

func validateName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name must be 1 to 64 characters")
	}
	for _, r := range name {
		if !(r < 0x80 && (isAlnum(byte(r)) || strings.ContainsRune(" _.-", r))) {
			return fmt.Errorf("name: character %q is not allowed (letters, digits, space, _ . -)", r)
		}
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("name has leading or trailing spaces")
	}
	return nil
}

func decodeStrict(data []byte, v any) error {
	if len(data) > MaxDefinitionSize {
		return fmt.Errorf("definition is %d bytes, larger than the limit of %d", len(data), MaxDefinitionSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
