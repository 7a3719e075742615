// Package registry discovers the images of the container registries the
// console server watches: registry configuration and credentials,
// repository and tag discovery over the OCI distribution API, scan
// schedules and push webhooks.
package registry

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"
)

// Type is the kind of registry. It selects defaults (the host, how
// token-exchange credentials are presented) and whether the catalog API
// can list repositories.
type Type string

// Registry types.
const (
	// TypeGeneric is any OCI distribution registry (CNCF distribution,
	// Zot, GitLab, Nexus...).
	TypeGeneric Type = "generic"
	// TypeDockerHub is Docker Hub. It has no catalog: list repositories.
	TypeDockerHub Type = "dockerhub"
	// TypeECR is Amazon ECR. It has no catalog: list repositories.
	TypeECR Type = "ecr"
	// TypeGCR is Google Container Registry or Artifact Registry.
	TypeGCR Type = "gcr"
	// TypeACR is Azure Container Registry.
	TypeACR Type = "acr"
	// TypeQuay is Quay.io or Red Hat Quay.
	TypeQuay Type = "quay"
	// TypeArtifactory is JFrog Artifactory.
	TypeArtifactory Type = "artifactory"
	// TypeHarbor is Harbor.
	TypeHarbor Type = "harbor"
)

// AuthType is how the server authenticates to a registry.
type AuthType string

// Authentication types.
const (
	// AuthNone: anonymous access.
	AuthNone AuthType = "none"
	// AuthBasic: Username and Password (or a personal access token as the
	// password), presented with HTTP basic authentication or exchanged
	// for a bearer token at the registry's token service.
	AuthBasic AuthType = "basic"
	// AuthBearer: Token is a registry access token sent as is
	// ("Authorization: Bearer Token") to the registry.
	AuthBearer AuthType = "bearer"
	// AuthIdentityToken: Token is an OAuth2 refresh (identity) token that
	// the registry's token service exchanges for access tokens, as
	// "docker login" stores for ACR; Username is optional.
	AuthIdentityToken AuthType = "identity-token"
	// AuthTokenExchange: Token is a short-lived password obtained out of
	// band (aws ecr get-login-password, gcloud auth print-access-token,
	// az acr login --expose-token), presented with the user name the
	// provider expects: "AWS" for ECR, "oauth2accesstoken" for GCR/GAR,
	// 00000000-0000-0000-0000-000000000000 for ACR. Username overrides it
	// and is required for other types. The token must be refreshed in the
	// configuration before it expires.
	AuthTokenExchange AuthType = "token-exchange"
)

// Auth holds a registry's credentials. Its String method never shows
// secrets.
type Auth struct {
	Type     AuthType `json:"type"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	Token    string   `json:"token,omitempty"`
}

// String describes the credentials without their secrets.
func (a Auth) String() string {
	if a.Username != "" {
		return fmt.Sprintf("%s auth as %q", a.Type, a.Username)
	}
	return fmt.Sprintf("%s auth", a.Type)
}

// GoString is String, so that %#v does not print secrets either.
func (a Auth) GoString() string { return a.String() }

// secrets returns the secret strings, to scrub them from error text.
func (a Auth) secrets() []string {
	var s []string
	for _, v := range []string{a.Password, a.Token} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// TagOrder is how the newest tags are chosen when MaxTags is set.
type TagOrder string

// Tag orders.
const (
	// OrderVersion sorts tags as versions: dot- and dash-separated
	// numeric parts compare as numbers (v1.10 > v1.9), others as text;
	// tags that do not start with a number rank below those that do.
	OrderVersion TagOrder = "version"
	// OrderCreated sorts by the image's creation time from its config
	// (one more request per tag, made only for tags that pass the globs).
	OrderCreated TagOrder = "created"
)

// TagFilter selects the tags to scan in each repository.
type TagFilter struct {
	// Include globs (path.Match syntax); empty means every tag.
	Include []string `json:"include,omitempty"`
	// Exclude globs, applied after Include.
	Exclude []string `json:"exclude,omitempty"`
	// MaxTags keeps only the newest MaxTags tags of each repository (0:
	// all).
	MaxTags int `json:"maxTags,omitempty"`
	// Order decides what "newest" means (OrderVersion when empty).
	Order TagOrder `json:"order,omitempty"`
}

// Registry is a registry watched by the console server.
type Registry struct {
	// Name identifies the registry in the console.
	Name string `json:"name"`
	// URL is the registry host, optionally with a scheme and port:
	// "ghcr.io", "https://registry.example.com:5000". Empty for Docker
	// Hub.
	URL  string `json:"url"`
	Type Type   `json:"type"`
	Auth Auth   `json:"auth"`
	// Insecure allows plain HTTP. It is accepted only for loopback hosts
	// (localhost, 127.0.0.0/8, ::1), for local test registries.
	Insecure bool `json:"insecure,omitempty"`
	// Repositories lists the repositories to scan instead of reading the
	// catalog. Required for Docker Hub and ECR, which have no catalog.
	Repositories []string `json:"repositories,omitempty"`
	// Include and Exclude are repository globs (path.Match syntax, "*"
	// does not cross "/"; "**" matches any number of path elements).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// Tags selects the tags of each repository.
	Tags TagFilter `json:"tags"`
	// Interval is the time between scheduled scans (0: push webhooks
	// only).
	Interval time.Duration `json:"interval,omitempty"`
	// RequestsPerSecond limits the requests sent to the registry (10
	// when 0).
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// Timeout bounds each request (30 s when 0).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// MinInterval is the shortest schedule allowed.
const MinInterval = time.Minute

// Host returns the registry host[:port] from URL, with the Docker Hub
// default.
func (r *Registry) Host() string {
	u := strings.TrimSpace(r.URL)
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	u = strings.TrimSuffix(u, "/")
	if u == "" && r.Type == TypeDockerHub {
		return "index.docker.io"
	}
	return u
}

// tokenUser returns the user name used with AuthTokenExchange.
func (r *Registry) tokenUser() string {
	if r.Auth.Username != "" {
		return r.Auth.Username
	}
	switch r.Type {
	case TypeECR:
		return "AWS"
	case TypeGCR:
		return "oauth2accesstoken"
	case TypeACR:
		return "00000000-0000-0000-0000-000000000000"
	}
	return ""
}

// Validate checks the configuration and names the first problem.
func (r *Registry) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("registry %q: %s", r.Name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(r.Name) == "" {
		return errors.New("registry: empty name")
	}
	switch r.Type {
	case TypeGeneric, TypeDockerHub, TypeECR, TypeGCR, TypeACR, TypeQuay, TypeArtifactory, TypeHarbor:
	default:
		return bad("unknown type %q", r.Type)
	}
	host := r.Host()
	if host == "" {
		return bad("empty URL")
	}
	if strings.HasPrefix(strings.TrimSpace(r.URL), "http://") && !r.Insecure {
		return bad("URL %q uses plain http; set insecure (loopback only) or use https", r.URL)
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return bad("URL %q: want host[:port] with an optional http(s):// scheme", r.URL)
	}
	if r.Insecure && !isLoopbackHost(host) {
		return bad("insecure (plain HTTP) is only allowed for loopback hosts, not %q", host)
	}
	a := r.Auth
	switch a.Type {
	case AuthNone, "":
		if a.Username != "" || a.Password != "" || a.Token != "" {
			return bad("auth type none takes no username, password or token")
		}
	case AuthBasic:
		if a.Username == "" || a.Password == "" || a.Token != "" {
			return bad("basic auth needs a username and a password, and no token")
		}
	case AuthBearer, AuthIdentityToken:
		if a.Token == "" || a.Password != "" {
			return bad("%s auth needs a token and no password", a.Type)
		}
	case AuthTokenExchange:
		if a.Token == "" || a.Password != "" {
			return bad("token-exchange auth needs a token and no password")
		}
		if r.tokenUser() == "" {
			return bad("token-exchange auth needs a username for type %s", r.Type)
		}
	default:
		return bad("unknown auth type %q", a.Type)
	}
	if (r.Type == TypeDockerHub || r.Type == TypeECR) && len(r.Repositories) == 0 {
		return bad("type %s has no catalog API: list the repositories to scan", r.Type)
	}
	for _, g := range append(append(append([]string{}, r.Include...), r.Exclude...), append(r.Tags.Include, r.Tags.Exclude...)...) {
		if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil {
			return bad("bad glob %q: %v", g, err)
		}
	}
	for _, repo := range r.Repositories {
		if repo == "" || strings.ContainsAny(repo, ":@ ") {
			return bad("bad repository %q", repo)
		}
	}
	switch r.Tags.Order {
	case "", OrderVersion, OrderCreated:
	default:
		return bad("unknown tag order %q (want version or created)", r.Tags.Order)
	}
	if r.Tags.MaxTags < 0 {
		return bad("maxTags must not be negative")
	}
	if r.Interval != 0 && r.Interval < MinInterval {
		return bad("scan interval %v is shorter than %v", r.Interval, MinInterval)
	}
	if r.RequestsPerSecond < 0 || r.Timeout < 0 {
		return bad("requestsPerSecond and timeout must not be negative")
	}
	return nil
}

// isLoopbackHost reports whether host[:port] is a loopback host.
func isLoopbackHost(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// matchGlob matches a repository or tag against a glob where "**"
// matches any number of path elements and "*" stays within one.
func matchGlob(glob, s string) bool {
	if !strings.Contains(glob, "**") {
		ok, _ := path.Match(glob, s)
		return ok
	}
	i := strings.Index(glob, "**")
	prefix, rest := glob[:i], glob[i+2:]
	for k := 0; k <= len(s); k++ {
		if ok, _ := path.Match(prefix, s[:k]); !ok {
			continue
		}
		for j := k; j <= len(s); j++ {
			if matchGlob(rest, s[j:]) {
				return true
			}
		}
	}
	return false
}

// selected applies include and exclude globs to s.
func selected(s string, include, exclude []string) bool {
	if len(include) > 0 {
		ok := false
		for _, g := range include {
			if matchGlob(g, s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range exclude {
		if matchGlob(g, s) {
			return false
		}
	}
	return true
}
