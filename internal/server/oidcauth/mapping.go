package oidcauth

import (
	"slices"
	"strings"
)

// RoleMapping maps an identity-provider group (as it appears in the groups
// claim: a name such as "mamori-admins", a path such as "/mamori/admins" or
// an object ID as Entra ID sends) to console roles. Keys match
// case-insensitively.
type RoleMapping map[string][]string

// MapGroups returns the roles the mapping grants to a user in groups, sorted
// and without duplicates. Unknown groups grant nothing (deny by default).
func MapGroups(groups []string, mapping RoleMapping) []string {
	var roles []string
	for key, granted := range mapping {
		if slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, key) }) {
			roles = append(roles, granted...)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}
