// Package oidctest is a minimal but real OpenID Connect provider for tests:
// discovery document, JWKS with an RSA key generated at start, an
// /authorize endpoint that approves one configured user without a login
// page, and a /token endpoint that checks the single-use code, the client
// credentials, the redirect URI and the PKCE S256 code verifier before it
// returns an RS256-signed ID token.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is the user the provider signs in.
type User struct {
	Subject           string
	PreferredUsername string
	Name              string
	Email             string
	Groups            []string
}

// Tamper lets a test make the provider misbehave.
type Tamper struct {
	// Audience replaces the client ID in the aud claim.
	Audience string
	// Issuer replaces the issuer in the iss claim.
	Issuer string
	// Lifetime of the ID token; negative issues an expired token.
	Lifetime time.Duration
	// SignWithOtherKey signs the ID token with a key not in the JWKS (same
	// key ID).
	SignWithOtherKey bool
	// OmitNonce leaves out the nonce claim; Nonce replaces it.
	OmitNonce bool
	Nonce     string
}

// Provider is a running test provider.
type Provider struct {
	// Issuer is the issuer URL (the httptest server URL).
	Issuer       string
	ClientID     string
	ClientSecret string // empty: public client, PKCE only
	RedirectURL  string

	srv      *httptest.Server
	key      *rsa.PrivateKey
	otherKey *rsa.PrivateKey
	kid      string

	mu     sync.Mutex
	user   User
	tamper Tamper
	codes  map[string]grant
}

type grant struct {
	redirectURI string
	challenge   string
	nonce       string
	expires     time.Time
}

// Start starts a provider for the client and registers its shutdown with
// t.Cleanup.
func Start(t testing.TB, clientID, clientSecret, redirectURL string, user User) *Provider {
	t.Helper()
	p := &Provider{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
		user: user, codes: map[string]grant{}, kid: randomString(8),
	}
	var err error
	if p.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if p.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.Issuer = p.srv.URL
	return p
}

// SetTamper replaces the misbehaviour for the following requests.
func (p *Provider) SetTamper(tm Tamper) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = tm
}

// SetUser replaces the user signed in by the following requests.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := p.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": p.kid,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// authorize approves the request at once and redirects back with a code.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != p.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case q.Get("redirect_uri") != p.RedirectURL:
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(p.RedirectURL)
	deny := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}}
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		deny("unsupported_response_type", "only code is supported")
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		deny("invalid_scope", "openid scope missing")
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		deny("invalid_request", "PKCE with S256 is required")
		return
	}
	code := randomString(32)
	p.mu.Lock()
	p.codes[code] = grant{redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), expires: time.Now().Add(time.Minute)}
	p.mu.Unlock()
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token redeems a code once, after checking client, redirect URI and PKCE.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	code := r.PostForm.Get("code")
	p.mu.Lock()
	g, ok := p.codes[code]
	delete(p.codes, code) // single use, even when the rest fails
	user, tm := p.user, p.tamper
	p.mu.Unlock()
	switch {
	case !ok || time.Now().After(g.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case r.PostForm.Get("redirect_uri") != g.redirectURI:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(b64(sum[:])), []byte(g.challenge)) != 1 {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}
	idToken, err := p.idToken(user, tm, g.nonce)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": randomString(32), "token_type": "Bearer", "expires_in": 300, "id_token": idToken,
	})
}

func (p *Provider) idToken(u User, tm Tamper, nonce string) (string, error) {
	now := time.Now()
	life := 5 * time.Minute
	if tm.Lifetime != 0 {
		life = tm.Lifetime
	}
	claims := map[string]any{
		"iss": p.Issuer, "sub": u.Subject, "aud": p.ClientID,
		"iat": now.Unix(), "exp": now.Add(life).Unix(), "nonce": nonce,
		"preferred_username": u.PreferredUsername, "name": u.Name, "email": u.Email,
		"email_verified": true, "groups": u.Groups,
	}
	if tm.Audience != "" {
		claims["aud"] = tm.Audience
	}
	if tm.Issuer != "" {
		claims["iss"] = tm.Issuer
	}
	if tm.Nonce != "" {
		claims["nonce"] = tm.Nonce
	}
	if tm.OmitNonce {
		delete(claims, "nonce")
	}
	key := p.key
	if tm.SignWithOtherKey {
		key = p.otherKey
	}
	return SignRS256(key, p.kid, claims)
}

// SignRS256 returns a compact JWS of claims signed with key (RS256).
func SignRS256(key *rsa.PrivateKey, kid string, claims any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + b64(sig), nil
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64(b)
}
