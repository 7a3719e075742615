package rbac

import (
	"fmt"
	"maps"
	"slices"
)

// Names of the built-in roles.
const (
	RoleAdministrator = "Administrator"
	RoleAuditor       = "Auditor"
	RoleScanner       = "Scanner"
	RoleViewer        = "Viewer"
	RoleGateway       = "Gateway"
)

// Permissions maps a resource type to the highest action allowed on it.
// A missing resource type allows nothing.
type Permissions map[ResourceType]Action

// Allows reports whether p permits action on t. Edit implies View.
func (p Permissions) Allows(action Action, t ResourceType) bool {
	switch p[t] {
	case Edit:
		return action == Edit || action == View
	case View:
		return action == View
	}
	return false
}

// Validate checks that every key is a known resource type and every value
// a known action.
func (p Permissions) Validate() error {
	for _, t := range slices.Sorted(maps.Keys(p)) {
		if !t.Valid() {
			return fmt.Errorf("unknown resource type %q", t)
		}
		if !p[t].Valid() {
			return fmt.Errorf("resource type %s: unknown action %q (want view or edit)", t, p[t])
		}
	}
	return nil
}

// Role is a named set of permissions. Roles are data: users define more
// with ParseRole.
type Role struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Permissions Permissions `json:"permissions"`
}

// Allows reports whether r permits action on t.
func (r Role) Allows(action Action, t ResourceType) bool { return r.Permissions.Allows(action, t) }

// Validate checks the name and the permissions.
func (r Role) Validate() error {
	if err := validateName(r.Name); err != nil {
		return fmt.Errorf("role %q: %w", r.Name, err)
	}
	if err := r.Permissions.Validate(); err != nil {
		return fmt.Errorf("role %q: %w", r.Name, err)
	}
	return nil
}

// ParseRole decodes and validates a user-defined role from JSON. Unknown
// fields and the names of built-in roles are rejected.
func ParseRole(data []byte) (Role, error) {
	var r Role
	if err := decodeStrict(data, &r); err != nil {
		return Role{}, fmt.Errorf("role: %w", err)
	}
	if _, ok := BuiltinRole(r.Name); ok {
		return Role{}, fmt.Errorf("role %q: the name is reserved for a built-in role", r.Name)
	}
	if err := r.Validate(); err != nil {
		return Role{}, err
	}
	return r, nil
}

// BuiltinRoles returns the built-in roles:
//
//   - Administrator: edit on every resource type.
//   - Auditor: view on every resource type (including the audit trail and
//     settings), edit on nothing.
//   - Scanner: edit on scans and images only, for remote scanner tokens.
//   - Viewer: view on images, scans, vulnerabilities and policies. Scans
//     are included because an image's vulnerabilities are scan results.
//   - Gateway: edit on enforcers only, for the API tokens fleet gateways
//     relay agents' enrollments, heartbeats, events and inventories with.
//     Bound on the Global scope it serves every host; on a scope with
//     hosts, only agents on those hosts.
func BuiltinRoles() []Role {
	all := func(a Action) Permissions {
		p := Permissions{}
		for _, t := range resourceTypes {
			p[t] = a
		}
		return p
	}
	return []Role{
		{Name: RoleAdministrator, Description: "Full control of every resource.", Permissions: all(Edit)},
		{Name: RoleAuditor, Description: "Read-only access to everything, including the audit trail.", Permissions: all(View)},
		{Name: RoleScanner, Description: "Submit scans and images; for remote scanner tokens.", Permissions: Permissions{Scans: Edit, Images: Edit}},
		{Name: RoleGateway, Description: "Relay enforcers' enrollment, heartbeats, events and inventory; for fleet gateway tokens.", Permissions: Permissions{Enforcers: Edit}},
		{Name: RoleViewer, Description: "Read images, scan results, vulnerabilities and policies.", Permissions: Permissions{
			Images: View, Scans: View, Vulnerabilities: View, AssurancePolicies: View, RuntimePolicies: View,
		}},
	}
}

// BuiltinRole returns the built-in role with the given name.
func BuiltinRole(name string) (Role, bool) {
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}
