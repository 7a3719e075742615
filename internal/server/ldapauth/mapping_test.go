package ldapauth

import (
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestMapGroups(t *testing.T) {
	mapping := RoleMapping{
		"cn=admins,ou=groups,dc=example,dc=org": {"admin"},
		"Developers":                            {"scanner", "viewer"},
		"auditors":                              {"viewer"},
		"CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=com": {"admin"},
	}
	tests := []struct {
		name   string
		groups []string
		want   []string
	}{
		{"none", nil, nil},
		{"unknown group", []string{"cn=guests,ou=groups,dc=example,dc=org"}, nil},
		{"dn exact", []string{"cn=admins,ou=groups,dc=example,dc=org"}, []string{"admin"}},
		{"dn case and spacing", []string{"CN=Admins, OU=Groups, DC=Example, DC=Org"}, []string{"admin"}},
		{"dn other base", []string{"cn=admins,ou=other,dc=example,dc=org"}, nil},
		{"cn by name", []string{"cn=developers,ou=teams,dc=example,dc=org"}, []string{"scanner", "viewer"}},
		{"bare name", []string{"AUDITORS"}, []string{"viewer"}},
		{"ad escaped", []string{`CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=com`}, []string{"admin"}},
		{"dedup", []string{"developers", "auditors", "cn=Developers,dc=x"}, []string{"scanner", "viewer"}},
		{"name is not dn", []string{"admins"}, nil},
		{"garbage", []string{"=", ",,", "cn=", `cn=\zz`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MapGroups(tt.groups, mapping); !slices.Equal(got, tt.want) {
				t.Fatalf("MapGroups(%q) = %q, want %q", tt.groups, got, tt.want)
			}
		})
	}
}

func FuzzMapGroups(f *testing.F) {
	f.Add("cn=admins,ou=groups,dc=example,dc=org", "CN=Admins, OU=Groups, DC=Example, DC=Org")
	f.Add("developers", "cn=developers,dc=x")
	f.Add(`cn=a\,b+uid=c,dc=x`, `CN=Domain Admins,CN=Users,DC=corp`)
	f.Add("=", "cn=")
	f.Fuzz(func(t *testing.T, key, group string) {
		roles := MapGroups([]string{group}, RoleMapping{key: {"r"}})
		if len(roles) > 1 || (len(roles) == 1 && roles[0] != "r") {
			t.Fatalf("MapGroups granted %q, not a subset of the mapping", roles)
		}
	})
}

// FuzzUserFilter checks that no user name can change the structure of the
// user filter: it always compiles to one equality match whose value is the
// user name itself.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "*)(uid=*", "alice)(|(uid=*", "al*", "alice\x00", `\2a`, "ä(ö)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, username string) {
		p, err := ldap.CompileFilter(expand("(uid={username})", "username", username))
		if err != nil {
			t.Fatalf("filter for %q does not compile: %v", username, err)
		}
		if p.Tag != ldap.FilterEqualityMatch || len(p.Children) != 2 {
			t.Fatalf("filter for %q is not a single equality match", username)
		}
		if got := p.Children[1].Data.String(); got != username {
			t.Fatalf("filter for %q asserts %q", username, got)
		}
	})
}
