package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/server/ldapauth/slapdtest"
)

const (
	people   = "ou=people," + slapdtest.Suffix
	groupsOU = "ou=groups," + slapdtest.Suffix
	reader   = "cn=reader,ou=services," + slapdtest.Suffix
	aliceDN  = "uid=alice," + people
	bobDN    = "uid=bob," + people
	admins   = "cn=admins," + groupsOU
	devs     = "cn=Developers," + groupsOU
	ops      = "cn=ops," + groupsOU
)

// directory starts slapd with two users, a service account, an ambiguous
// user name and three groups (two groupOfNames, one posixGroup).
func directory(t *testing.T) *slapdtest.Server {
	t.Helper()
	s := slapdtest.Start(t)
	ou := func(dn, name string) slapdtest.Entry {
		return slapdtest.Entry{DN: dn, Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}}}
	}
	person := func(dn, uid, cn, mail, pw string) slapdtest.Entry {
		return slapdtest.Entry{DN: dn, Attrs: map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {cn}, "sn": {"Test"},
			"mail": {mail}, "userPassword": {pw},
		}}
	}
	s.Add(t,
		slapdtest.Entry{DN: slapdtest.Suffix, Attrs: map[string][]string{
			"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		ou(people, "people"), ou(groupsOU, "groups"), ou("ou=services,"+slapdtest.Suffix, "services"),
		ou("ou=contractors,"+slapdtest.Suffix, "contractors"),
		slapdtest.Entry{DN: reader, Attrs: map[string][]string{
			"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"reader"},
			"userPassword": {"reader-pw"}}},
		person(aliceDN, "alice", "Alice Liddell", "alice@example.org", "alice-pw"),
		person(bobDN, "bob", "Bob Builder", "bob@example.org", "bob-pw"),
		person("uid=dup,"+people, "dup", "Dup One", "dup1@example.org", "dup-pw"),
		person("uid=dup,ou=contractors,"+slapdtest.Suffix, "dup", "Dup Two", "dup2@example.org", "dup-pw"),
		slapdtest.Entry{DN: admins, Attrs: map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {"admins"}, "member": {aliceDN}}},
		slapdtest.Entry{DN: devs, Attrs: map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {"Developers"}, "member": {aliceDN, bobDN}}},
		slapdtest.Entry{DN: ops, Attrs: map[string][]string{
			"objectClass": {"posixGroup"}, "cn": {"ops"}, "gidNumber": {"500"}, "memberUid": {"bob"}}},
	)
	return s
}

func baseConfig(url string) Config {
	return Config{
		URL: url, BindDN: reader, BindPassword: "reader-pw",
		UserBaseDN: slapdtest.Suffix, UserFilter: "(&(objectClass=person)(uid={username}))",
		GroupBaseDN: groupsOU, GroupFilter: "(|(&(objectClass=groupOfNames)(member={userDN}))(&(objectClass=posixGroup)(memberUid={username})))",
		Timeout: 5 * time.Second, AllowPlaintext: true,
	}
}

func TestAuthenticate(t *testing.T) {
	s := directory(t)
	memberOf := baseConfig(s.URL)
	memberOf.GroupBaseDN, memberOf.GroupFilter, memberOf.MemberOfAttribute = "", "", "memberOf"
	anonymous := baseConfig(s.URL)
	anonymous.BindDN, anonymous.BindPassword = "", ""
	badService := baseConfig(s.URL)
	badService.BindPassword = "wrong"

	tests := []struct {
		name     string
		cfg      Config
		user, pw string
		want     *Identity
		wantErr  error
	}{
		{name: "group search", cfg: baseConfig(s.URL), user: "alice", pw: "alice-pw",
			want: &Identity{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org",
				Groups: []string{admins, devs}, Source: "ldap"}},
		{name: "posix memberUid", cfg: baseConfig(s.URL), user: "bob", pw: "bob-pw",
			want: &Identity{Username: "bob", DisplayName: "Bob Builder", Email: "bob@example.org",
				Groups: []string{devs, ops}, Source: "ldap"}},
		{name: "memberOf attribute", cfg: memberOf, user: "alice", pw: "alice-pw",
			want: &Identity{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org",
				Groups: []string{admins, devs}, Source: "ldap"}},
		{name: "anonymous search", cfg: anonymous, user: "bob", pw: "bob-pw",
			want: &Identity{Username: "bob", DisplayName: "Bob Builder", Email: "bob@example.org",
				Groups: []string{devs, ops}, Source: "ldap"}},
		{name: "canonical user name", cfg: baseConfig(s.URL), user: "ALICE", pw: "alice-pw",
			want: &Identity{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org",
				Groups: []string{admins, devs}, Source: "ldap"}},
		{name: "wrong password", cfg: baseConfig(s.URL), user: "alice", pw: "bob-pw", wantErr: ErrInvalidCredentials},
		{name: "empty password", cfg: baseConfig(s.URL), user: "alice", pw: "", wantErr: ErrInvalidCredentials},
		{name: "empty password anonymous", cfg: anonymous, user: "alice", pw: "", wantErr: ErrInvalidCredentials},
		{name: "empty user", cfg: baseConfig(s.URL), user: "", pw: "x", wantErr: ErrInvalidCredentials},
		{name: "unknown user", cfg: baseConfig(s.URL), user: "mallory", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "ambiguous user", cfg: baseConfig(s.URL), user: "dup", pw: "dup-pw", wantErr: ErrInvalidCredentials},
		{name: "long user", cfg: baseConfig(s.URL), user: strings.Repeat("a", 300), pw: "x", wantErr: ErrInvalidCredentials},
		{name: "injection wildcard", cfg: baseConfig(s.URL), user: "*", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "injection or", cfg: baseConfig(s.URL), user: "*)(uid=*", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "injection close", cfg: baseConfig(s.URL), user: "alice)(|(uid=*", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "injection prefix", cfg: baseConfig(s.URL), user: "al*", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "injection nul", cfg: baseConfig(s.URL), user: "alice\x00", pw: "alice-pw", wantErr: ErrInvalidCredentials},
		{name: "service bind refused", cfg: badService, user: "alice", pw: "alice-pw", wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Authenticate(context.Background(), tt.user, tt.pw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate(%q) error = %v, want %v", tt.user, err, tt.wantErr)
				}
				if got != nil {
					t.Fatalf("Authenticate(%q) returned identity %+v with error", tt.user, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate(%q): %v", tt.user, err)
			}
			// The directory may return DNs in its own case; compare folded.
			for i := range got.Groups {
				got.Groups[i] = strings.ToLower(got.Groups[i])
			}
			for i := range tt.want.Groups {
				tt.want.Groups[i] = strings.ToLower(tt.want.Groups[i])
			}
			if got.Username != tt.want.Username || got.DisplayName != tt.want.DisplayName ||
				got.Email != tt.want.Email || got.Source != tt.want.Source || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Fatalf("Authenticate(%q) = %+v, want %+v", tt.user, got, tt.want)
			}
		})
	}
}

// TestErrorsHideUserExistence checks that an unknown user and a wrong
// password are indistinguishable by errors.Is.
func TestErrorsHideUserExistence(t *testing.T) {
	s := directory(t)
	a, err := New(baseConfig(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, errUnknown := a.Authenticate(context.Background(), "mallory", "pw")
	_, errWrong := a.Authenticate(context.Background(), "alice", "pw")
	for _, err := range []error{errUnknown, errWrong} {
		if !errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrUnavailable) {
			t.Errorf("error %v: want only ErrInvalidCredentials", err)
		}
	}
}

func TestGroupMappingFromDirectory(t *testing.T) {
	s := directory(t)
	a, err := New(baseConfig(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	mapping := RoleMapping{
		"CN=Admins,OU=Groups,DC=example,DC=org": {"admin"},
		"developers":                            {"scanner", "viewer"},
		"ops":                                   {"operator"},
	}
	for user, want := range map[string][]string{
		"alice": {"admin", "scanner", "viewer"},
		"bob":   {"operator", "scanner", "viewer"},
	} {
		id, err := a.Authenticate(context.Background(), user, user+"-pw")
		if err != nil {
			t.Fatal(err)
		}
		if got := MapGroups(id.Groups, mapping); !slices.Equal(got, want) {
			t.Errorf("roles of %s = %v, want %v", user, got, want)
		}
	}
}

func TestServerDown(t *testing.T) {
	s := directory(t)
	s.Stop()
	a, err := New(baseConfig(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), "alice", "alice-pw")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				<-done
				return
			}
			conns = append(conns, c)
		}
	}()
	return "ldap://" + l.Addr().String()
}

func TestTimeout(t *testing.T) {
	url := silentServer(t)
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration
	}{
		{name: "config timeout", timeout: 300 * time.Millisecond, ctx: time.Minute},
		{name: "context deadline", timeout: time.Minute, ctx: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(url)
			cfg.Timeout = tt.timeout
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
			defer cancel()
			start := time.Now()
			_, err = a.Authenticate(ctx, "alice", "alice-pw")
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error = %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("login took %v despite the timeout", d)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := baseConfig("ldap://127.0.0.1:389")
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"http url", func(c *Config) { c.URL = "http://x" }, "want ldap://"},
		{"no host", func(c *Config) { c.URL = "ldap://" }, "want ldap://"},
		{"plaintext", func(c *Config) { c.AllowPlaintext = false }, "clear text"},
		{"starttls on ldaps", func(c *Config) { c.URL = "ldaps://x"; c.StartTLS = true }, "starttls"},
		{"bind without password", func(c *Config) { c.BindPassword = "" }, "no bind password"},
		{"bad base", func(c *Config) { c.UserBaseDN = "not a dn" }, "user base DN"},
		{"empty base", func(c *Config) { c.UserBaseDN = "" }, "user base DN"},
		{"no placeholder", func(c *Config) { c.UserFilter = "(uid=alice)" }, "must contain {username}"},
		{"bad filter", func(c *Config) { c.UserFilter = "(uid={username}" }, "user filter"},
		{"group filter alone", func(c *Config) { c.GroupBaseDN = "" }, "set together"},
		{"bad group filter", func(c *Config) { c.GroupFilter = "member={userDN})" }, "group filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.modify(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
}

func TestTLS(t *testing.T) {
	s := directory(t)
	trusted := &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
	untrusted := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	tests := []struct {
		name     string
		url      string
		startTLS bool
		tls      *tls.Config
		wantErr  error
	}{
		{name: "ldaps", url: s.TLSURL, tls: trusted},
		{name: "starttls", url: s.URL, startTLS: true, tls: trusted},
		{name: "ldaps untrusted", url: s.TLSURL, tls: untrusted, wantErr: ErrUnavailable},
		{name: "starttls untrusted", url: s.URL, startTLS: true, tls: untrusted, wantErr: ErrUnavailable},
		{name: "ldaps system roots", url: s.TLSURL, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(tt.url)
			cfg.StartTLS, cfg.TLS = tt.startTLS, tt.tls
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			id, err := a.Authenticate(context.Background(), "alice", "alice-pw")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && id.Username != "alice") {
				t.Fatalf("Authenticate = %+v, %v; want error %v", id, err, tt.wantErr)
			}
		})
	}
}

// TestNewAcceptsDocumentedFilters checks the filters shown in docs/sso.md.
func TestNewAcceptsDocumentedFilters(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "ldaps://ldap.example.org", UserBaseDN: "ou=people,dc=example,dc=org",
			UserFilter: "(&(objectClass=inetOrgPerson)(uid={username}))", MemberOfAttribute: "memberOf",
			GroupBaseDN: "ou=groups,dc=example,dc=org", GroupFilter: "(&(objectClass=groupOfNames)(member={userDN}))"},
		{URL: "ldaps://ldap.example.org", UserBaseDN: "ou=people,dc=example,dc=org",
			GroupBaseDN: "ou=groups,dc=example,dc=org", GroupFilter: "(&(objectClass=posixGroup)(memberUid={username}))"},
		{URL: "ldap://dc1.corp.example.com", StartTLS: true, BindDN: "CN=svc-mamori,OU=Service Accounts,DC=corp,DC=example,DC=com",
			BindPassword: "x", UserBaseDN: "DC=corp,DC=example,DC=com",
			UserFilter:  "(&(objectCategory=person)(objectClass=user)(sAMAccountName={username})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
			GroupBaseDN: "DC=corp,DC=example,DC=com", GroupFilter: "(member:1.2.840.113556.1.4.1941:={userDN})"},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}
