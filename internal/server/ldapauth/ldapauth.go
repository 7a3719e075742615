// Package ldapauth authenticates console users against an LDAP directory
// (OpenLDAP, Active Directory, 389 Directory Server). A login searches the
// user entry with a service account (or anonymously), binds as that entry
// with the given password, and reads the user's groups, either from a
// membership attribute on the user (memberOf) or by a group search.
//
// Errors never tell the caller whether the user exists: every failed login
// matches ErrInvalidCredentials with errors.Is, and a directory that cannot be
// reached matches ErrUnavailable. The Error text carries the detail for the
// server log and must not be shown to the client.
package ldapauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Identity is an authenticated user as the directory describes it.
type Identity struct {
	Username    string
	DisplayName string
	Email       string
	// Groups are the DNs of the user's groups, sorted and without duplicates
	// (both ignoring case).
	Groups []string
	// Source names the identity provider (Config.Name).
	Source string
}

// ErrInvalidCredentials matches every login refused because of the user name
// or password: unknown user, wrong or empty password, ambiguous user filter.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ErrUnavailable matches a login that failed because the directory could not
// be used: connection refused, TLS failure, timeout, service bind refused.
var ErrUnavailable = errors.New("directory unavailable")

// Limits on input and directory answers, so a login never uses unbounded
// memory.
const (
	maxUsernameLen = 256
	maxPasswordLen = 1024
	maxGroups      = 1000
)

// Config describes the directory and how users and groups are found.
type Config struct {
	// Name is the identity source recorded in Identity.Source (default "ldap").
	Name string
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string
	// StartTLS upgrades an ldap:// connection with the StartTLS extended
	// operation before any bind.
	StartTLS bool
	// AllowPlaintext permits an ldap:// URL without StartTLS, which sends
	// passwords in clear text; meant for a directory on the same host or in
	// tests. Without it such a configuration is refused.
	AllowPlaintext bool
	// TLS configures ldaps:// and StartTLS (CA pool, client certificate).
	// Nil uses the system roots; an empty ServerName is the host of URL and
	// the minimum version is TLS 1.2 unless set.
	TLS *tls.Config
	// BindDN and BindPassword are the service account used to search users
	// and groups. An empty BindDN searches anonymously.
	BindDN       string
	BindPassword string
	// UserBaseDN is where user entries are searched (subtree).
	UserBaseDN string
	// UserFilter finds the user entry; {username} is replaced by the escaped
	// login name. Default "(uid={username})"; for Active Directory use
	// "(&(objectClass=user)(sAMAccountName={username}))".
	UserFilter string
	// UsernameAttribute holds the canonical user name (default "uid"; AD:
	// "sAMAccountName").
	UsernameAttribute string
	// DisplayNameAttribute holds the display name (default "cn"; AD:
	// "displayName").
	DisplayNameAttribute string
	// EmailAttribute holds the e-mail address (default "mail").
	EmailAttribute string
	// MemberOfAttribute, when set (AD and OpenLDAP memberof overlay:
	// "memberOf"), lists the user's group DNs on the user entry.
	MemberOfAttribute string
	// GroupBaseDN and GroupFilter, when both set, find the user's groups by a
	// subtree search. {userDN} is replaced by the escaped user DN and
	// {username} by the escaped canonical user name, e.g.
	// "(&(objectClass=groupOfNames)(member={userDN}))" or
	// "(&(objectClass=posixGroup)(memberUid={username}))".
	GroupBaseDN string
	GroupFilter string
	// Timeout bounds the connection and each directory operation
	// (default 10s).
	Timeout time.Duration
}

// Authenticator logs users in against one directory.
type Authenticator struct {
	cfg Config
}

// New checks the configuration and fills in defaults.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Name == "" {
		cfg.Name = "ldap"
	}
	if cfg.UserFilter == "" {
		cfg.UserFilter = "(uid={username})"
	}
	if cfg.UsernameAttribute == "" {
		cfg.UsernameAttribute = "uid"
	}
	if cfg.DisplayNameAttribute == "" {
		cfg.DisplayNameAttribute = "cn"
	}
	if cfg.EmailAttribute == "" {
		cfg.EmailAttribute = "mail"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("ldap config: url %q: want ldap://host[:port] or ldaps://host[:port]", cfg.URL)
	}
	if cfg.StartTLS && u.Scheme == "ldaps" {
		return nil, fmt.Errorf("ldap config: url %q: starttls is for ldap:// URLs, ldaps:// is already TLS", cfg.URL)
	}
	if u.Scheme == "ldap" && !cfg.StartTLS && !cfg.AllowPlaintext {
		return nil, fmt.Errorf("ldap config: url %q would send passwords in clear text: use ldaps://, enable starttls, or allow plaintext explicitly", cfg.URL)
	}
	if cfg.BindDN != "" && cfg.BindPassword == "" {
		return nil, fmt.Errorf("ldap config: bind_dn %q has no bind password", cfg.BindDN)
	}
	if _, err := ldap.ParseDN(cfg.UserBaseDN); err != nil || cfg.UserBaseDN == "" {
		return nil, fmt.Errorf("ldap config: user base DN %q is not a DN", cfg.UserBaseDN)
	}
	if !strings.Contains(cfg.UserFilter, "{username}") {
		return nil, fmt.Errorf("ldap config: user filter %q must contain {username}", cfg.UserFilter)
	}
	if _, err := ldap.CompileFilter(expand(cfg.UserFilter, "username", "x")); err != nil {
		return nil, fmt.Errorf("ldap config: user filter %q: %w", cfg.UserFilter, err)
	}
	if (cfg.GroupBaseDN == "") != (cfg.GroupFilter == "") {
		return nil, errors.New("ldap config: group base DN and group filter must be set together")
	}
	if cfg.GroupFilter != "" {
		if _, err := ldap.ParseDN(cfg.GroupBaseDN); err != nil {
			return nil, fmt.Errorf("ldap config: group base DN %q is not a DN", cfg.GroupBaseDN)
		}
		f := expand(expand(cfg.GroupFilter, "userDN", "cn=x"), "username", "x")
		if _, err := ldap.CompileFilter(f); err != nil {
			return nil, fmt.Errorf("ldap config: group filter %q: %w", cfg.GroupFilter, err)
		}
	}
	// Clone the TLS settings so later changes by the caller do not apply,
	// and fill in what ldaps:// and StartTLS need.
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{}
	} else {
		cfg.TLS = cfg.TLS.Clone()
	}
	if cfg.TLS.ServerName == "" {
		cfg.TLS.ServerName = u.Hostname()
	}
	if cfg.TLS.MinVersion == 0 {
		cfg.TLS.MinVersion = tls.VersionTLS12
	}
	return &Authenticator{cfg: cfg}, nil
}

// expand replaces {name} in a filter template by value, escaped as an LDAP
// filter assertion value (RFC 4515), so the value can never change the
// structure of the filter.
func expand(template, name, value string) string {
	return strings.ReplaceAll(template, "{"+name+"}", ldap.EscapeFilter(value))
}

// loginError is a refused or failed login: kind is ErrInvalidCredentials or
// ErrUnavailable and cause the detail for the log; errors.Is sees both.
type loginError struct {
	kind  error
	user  string
	cause error
}

func (e *loginError) Error() string {
	return fmt.Sprintf("ldap login %q: %v: %v", e.user, e.kind, e.cause)
}

func (e *loginError) Unwrap() []error { return []error{e.kind, e.cause} }

// Authenticate checks username and password against the directory and
// returns the user's identity. A failed login matches ErrInvalidCredentials
// or ErrUnavailable; the context bounds the whole login.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string) (*Identity, error) {
	refuse := func(format string, args ...any) error {
		return &loginError{kind: ErrInvalidCredentials, user: username, cause: fmt.Errorf(format, args...)}
	}
	fail := func(format string, args ...any) error {
		return &loginError{kind: ErrUnavailable, user: username, cause: fmt.Errorf(format, args...)}
	}
	// An empty password would be an unauthenticated bind (RFC 4513 5.1.2),
	// which many servers accept as success: never send it.
	switch {
	case password == "":
		return nil, refuse("empty password")
	case username == "":
		return nil, refuse("empty user name")
	case len(username) > maxUsernameLen:
		return nil, refuse("user name longer than %d bytes", maxUsernameLen)
	case len(password) > maxPasswordLen:
		return nil, refuse("password longer than %d bytes", maxPasswordLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail("%w", err)
	}

	conn, err := a.dial(ctx)
	if err != nil {
		return nil, fail("%w", err)
	}
	defer conn.Close()
	// Closing the connection when ctx ends aborts any pending operation.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := a.serviceBind(conn); err != nil {
		return nil, fail("%w", err)
	}
	entry, err := a.findUser(conn, username)
	if errors.Is(err, ErrInvalidCredentials) {
		// Spend the round trip a password check would, so the answer time
		// does not tell whether the user exists. The decoy DN does not exist
		// and the bind always fails.
		_ = conn.Bind("cn=mamori-login-decoy,"+a.cfg.UserBaseDN, password)
		return nil, refuse("%w", err)
	}
	if err != nil {
		return nil, fail("%w", err)
	}
	if err := conn.Bind(entry.DN, password); err != nil {
		if ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultUnwillingToPerform,
			ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultInsufficientAccessRights) {
			return nil, refuse("bind as %s: %w", entry.DN, err)
		}
		return nil, fail("bind as %s: %w", entry.DN, ctxErr(ctx, err))
	}

	id := &Identity{
		Username:    entry.GetAttributeValue(a.cfg.UsernameAttribute),
		DisplayName: entry.GetAttributeValue(a.cfg.DisplayNameAttribute),
		Email:       entry.GetAttributeValue(a.cfg.EmailAttribute),
		Source:      a.cfg.Name,
	}
	if id.Username == "" {
		id.Username = username
	}
	groups, err := a.groups(conn, entry, id.Username)
	if err != nil {
		return nil, fail("%w", ctxErr(ctx, err))
	}
	id.Groups = groups
	return id, nil
}

// ctxErr prefers the context's error, which explains a connection closed by
// context.AfterFunc.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func (a *Authenticator) dial(ctx context.Context) (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: a.cfg.Timeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	conn, err := ldap.DialURL(a.cfg.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(a.cfg.TLS))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a.cfg.URL, err)
	}
	conn.SetTimeout(a.cfg.Timeout)
	if a.cfg.StartTLS {
		if err := conn.StartTLS(a.cfg.TLS); err != nil {
			conn.Close()
			return nil, fmt.Errorf("starttls with %s: %w", a.cfg.URL, err)
		}
	}
	return conn, nil
}

// serviceBind binds as the service account, if one is configured.
func (a *Authenticator) serviceBind(conn *ldap.Conn) error {
	if a.cfg.BindDN == "" {
		return nil
	}
	if err := conn.Bind(a.cfg.BindDN, a.cfg.BindPassword); err != nil {
		return fmt.Errorf("service bind as %s: %w", a.cfg.BindDN, err)
	}
	return nil
}

// findUser returns the single entry the user filter matches. No match or
// several matches give ErrInvalidCredentials.
func (a *Authenticator) findUser(conn *ldap.Conn, username string) (*ldap.Entry, error) {
	attrs := []string{a.cfg.UsernameAttribute, a.cfg.DisplayNameAttribute, a.cfg.EmailAttribute}
	if a.cfg.MemberOfAttribute != "" {
		attrs = append(attrs, a.cfg.MemberOfAttribute)
	}
	filter := expand(a.cfg.UserFilter, "username", username)
	req := ldap.NewSearchRequest(a.cfg.UserBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, a.timeLimit(), false, filter, attrs, nil)
	res, err := conn.Search(req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return nil, fmt.Errorf("%w: user filter %s matches several entries", ErrInvalidCredentials, filter)
	}
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, fmt.Errorf("user base DN %s does not exist: %w", a.cfg.UserBaseDN, err)
	}
	if err != nil {
		return nil, fmt.Errorf("search users in %s with %s: %w", a.cfg.UserBaseDN, filter, err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, fmt.Errorf("%w: no entry in %s matches %s", ErrInvalidCredentials, a.cfg.UserBaseDN, filter)
	case 1:
		return res.Entries[0], nil
	default:
		return nil, fmt.Errorf("%w: user filter %s matches %d entries", ErrInvalidCredentials, filter, len(res.Entries))
	}
}

// groups returns the DNs of the user's groups. The group search runs as the
// service account when there is one, as the user otherwise.
func (a *Authenticator) groups(conn *ldap.Conn, user *ldap.Entry, username string) ([]string, error) {
	var groups []string
	if a.cfg.MemberOfAttribute != "" {
		groups = append(groups, user.GetAttributeValues(a.cfg.MemberOfAttribute)...)
	}
	if a.cfg.GroupFilter != "" {
		if err := a.serviceBind(conn); err != nil {
			return nil, err
		}
		filter := expand(expand(a.cfg.GroupFilter, "userDN", user.DN), "username", username)
		req := ldap.NewSearchRequest(a.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			maxGroups, a.timeLimit(), false, filter, []string{"1.1"}, nil)
		res, err := conn.Search(req)
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil, fmt.Errorf("search groups in %s with %s: %w", a.cfg.GroupBaseDN, filter, err)
		}
		if res != nil {
			for _, e := range res.Entries {
				groups = append(groups, e.DN)
			}
		}
	}
	if len(groups) > maxGroups {
		groups = groups[:maxGroups]
	}
	slices.SortFunc(groups, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	return slices.CompactFunc(groups, strings.EqualFold), nil
}

// timeLimit is the server-side search time limit in whole seconds.
func (a *Authenticator) timeLimit() int {
	return max(1, int(a.cfg.Timeout/time.Second))
}
