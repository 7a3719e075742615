package ldapauth

import (
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// RoleMapping maps a directory group to console roles. A key is either a
// full group DN ("cn=admins,ou=groups,dc=example,dc=org") or a bare group
// name, which matches the value of the group's first RDN (its CN). Keys are
// matched case-insensitively; DNs are compared after parsing, so spacing and
// escaping differences do not matter.
type RoleMapping map[string][]string

// MapGroups returns the roles the mapping grants to a user in groups, sorted
// and without duplicates. Unknown groups grant nothing (deny by default).
func MapGroups(groups []string, mapping RoleMapping) []string {
	type group struct {
		name string
		dn   *ldap.DN
	}
	parsed := make([]group, len(groups))
	for i, g := range groups {
		parsed[i].name = g
		parsed[i].dn, _ = parseDN(g)
	}
	var roles []string
	for key, granted := range mapping {
		keyDN, keyIsDN := parseDN(key)
		for _, g := range parsed {
			gDN, gIsDN := g.dn, g.dn != nil
			var match bool
			switch {
			case keyIsDN && gIsDN:
				match = keyDN.EqualFold(gDN)
			case keyIsDN:
				match = false
			case gIsDN:
				match = strings.EqualFold(key, gDN.RDNs[0].Attributes[0].Value)
			default:
				match = strings.EqualFold(key, g.name)
			}
			if match {
				roles = append(roles, granted...)
				break
			}
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// parseDN parses s as a DN with at least one RDN holding an attribute
// assertion ("cn=x"); anything else is a bare group name.
func parseDN(s string) (*ldap.DN, bool) {
	if !strings.Contains(s, "=") {
		return nil, false
	}
	dn, err := ldap.ParseDN(s)
	if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) == 0 {
		return nil, false
	}
	return dn, true
}
