// Package oidcauth signs console users in with an OpenID Connect provider
// (Keycloak, Microsoft Entra ID, Okta, Dex, ...) using the authorization
// code flow with PKCE (S256).
//
// Begin keeps the state parameter, the ID token nonce and the PKCE verifier
// in a short-lived cookie encrypted and authenticated with AES-256-GCM under
// a server secret, rather than in a server-side store: the login then needs
// no shared storage between server replicas and leaves nothing to clean up
// when a user abandons it, the browser that started a login is the only one
// that can finish it (the cookie is HttpOnly, SameSite=Lax and scoped to the
// callback path), and the verifier stays secret from the browser and from
// anything that logs cookies. Callback deletes the cookie, so a state is
// used at most once; the provider makes the code itself single-use.
//
// Every error Callback returns matches one of ErrInvalidState,
// ErrProviderDenied, ErrExchange or ErrInvalidToken with errors.Is. The
// Error text is detail for the server log, not for the client.
package oidcauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Identity is a user signed in by the provider.
type Identity struct {
	Username    string
	DisplayName string
	// Email is empty when the provider says the address is not verified.
	Email string
	// Groups are the values of the groups claim.
	Groups []string
	// Source names the identity provider (Config.Name).
	Source string
}

// Errors matched by the errors Callback returns.
var (
	// ErrInvalidState: no login in progress in this browser, the login
	// expired, or the state parameter does not match (possible CSRF).
	ErrInvalidState = errors.New("invalid login state")
	// ErrProviderDenied: the provider redirected back with an error, e.g.
	// the user refused consent.
	ErrProviderDenied = errors.New("identity provider refused the login")
	// ErrExchange: the code could not be exchanged for tokens (code used
	// twice, wrong verifier, client authentication failed, provider down).
	ErrExchange = errors.New("code exchange failed")
	// ErrInvalidToken: the ID token is missing or fails verification
	// (signature, issuer, audience, expiry, nonce) or names no user.
	ErrInvalidToken = errors.New("invalid ID token")
)

// maxGroups bounds the groups taken from a token.
const maxGroups = 1000

// Config describes the provider and this console as its client.
type Config struct {
	// Name is the identity source recorded in Identity.Source (default "oidc").
	Name string
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID is the console's client ID at the provider.
	ClientID string
	// ClientSecret authenticates a confidential client; empty means a public
	// client, protected by PKCE alone.
	ClientSecret string
	// RedirectURL is the console's callback URL registered at the provider.
	RedirectURL string
	// Scopes are requested besides "openid" (default "profile", "email").
	// Some providers need "groups" to send the groups claim.
	Scopes []string
	// UsernameClaim names the claim used as the user name (default
	// "preferred_username"); without it the email, then the subject is used.
	UsernameClaim string
	// GroupsClaim names the claim holding the user's groups (default
	// "groups"). A name absent from the token is tried as a dotted path into
	// nested claims, e.g. "realm_access.roles" for Keycloak realm roles.
	GroupsClaim string
	// CookieKey is a secret of at least 32 bytes that protects the login
	// state cookie. Generate it on first run and keep it across restarts of
	// every replica.
	CookieKey []byte
	// CookieName is the name of the state cookie (default "mamori_oidc").
	CookieName string
	// LoginTimeout is how long a user has to finish the login at the
	// provider (default 10 minutes).
	LoginTimeout time.Duration
	// HTTPClient talks to the provider (custom CA, proxy, timeout). Nil uses
	// a client with a 30s timeout.
	HTTPClient *http.Client
}

// Provider runs logins against one OpenID Connect provider.
type Provider struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	sealer   *sealer
	client   *http.Client
	secure   bool
	path     string
	now      func() time.Time
}

// New checks the configuration and reads the provider's discovery document.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = "oidc"
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "mamori_oidc"
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 10 * time.Minute
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("oidc config: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oidc config: client ID is empty")
	}
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil || (redirect.Scheme != "https" && redirect.Scheme != "http") || redirect.Host == "" {
		return nil, fmt.Errorf("oidc config: redirect URL %q is not an absolute http(s) URL", cfg.RedirectURL)
	}
	s, err := newSealer(cfg.CookieKey, cfg.CookieName)
	if err != nil {
		return nil, err
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery for issuer %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		PKCEMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc discovery for issuer %s: %w", cfg.Issuer, err)
	}
	if meta.PKCEMethods != nil && !slices.Contains(meta.PKCEMethods, "S256") {
		return nil, fmt.Errorf("oidc provider %s does not support PKCE S256 (supports %v)", cfg.Issuer, meta.PKCEMethods)
	}
	endpoint := provider.Endpoint()
	if cfg.ClientSecret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	scopes := append([]string{oidc.ScopeOpenID}, slices.DeleteFunc(slices.Clone(cfg.Scopes),
		func(s string) bool { return s == oidc.ScopeOpenID })...)
	p := &Provider{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Endpoint: endpoint, RedirectURL: cfg.RedirectURL, Scopes: scopes},
		sealer: s,
		client: client,
		secure: redirect.Scheme == "https",
		path:   redirect.EscapedPath(),
		now:    time.Now,
	}
	if p.path == "" {
		p.path = "/"
	}
	p.verifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: func() time.Time { return p.now() }})
	return p, nil
}

// Begin starts a login: it remembers a fresh state, nonce and PKCE verifier
// in the state cookie and redirects the browser to the provider.
func (p *Provider) Begin(w http.ResponseWriter, r *http.Request) {
	st := flowState{
		State:    randomString(),
		Nonce:    randomString(),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  p.now().Add(p.cfg.LoginTimeout).Unix(),
	}
	value, err := p.sealer.seal(st)
	if err != nil {
		http.Error(w, "cannot start login", http.StatusInternalServerError)
		return
	}
	p.setCookie(w, value, int(p.cfg.LoginTimeout/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

func (p *Provider) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: p.cfg.CookieName, Value: value, Path: p.path, MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}

// Callback finishes a login at the redirect URL: it checks the state,
// exchanges the code with the PKCE verifier, verifies the ID token
// (signature against the provider's JWKS, issuer, audience, expiry, nonce)
// and returns the user. It always deletes the state cookie. The caller
// creates the session and redirects; on error it should answer 401 (502 for
// ErrExchange caused by an unreachable provider is also reasonable) without
// the error text.
func (p *Provider) Callback(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	p.setCookie(w, "", -1)
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if d := q.Get("error_description"); d != "" {
			e += ": " + d
		}
		return nil, fmt.Errorf("%w: %s", ErrProviderDenied, truncate(e))
	}
	c, err := r.Cookie(p.cfg.CookieName)
	if err != nil {
		return nil, fmt.Errorf("%w: no login in progress (cookie %s missing)", ErrInvalidState, p.cfg.CookieName)
	}
	st, err := p.sealer.open(c.Value, p.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		return nil, fmt.Errorf("%w: state parameter does not match the login started in this browser", ErrInvalidState)
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: callback has no code", ErrExchange)
	}
	ctx := oidc.ClientContext(r.Context(), p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExchange, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrInvalidToken)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if idt.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return nil, fmt.Errorf("%w: nonce missing or not the one sent (replayed token?)", ErrInvalidToken)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	id, err := p.identity(claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return id, nil
}

// identity extracts the user from verified ID token claims.
func (p *Provider) identity(claims map[string]any) (*Identity, error) {
	str := func(name string) string { s, _ := claims[name].(string); return s }
	id := &Identity{DisplayName: str("name"), Email: str("email"), Source: p.cfg.Name}
	if v, ok := claims["email_verified"].(bool); ok && !v {
		id.Email = ""
	}
	id.Username = str(p.cfg.UsernameClaim)
	if id.Username == "" {
		id.Username = id.Email
	}
	if id.Username == "" {
		id.Username = str("sub")
	}
	if id.Username == "" {
		return nil, fmt.Errorf("token has no %s, email or sub claim", p.cfg.UsernameClaim)
	}
	groups, err := claimStrings(claims, p.cfg.GroupsClaim)
	if err != nil {
		return nil, err
	}
	id.Groups = groups
	return id, nil
}

// claimStrings reads a claim holding a string or a list of strings. A name
// that is not a top-level claim is tried as a dotted path into nested
// objects. An absent claim gives no values.
func claimStrings(claims map[string]any, name string) ([]string, error) {
	v, ok := claims[name]
	if !ok {
		var cur any = claims
		for part := range strings.SplitSeq(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil, nil
			}
			if cur, ok = m[part]; !ok {
				return nil, nil
			}
		}
		v = cur
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		if len(v) > maxGroups {
			return nil, fmt.Errorf("claim %s has %d values, more than %d", name, len(v), maxGroups)
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("claim %s holds a %T, want strings", name, e)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("claim %s is a %T, want a string or a list of strings", name, v)
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
