package oidcauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/server/oidcauth/oidctest"
)

var alice = oidctest.User{
	Subject: "0f2c", PreferredUsername: "alice", Name: "Alice Liddell",
	Email: "alice@example.org", Groups: []string{"mamori-admins", "developers"},
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// app is a console stand-in: /login calls Begin, /callback calls Callback
// and answers the identity as JSON, or 401 with the error.
type app struct {
	srv *httptest.Server
	rp  *Provider
	idp *oidctest.Provider
}

func newApp(t *testing.T, secret string) *app {
	t.Helper()
	a := &app{}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) { a.rp.Begin(w, r) })
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		id, err := a.rp.Callback(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(id)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.idp = oidctest.Start(t, "mamori-console", secret, a.srv.URL+"/callback", alice)
	rp, err := New(context.Background(), Config{
		Issuer: a.idp.Issuer, ClientID: "mamori-console", ClientSecret: secret,
		RedirectURL: a.srv.URL + "/callback", CookieKey: testKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.rp = rp
	return a
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// TestFullFlow drives a browser through console, provider and back.
func TestFullFlow(t *testing.T) {
	for _, tt := range []struct{ name, secret string }{
		{"confidential client", "s3cret/with+chars"},
		{"public client", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, tt.secret)
			c := browser(t)
			resp, err := c.Get(a.srv.URL + "/login")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login flow ended with %s", resp.Status)
			}
			var id Identity
			if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
				t.Fatal(err)
			}
			want := Identity{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org",
				Groups: []string{"mamori-admins", "developers"}, Source: "oidc"}
			if id.Username != want.Username || id.DisplayName != want.DisplayName || id.Email != want.Email ||
				id.Source != want.Source || !slices.Equal(id.Groups, want.Groups) {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
			roles := MapGroups(id.Groups, RoleMapping{"MAMORI-ADMINS": {"admin"}, "developers": {"scanner"}})
			if !slices.Equal(roles, []string{"admin", "scanner"}) {
				t.Fatalf("roles = %v", roles)
			}
			u, _ := url.Parse(a.srv.URL + "/callback")
			if cs := c.Jar.Cookies(u); len(cs) != 0 {
				t.Fatalf("state cookie not deleted after callback: %v", cs)
			}
		})
	}
}

// flow is a login stopped before the callback reaches the console.
type flow struct {
	cookie   *http.Cookie
	callback *url.URL
	authURL  *url.URL
}

// start runs Begin and the provider's /authorize without following the
// redirect back to the console.
func start(t *testing.T, a *app) flow {
	t.Helper()
	rec := httptest.NewRecorder()
	a.rp.Begin(rec, httptest.NewRequest(http.MethodGet, a.srv.URL+"/login", nil))
	res := rec.Result()
	if res.StatusCode != http.StatusFound || len(res.Cookies()) != 1 {
		t.Fatalf("Begin: %s, cookies %v", res.Status, res.Cookies())
	}
	ck := res.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/callback" || ck.MaxAge <= 0 {
		t.Fatalf("state cookie attributes: %+v", ck)
	}
	authURL, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
		!strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization URL lacks PKCE, nonce, state or openid: %s", authURL)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	return flow{cookie: ck, callback: cb, authURL: authURL}
}

// finish calls Callback with the cookie and the callback URL.
func finish(a *app, cookie *http.Cookie, callback *url.URL) (*Identity, error) {
	req := httptest.NewRequest(http.MethodGet, callback.String(), nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return a.rp.Callback(httptest.NewRecorder(), req)
}

func withQuery(u *url.URL, key, value string) *url.URL {
	c := *u
	q := c.Query()
	q.Set(key, value)
	c.RawQuery = q.Encode()
	return &c
}

func TestCallbackRejects(t *testing.T) {
	a := newApp(t, "secret")
	tests := []struct {
		name string
		// run returns the callback result; tamper is set before it.
		tamper oidctest.Tamper
		run    func(t *testing.T, f flow) (*Identity, error)
		want   error
	}{
		{name: "wrong state", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, f.cookie, withQuery(f.callback, "state", "forged"))
		}},
		{name: "missing state", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, f.cookie, withQuery(f.callback, "state", ""))
		}},
		{name: "no cookie", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, nil, f.callback)
		}},
		{name: "cookie of another login", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			other := start(t, a)
			return finish(a, other.cookie, f.callback)
		}},
		{name: "tampered cookie", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			ck := *f.cookie
			b := []byte(ck.Value)
			b[len(b)/2] ^= 1
			ck.Value = string(b)
			return finish(a, &ck, f.callback)
		}},
		{name: "expired login", want: ErrInvalidState, run: func(t *testing.T, f flow) (*Identity, error) {
			a.rp.now = func() time.Time { return time.Now().Add(11 * time.Minute) }
			defer func() { a.rp.now = time.Now }()
			return finish(a, f.cookie, f.callback)
		}},
		{name: "replayed code", want: ErrExchange, run: func(t *testing.T, f flow) (*Identity, error) {
			if _, err := finish(a, f.cookie, f.callback); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return finish(a, f.cookie, f.callback)
		}},
		{name: "unknown code", want: ErrExchange, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, f.cookie, withQuery(f.callback, "code", "made-up"))
		}},
		{name: "missing code", want: ErrExchange, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, f.cookie, withQuery(f.callback, "code", ""))
		}},
		{name: "wrong verifier", want: ErrExchange, run: func(t *testing.T, f flow) (*Identity, error) {
			st, err := a.rp.sealer.open(f.cookie.Value, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			st.Verifier = "a-different-verifier-of-sufficient-length-0123456789"
			v, err := a.rp.sealer.seal(*st)
			if err != nil {
				t.Fatal(err)
			}
			return finish(a, &http.Cookie{Name: f.cookie.Name, Value: v}, f.callback)
		}},
		{name: "provider error", want: ErrProviderDenied, run: func(t *testing.T, f flow) (*Identity, error) {
			return finish(a, f.cookie, withQuery(f.callback, "error", "access_denied"))
		}},
		{name: "wrong audience", tamper: oidctest.Tamper{Audience: "other-client"}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
		{name: "wrong issuer", tamper: oidctest.Tamper{Issuer: "https://evil.example"}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
		{name: "expired token", tamper: oidctest.Tamper{Lifetime: -time.Minute}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
		{name: "bad signature", tamper: oidctest.Tamper{SignWithOtherKey: true}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
		{name: "missing nonce", tamper: oidctest.Tamper{OmitNonce: true}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
		{name: "wrong nonce", tamper: oidctest.Tamper{Nonce: "replayed"}, want: ErrInvalidToken,
			run: func(t *testing.T, f flow) (*Identity, error) { return finish(a, f.cookie, f.callback) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, a)
			a.idp.SetTamper(tt.tamper)
			defer a.idp.SetTamper(oidctest.Tamper{})
			id, err := tt.run(t, f)
			t.Logf("Callback error: %v", err)
			if !errors.Is(err, tt.want) || id != nil {
				t.Fatalf("Callback = %+v, %v; want error %v", id, err, tt.want)
			}
		})
	}
}

func TestWrongClientSecret(t *testing.T) {
	a := newApp(t, "secret")
	rp, err := New(context.Background(), Config{
		Issuer: a.idp.Issuer, ClientID: "mamori-console", ClientSecret: "wrong",
		RedirectURL: a.srv.URL + "/callback", CookieKey: testKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.rp = rp
	f := start(t, a)
	if _, err := finish(a, f.cookie, f.callback); !errors.Is(err, ErrExchange) {
		t.Fatalf("Callback error = %v, want ErrExchange", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	idp := oidctest.Start(t, "c", "", "http://127.0.0.1/cb", alice)
	ok := Config{Issuer: idp.Issuer, ClientID: "c", RedirectURL: "http://127.0.0.1/cb", CookieKey: testKey}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"bad issuer", func(c *Config) { c.Issuer = "ftp://x" }, "issuer"},
		{"no client", func(c *Config) { c.ClientID = "" }, "client ID"},
		{"relative redirect", func(c *Config) { c.RedirectURL = "/cb" }, "redirect URL"},
		{"short key", func(c *Config) { c.CookieKey = []byte("short") }, "cookie key"},
		{"issuer mismatch", func(c *Config) { c.Issuer = idp.Issuer + "/" }, "discovery"},
		{"no provider", func(c *Config) { c.Issuer = "http://127.0.0.1:1" }, "discovery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.modify(&cfg)
			_, err := New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := New(context.Background(), ok); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
}

func TestIdentityClaims(t *testing.T) {
	p := &Provider{cfg: Config{Name: "kc", UsernameClaim: "preferred_username", GroupsClaim: "realm_access.roles"}}
	tests := []struct {
		name    string
		claims  string
		want    Identity
		wantErr bool
	}{
		{"nested roles", `{"sub":"1","preferred_username":"bob","realm_access":{"roles":["a","b"]}}`,
			Identity{Username: "bob", Groups: []string{"a", "b"}, Source: "kc"}, false},
		{"dotted top-level name wins", `{"sub":"1","realm_access.roles":"x","realm_access":{"roles":["a"]}}`,
			Identity{Username: "1", Groups: []string{"x"}, Source: "kc"}, false},
		{"email fallback", `{"sub":"1","email":"e@x","email_verified":true}`,
			Identity{Username: "e@x", Email: "e@x", Source: "kc"}, false},
		{"unverified email dropped", `{"sub":"1","email":"e@x","email_verified":false}`,
			Identity{Username: "1", Source: "kc"}, false},
		{"no user", `{"name":"x"}`, Identity{}, true},
		{"groups not strings", `{"sub":"1","realm_access":{"roles":[1]}}`, Identity{}, true},
		{"groups object", `{"sub":"1","realm_access":{"roles":{}}}`, Identity{}, true},
		{"path through string", `{"sub":"1","realm_access":"x"}`, Identity{Username: "1", Source: "kc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tt.claims), &claims); err != nil {
				t.Fatal(err)
			}
			got, err := p.identity(claims)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("identity(%s) = %+v, want error", tt.claims, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != tt.want.Username || got.Email != tt.want.Email || got.Source != tt.want.Source ||
				!slices.Equal(got.Groups, tt.want.Groups) {
				t.Fatalf("identity(%s) = %+v, want %+v", tt.claims, got, tt.want)
			}
		})
	}
}

func TestMapGroups(t *testing.T) {
	m := RoleMapping{"Admins": {"admin"}, "/mamori/devs": {"scanner", "viewer"}, "b8f1-guid": {"viewer"}}
	tests := []struct {
		groups, want []string
	}{
		{nil, nil},
		{[]string{"guests"}, nil},
		{[]string{"admins"}, []string{"admin"}},
		{[]string{"/MAMORI/DEVS", "B8F1-GUID"}, []string{"scanner", "viewer"}},
		{[]string{"admin"}, nil},
	}
	for _, tt := range tests {
		if got := MapGroups(tt.groups, m); !slices.Equal(got, tt.want) {
			t.Errorf("MapGroups(%q) = %q, want %q", tt.groups, got, tt.want)
		}
	}
}
