package rbac

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Decision is the outcome of Decide.
type Decision struct {
	Allow bool
	// Reason explains the outcome; on a denial it names what was missing.
	Reason string
	// Binding names the binding that allowed the action (Binding.Name),
	// empty on a denial.
	Binding string
}

func deny(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
}

// Decide reports whether p may perform action on the resource of type t
// described by a. It denies unless a binding's role grants the action and
// one of the binding's scopes covers the resource (see Class), and, for a
// restricted principal, the restriction allows it too.
func Decide(p Principal, action Action, t ResourceType, a Attributes) Decision {
	if !action.Valid() {
		return deny("unknown action %q", action)
	}
	if !t.Valid() {
		return deny("unknown resource type %q", t)
	}
	who := p.describe()
	if p.Disabled {
		return deny("%s is disabled", who)
	}
	class := ClassOf(t)
	if r := p.Restriction; r != nil {
		if !r.Permissions.Allows(action, t) {
			return deny("%s: token restriction does not allow %s on %s", who, action, t)
		}
		if len(r.Scopes) > 0 {
			if _, ok := scopeCheck(class, action, r.Scopes, t, a); !ok {
				return deny("%s: token restriction scopes (%s) %s", who, scopeNames(r.Scopes), scopeMiss(class, action, t, a))
			}
		}
	}
	if len(p.Bindings) == 0 {
		return deny("%s has no role bindings", who)
	}
	var granting []string
	for _, b := range p.Bindings {
		if !b.Role.Allows(action, t) {
			continue
		}
		if s, ok := scopeCheck(class, action, b.Scopes, t, a); ok {
			return Decision{
				Allow:   true,
				Reason:  fmt.Sprintf("role %s grants %s on %s via scope %s", b.Role.Name, action, t, s),
				Binding: b.Name(),
			}
		}
		granting = append(granting, fmt.Sprintf("%s on scopes (%s)", b.Role.Name, scopeNames(b.Scopes)))
	}
	if len(granting) == 0 {
		return deny("%s: no role grants %s on %s", who, action, t)
	}
	return deny("%s: roles granting %s on %s are bound to scopes that %s: %s",
		who, action, t, scopeMiss(class, action, t, a), strings.Join(granting, "; "))
}

// scopeCheck reports whether scopes cover the resource for the class and
// action, and the name of the covering scope.
func scopeCheck(class Class, action Action, scopes []ApplicationScope, t ResourceType, a Attributes) (string, bool) {
	for _, s := range scopes {
		if s.IsGlobal() {
			return s.Name, true
		}
	}
	switch class {
	case ClassShared:
		if action == View && len(scopes) > 0 {
			return scopes[0].Name, true
		}
	case ClassScoped:
		for _, s := range scopes {
			if s.Matches(t, a) {
				return s.Name, true
			}
		}
	}
	return "", false
}

// scopeMiss words why scopes failed scopeCheck.
func scopeMiss(class Class, action Action, t ResourceType, a Attributes) string {
	switch {
	case class == ClassGlobal:
		return fmt.Sprintf("are not Global (%s is administrative and requires the Global scope)", t)
	case class == ClassShared && action == Edit:
		return fmt.Sprintf("are not Global (editing %s affects every scope and requires the Global scope)", t)
	}
	return "do not match " + a.String()
}

// String describes the non-empty attributes, e.g.
// "registry=r.example.com image=r.example.com/a/b labels{app=x}".
func (a Attributes) String() string {
	var parts []string
	for _, f := range []struct {
		attr  Attr
		value string
	}{{AttrRegistry, a.Registry}, {AttrImage, a.Image}, {AttrCluster, a.Cluster}, {AttrHost, a.Host}, {AttrNamespace, a.Namespace}, {AttrContainer, a.Container}} {
		if f.value != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", f.attr, f.value))
		}
	}
	if len(a.Labels) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			ls = append(ls, k+"="+a.Labels[k])
		}
		parts = append(parts, "labels{"+strings.Join(ls, ",")+"}")
	}
	if len(parts) == 0 {
		return "a resource with no scope attributes"
	}
	return strings.Join(parts, " ")
}

func (p Principal) describe() string {
	kind := p.Kind
	if kind == "" {
		kind = KindUser
	}
	name := p.Name
	if name == "" {
		name = p.ID
	}
	return fmt.Sprintf("%s %q", kind, name)
}

func scopeNames(scopes []ApplicationScope) string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}
