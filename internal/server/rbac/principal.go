package rbac

import (
	"fmt"
	"strings"
)

// PrincipalKind says what kind of actor a principal is.
type PrincipalKind string

// The principal kinds.
const (
	KindUser  PrincipalKind = "user"
	KindToken PrincipalKind = "token"
)

// Principal is an authenticated actor with its resolved role bindings.
//
// For an API token, Bindings are the owning user's bindings and
// Restriction is the token's own limit: the token may do only what both
// allow (an intersection, never an escalation).
type Principal struct {
	Kind PrincipalKind
	// ID is the stable identifier (user ID or token ID).
	ID string
	// Name is shown in reasons and audit events.
	Name string
	// Disabled principals are denied everything. The server sets it for
	// a token whose owner is disabled, too.
	Disabled bool
	// Bindings are the roles the principal holds, each on its scopes,
	// from direct assignment and from directory groups.
	Bindings []Binding
	// Restriction, when not nil, further limits the principal.
	Restriction *Restriction
}

// Binding grants a role on a list of scopes.
type Binding struct {
	Role   Role
	Scopes []ApplicationScope
	// Source says where the binding came from: "user" for a direct
	// assignment, "group:<name>" for a directory group mapping.
	Source string
}

// Name identifies the binding in decisions: "Role@scope1,scope2", with
// " (source)" appended when the source is known.
func (b Binding) Name() string {
	names := make([]string, len(b.Scopes))
	for i, s := range b.Scopes {
		names[i] = s.Name
	}
	n := b.Role.Name + "@" + strings.Join(names, ",")
	if b.Source != "" {
		n += " (" + b.Source + ")"
	}
	return n
}

// Restriction limits what a principal (typically an API token) may do,
// within what its bindings allow.
type Restriction struct {
	// Permissions is the most the token may do; a missing resource type
	// allows nothing.
	Permissions Permissions `json:"permissions"`
	// Scopes, when not empty, limits the token to resources these scopes
	// match, in addition to the bindings' scopes. Empty means no further
	// scope limit.
	Scopes []ApplicationScope `json:"scopes,omitempty"`
}

// BindingRef is the stored form of a binding: names of a role and of
// scopes, resolved with a Catalog.
type BindingRef struct {
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	Source string   `json:"source,omitempty"`
}

// GroupMapping maps a directory group (LDAP DN or OIDC group claim) to a
// binding.
type GroupMapping struct {
	Group   string     `json:"group"`
	Binding BindingRef `json:"binding"`
}

// BindingsForGroups returns the bindings of the mappings whose group is in
// groups, with Source set to "group:<name>". Group names are compared
// exactly.
func BindingsForGroups(mappings []GroupMapping, groups []string) []BindingRef {
	member := make(map[string]bool, len(groups))
	for _, g := range groups {
		member[g] = true
	}
	var out []BindingRef
	for _, m := range mappings {
		if member[m.Group] {
			ref := m.Binding
			ref.Source = "group:" + m.Group
			out = append(out, ref)
		}
	}
	return out
}

// Catalog holds the roles and scopes bindings refer to by name. The
// built-in roles and the Global scope are always present.
type Catalog struct {
	roles  map[string]Role
	scopes map[string]ApplicationScope
}

// NewCatalog returns a catalog of the built-in roles, the Global scope and
// the given user-defined ones, which must be valid and must not reuse a
// name.
func NewCatalog(roles []Role, scopes []ApplicationScope) (*Catalog, error) {
	c := &Catalog{roles: map[string]Role{}, scopes: map[string]ApplicationScope{GlobalScopeName: GlobalScope}}
	for _, r := range append(BuiltinRoles(), roles...) {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if _, dup := c.roles[r.Name]; dup {
			return nil, fmt.Errorf("role %q is defined twice", r.Name)
		}
		c.roles[r.Name] = r
	}
	for _, s := range scopes {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if _, dup := c.scopes[s.Name]; dup {
			return nil, fmt.Errorf("application scope %q is defined twice", s.Name)
		}
		c.scopes[s.Name] = s
	}
	return c, nil
}

// Resolve turns stored binding references into bindings. A reference to
// an unknown role or scope, or with no scope, is an error naming it.
func (c *Catalog) Resolve(refs []BindingRef) ([]Binding, error) {
	out := make([]Binding, 0, len(refs))
	for _, ref := range refs {
		role, ok := c.roles[ref.Role]
		if !ok {
			return nil, fmt.Errorf("binding of role %q: no such role", ref.Role)
		}
		if len(ref.Scopes) == 0 {
			return nil, fmt.Errorf("binding of role %q: no application scope", ref.Role)
		}
		b := Binding{Role: role, Source: ref.Source}
		for _, name := range ref.Scopes {
			s, ok := c.scopes[name]
			if !ok {
				return nil, fmt.Errorf("binding of role %q: no such application scope %q", ref.Role, name)
			}
			b.Scopes = append(b.Scopes, s)
		}
		out = append(out, b)
	}
	return out, nil
}

// Scopes returns the named application scopes, for a token's scope
// restriction; an unknown name is an error.
func (c *Catalog) Scopes(names []string) ([]ApplicationScope, error) {
	out := make([]ApplicationScope, 0, len(names))
	for _, n := range names {
		s, ok := c.scopes[n]
		if !ok {
			return nil, fmt.Errorf("no application scope %q", n)
		}
		out = append(out, s)
	}
	return out, nil
}
