package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

const testHost = "console.example"

// handler returns the auth routes plus two test endpoints, wrapped the way
// the server wraps its API: Authenticate(RequireCSRF(mux)).
func (e *testEnv) handler() http.Handler {
	mux := http.NewServeMux()
	e.svc.Mount(mux)
	whoami := func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			w.Write([]byte("anonymous"))
			return
		}
		w.Write([]byte(string(p.Method) + ":" + p.Username + ":" + strings.Join(p.Groups, ",") + ":" + strings.Join(p.Scopes, ",")))
	}
	mux.HandleFunc("POST /api/v1/things", whoami)
	mux.HandleFunc("GET /api/v1/things", whoami)
	return e.svc.Authenticate(e.svc.RequireCSRF(mux))
}

type reqOpt func(*http.Request)

func header(k, v string) reqOpt        { return func(r *http.Request) { r.Header.Set(k, v) } }
func withCookie(c *http.Cookie) reqOpt { return func(r *http.Request) { r.AddCookie(c) } }
func bearer(tok string) reqOpt         { return header("Authorization", "Bearer "+tok) }

func serve(h http.Handler, method, path, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Host = testHost
	r.RemoteAddr = "192.0.2.1:40000"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("response %d %q is not a JSON error: %v", w.Code, w.Body, err)
	}
	return b.Error.Code
}

func sessionCookieOf(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login logs alice in and returns her session cookie and CSRF token.
func (e *testEnv) login(t *testing.T, h http.Handler, opts ...reqOpt) (*http.Cookie, string) {
	t.Helper()
	w := serve(h, "POST", LoginPath, `{"username":"alice","password":"`+alicePassword+`"}`, opts...)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var resp SessionResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	c := sessionCookieOf(t, w, e.svc.CookieName())
	if c == nil || resp.CSRFToken == "" {
		t.Fatalf("login response without cookie or CSRF token: %v %s", w.Result().Cookies(), w.Body)
	}
	return c, resp.CSRFToken
}

func TestLoginHandler(t *testing.T) {
	for _, tc := range []struct {
		name, body  string
		opts        []reqOpt
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{name: "no content type", body: `{"username":"alice","password":"x"}`, opts: []reqOpt{header("Content-Type", "text/plain")}, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "form post", body: "username=alice", opts: []reqOpt{header("Content-Type", "application/x-www-form-urlencoded")}, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "not json", body: `{"username":`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "unknown field", body: `{"username":"alice","password":"x","admin":true}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "missing password", body: `{"username":"alice"}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "huge body", body: `{"username":"` + strings.Repeat("a", 10000) + `","password":"x"}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "long username", body: `{"username":"` + strings.Repeat("a", 300) + `","password":"x"}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "wrong password", body: `{"username":"alice","password":"wrong-password"}`, wantStatus: 401, wantCode: "invalid_credentials", wantMessage: "invalid username or password"},
		{name: "unknown user", body: `{"username":"zed","password":"wrong-password"}`, wantStatus: 401, wantCode: "invalid_credentials", wantMessage: "invalid username or password"},
		{name: "cross-site", body: `{"username":"alice","password":"` + alicePassword + `"}`, opts: []reqOpt{header("Origin", "https://evil.example")}, wantStatus: 403, wantCode: "csrf_failed"},
		{name: "ok", body: `{"username":"alice","password":"` + alicePassword + `"}`, opts: []reqOpt{header("Origin", "https://"+testHost), header("Sec-Fetch-Site", "same-origin")}, wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			w := serve(e.handler(), "POST", LoginPath, tc.body, tc.opts...)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.wantStatus)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if tc.wantStatus != 200 {
				if code := errorCode(t, w); code != tc.wantCode {
					t.Errorf("code %q, want %q", code, tc.wantCode)
				}
				if tc.wantMessage != "" && !strings.Contains(w.Body.String(), tc.wantMessage) {
					t.Errorf("body %s lacks %q", w.Body, tc.wantMessage)
				}
				if len(w.Result().Cookies()) != 0 {
					t.Errorf("failed login set cookies %v", w.Result().Cookies())
				}
				return
			}
			var resp SessionResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.User.ID != "u1" || resp.User.Username != "alice" || !slices.Equal(resp.User.Groups, []string{"admins"}) ||
				resp.AuthMethod != MethodSession || resp.CSRFToken == "" || resp.ExpiresAt == nil ||
				!resp.ExpiresAt.Equal(e.clock.Now().Add(8*time.Hour)) {
				t.Errorf("login response %s", w.Body)
			}
			c := sessionCookieOf(t, w, "__Host-mamori_session")
			if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 8*3600 {
				t.Errorf("session cookie %+v lacks HttpOnly, Secure, SameSite=Strict, Path=/ or Max-Age", c)
			}
			if csrfToken(c.Value) != resp.CSRFToken {
				t.Error("CSRF token not bound to the session")
			}
		})
	}
}

func TestLoginHandlerMethod(t *testing.T) {
	e := newTestEnv(t, nil)
	w := serve(http.HandlerFunc(e.svc.HandleLogin), "GET", LoginPath, "")
	if w.Code != http.StatusMethodNotAllowed || errorCode(t, w) != "method_not_allowed" {
		t.Errorf("GET login: %d %s", w.Code, w.Body)
	}
}

func TestLoginHandlerThrottled(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.LoginBurst = 2; c.LoginRate = 0.5 })
	h := e.handler()
	bad := `{"username":"alice","password":"wrong-password"}`
	serve(h, "POST", LoginPath, bad)
	serve(h, "POST", LoginPath, bad)
	w := serve(h, "POST", LoginPath, bad)
	if w.Code != http.StatusTooManyRequests || errorCode(t, w) != "rate_limited" || w.Header().Get("Retry-After") != "2" {
		t.Errorf("third attempt: %d %s Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	e.clock.Advance(10 * time.Second)
	serve(h, "POST", LoginPath, bad) // third failure locks alice
	e.clock.Advance(10 * time.Second)
	w = serve(h, "POST", LoginPath, `{"username":"alice","password":"`+alicePassword+`"}`)
	if w.Code != http.StatusTooManyRequests || errorCode(t, w) != "too_many_attempts" || w.Header().Get("Retry-After") != "590" {
		t.Errorf("locked account: %d %s Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
}

func TestLoginRotatesSession(t *testing.T) {
	e := newTestEnv(t, nil)
	h := e.handler()
	first, csrf1 := e.login(t, h)
	second, csrf2 := e.login(t, h, withCookie(first))
	if first.Value == second.Value || csrf1 == csrf2 {
		t.Fatal("login with an existing session kept the session ID")
	}
	if w := serve(h, "GET", SessionPath, "", withCookie(first)); w.Code != http.StatusUnauthorized {
		t.Errorf("old session still valid after re-login: %d", w.Code)
	}
	if n := len(e.store.SessionHashes()); n != 1 {
		t.Errorf("%d sessions stored, want 1", n)
	}
	// A session ID planted by an attacker is never adopted.
	planted := &http.Cookie{Name: e.svc.CookieName(), Value: newSessionID()}
	got, _ := e.login(t, h, withCookie(planted))
	if got.Value == planted.Value {
		t.Error("login adopted a planted session ID")
	}
}

func TestSessionHandler(t *testing.T) {
	e := newTestEnv(t, nil)
	h := e.handler()
	if w := serve(h, "GET", SessionPath, ""); w.Code != http.StatusUnauthorized || errorCode(t, w) != "unauthenticated" {
		t.Errorf("anonymous: %d %s", w.Code, w.Body)
	}
	c, csrf := e.login(t, h)
	w := serve(h, "GET", SessionPath, "", withCookie(c))
	var resp SessionResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 {
		t.Fatalf("session: %d %s", w.Code, w.Body)
	}
	if resp.CSRFToken != csrf || resp.User.Username != "alice" || resp.AuthMethod != MethodSession || resp.ExpiresAt != nil {
		t.Errorf("session response %s", w.Body)
	}
	tok, _, err := e.svc.IssueToken(context.Background(), "u1", "ci", []string{"scan:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w = serve(h, "GET", SessionPath, "", bearer(tok))
	resp = SessionResponse{}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 {
		t.Fatalf("token session: %d %s", w.Code, w.Body)
	}
	if resp.CSRFToken != "" || resp.AuthMethod != MethodToken || !slices.Equal(resp.Scopes, []string{"scan:read"}) {
		t.Errorf("token session response %s", w.Body)
	}
}

func TestLogout(t *testing.T) {
	e := newTestEnv(t, nil)
	h := e.handler()
	c, csrf := e.login(t, h)
	if w := serve(h, "POST", LogoutPath, "", withCookie(c)); w.Code != http.StatusForbidden || errorCode(t, w) != "csrf_failed" {
		t.Errorf("logout without CSRF token: %d %s", w.Code, w.Body)
	}
	w := serve(h, "POST", LogoutPath, "", withCookie(c), header(CSRFHeader, csrf))
	if w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if cleared := sessionCookieOf(t, w, e.svc.CookieName()); cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Errorf("logout did not clear the cookie: %+v", cleared)
	}
	if n := len(e.store.SessionHashes()); n != 0 {
		t.Errorf("%d sessions left after logout", n)
	}
	// Replaying the old cookie does not work: logout is server-side.
	if w := serve(h, "GET", SessionPath, "", withCookie(c)); w.Code != http.StatusUnauthorized {
		t.Errorf("session after logout: %d", w.Code)
	}
	if w := serve(h, "POST", LogoutPath, ""); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous logout: %d", w.Code)
	}
	if got := e.actions(); !slices.Equal(got, []string{"auth.login:", "auth.logout:"}) {
		t.Errorf("audit = %v", got)
	}
}

func TestCSRF(t *testing.T) {
	e := newTestEnv(t, nil)
	h := e.handler()
	c, csrf := e.login(t, h)
	_, otherCSRF := e.login(t, h)
	tok, _, err := e.svc.IssueToken(context.Background(), "u1", "ci", []string{"scan:write"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sess := withCookie(c)
	good := header(CSRFHeader, csrf)
	for _, tc := range []struct {
		name   string
		method string
		opts   []reqOpt
		want   string // response body, or the error code
	}{
		{"session without token", "POST", []reqOpt{sess}, "csrf_failed"},
		{"session with wrong token", "POST", []reqOpt{sess, header(CSRFHeader, "x"+csrf[1:])}, "csrf_failed"},
		{"session with other session's token", "POST", []reqOpt{sess, header(CSRFHeader, otherCSRF)}, "csrf_failed"},
		{"session with token", "POST", []reqOpt{sess, good}, "session:alice:admins:"},
		{"PUT without token", "PUT", []reqOpt{sess}, "csrf_failed"},
		{"DELETE without token", "DELETE", []reqOpt{sess}, "csrf_failed"},
		{"PATCH without token", "PATCH", []reqOpt{sess}, "csrf_failed"},
		{"GET without token", "GET", []reqOpt{sess}, "session:alice:admins:"},
		{"same origin", "POST", []reqOpt{sess, good, header("Origin", "https://"+testHost), header("Sec-Fetch-Site", "same-origin")}, "session:alice:admins:"},
		{"cross origin", "POST", []reqOpt{sess, good, header("Origin", "https://evil.example")}, "csrf_failed"},
		{"origin other port", "POST", []reqOpt{sess, good, header("Origin", "https://"+testHost+":8443")}, "csrf_failed"},
		{"null origin", "POST", []reqOpt{sess, good, header("Origin", "null")}, "csrf_failed"},
		{"cross-site fetch", "POST", []reqOpt{sess, good, header("Sec-Fetch-Site", "cross-site")}, "csrf_failed"},
		{"same-site fetch", "POST", []reqOpt{sess, good, header("Sec-Fetch-Site", "same-site")}, "csrf_failed"},
		{"bearer exempt", "POST", []reqOpt{bearer(tok), header("Origin", "https://evil.example")}, "token:alice:admins:scan:write"},
		{"bearer wins over cookie", "POST", []reqOpt{sess, bearer(tok)}, "token:alice:admins:scan:write"},
		{"anonymous", "POST", nil, "anonymous"},
		{"anonymous cross-site", "POST", []reqOpt{header("Sec-Fetch-Site", "cross-site")}, "csrf_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.method, "/api/v1/things", "", tc.opts...)
			got := w.Body.String()
			if w.Code != http.StatusOK {
				if w.Code != http.StatusForbidden {
					t.Fatalf("status %d %s", w.Code, got)
				}
				got = errorCode(t, w)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCSRFAllowedOrigins(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://Console.Example.com"} })
	h := e.handler()
	c, csrf := e.login(t, h)
	for origin, want := range map[string]int{
		"https://console.example.com":      200,
		"http://console.example.com":       403,
		"https://" + testHost:              403, // Host match is not enough with an explicit list
		"https://console.example.com/path": 403,
	} {
		w := serve(h, "POST", "/api/v1/things", "", withCookie(c), header(CSRFHeader, csrf), header("Origin", origin))
		if w.Code != want {
			t.Errorf("Origin %s: %d, want %d", origin, w.Code, want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	e := newTestEnv(t, nil)
	h := e.handler()
	ctx := context.Background()
	c, _ := e.login(t, h)
	tok, _, _ := e.svc.IssueToken(ctx, "u1", "ci", []string{"a", "b"}, time.Hour)
	short, _, _ := e.svc.IssueToken(ctx, "u1", "short", nil, time.Minute)
	bobTok, _, _ := e.svc.IssueToken(ctx, "u2", "bob", nil, time.Hour)
	e.clock.Advance(2 * time.Minute)
	for _, tc := range []struct {
		name        string
		opts        []reqOpt
		wantStatus  int
		want        string // body or error code
		wantCleared bool
	}{
		{"nothing", nil, 200, "anonymous", false},
		{"session", []reqOpt{withCookie(c)}, 200, "session:alice:admins:", false},
		{"token", []reqOpt{bearer(tok)}, 200, "token:alice:admins:a,b", false},
		{"lowercase scheme", []reqOpt{header("Authorization", "bearer "+tok)}, 200, "token:alice:admins:a,b", false},
		{"basic auth", []reqOpt{header("Authorization", "Basic YWxpY2U6eA==")}, 401, "invalid_token", false},
		{"malformed token", []reqOpt{bearer("mamori_nope")}, 401, "invalid_token", false},
		{"expired token", []reqOpt{bearer(short)}, 401, "invalid_token", false},
		{"disabled owner", []reqOpt{bearer(bobTok)}, 401, "invalid_token", false},
		{"garbage cookie", []reqOpt{withCookie(&http.Cookie{Name: c.Name, Value: "garbage"})}, 200, "anonymous", true},
		{"unknown session", []reqOpt{withCookie(&http.Cookie{Name: c.Name, Value: newSessionID()})}, 200, "anonymous", true},
		{"other cookie name", []reqOpt{withCookie(&http.Cookie{Name: "mamori_session", Value: c.Value})}, 200, "anonymous", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, "GET", "/api/v1/things", "", tc.opts...)
			got := w.Body.String()
			if w.Code != 200 {
				got = errorCode(t, w)
			}
			if w.Code != tc.wantStatus || got != tc.want {
				t.Fatalf("%d %q, want %d %q", w.Code, got, tc.wantStatus, tc.want)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			cleared := sessionCookieOf(t, w, c.Name)
			if (cleared != nil && cleared.MaxAge < 0) != tc.wantCleared {
				t.Errorf("cookie cleared = %v, want %v", cleared != nil, tc.wantCleared)
			}
		})
	}

	// Group changes apply to live sessions; disabling the user ends them.
	u, _ := e.store.UserByID(ctx, "u1")
	u.Groups = []string{"viewers"}
	e.store.AddUser(*u)
	if w := serve(h, "GET", "/api/v1/things", "", withCookie(c)); w.Body.String() != "session:alice:viewers:" {
		t.Errorf("after group change: %q", w.Body)
	}
	u.Disabled = true
	e.store.AddUser(*u)
	if w := serve(h, "GET", "/api/v1/things", "", withCookie(c)); w.Body.String() != "anonymous" {
		t.Errorf("disabled user still authenticated: %q", w.Body)
	}
	if n := len(e.store.SessionHashes()); n != 0 {
		t.Errorf("session of disabled user kept (%d sessions)", n)
	}
}

func TestDirectorySession(t *testing.T) {
	dir := &fakeAuthenticator{users: map[string]string{"dave": "dave-directory-pw"}}
	e := newTestEnv(t, func(c *Config) { c.Authenticators = []Authenticator{dir} })
	h := e.handler()
	w := serve(h, "POST", LoginPath, `{"username":"dave","password":"dave-directory-pw"}`)
	c := sessionCookieOf(t, w, e.svc.CookieName())
	if w.Code != 200 || c == nil {
		t.Fatalf("directory login: %d %s", w.Code, w.Body)
	}
	if w := serve(h, "GET", "/api/v1/things", "", withCookie(c)); w.Body.String() != "session:dave:devs:" {
		t.Errorf("directory session principal %q", w.Body)
	}
}

func TestInsecureCookie(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.InsecureCookie = true })
	h := e.handler()
	c, csrf := e.login(t, h)
	if c.Name != "mamori_session" || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("dev cookie %+v", c)
	}
	if w := serve(h, "POST", "/api/v1/things", "", withCookie(c), header(CSRFHeader, csrf)); w.Body.String() != "session:alice:admins:" {
		t.Errorf("dev session: %q", w.Body)
	}
}

func TestPrincipalFrom(t *testing.T) {
	if _, ok := PrincipalFrom(context.Background()); ok {
		t.Error("principal in empty context")
	}
	if _, ok := PrincipalFrom(WithPrincipal(context.Background(), nil)); ok {
		t.Error("nil principal reported as present")
	}
	p := &Principal{UserID: "u1"}
	if got, ok := PrincipalFrom(WithPrincipal(context.Background(), p)); !ok || got != p {
		t.Error("principal not returned")
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://console.example.com", "http://a:8080", "null", "https://x/path", "https://u@x", "javascript:alert(1)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseOrigin(s)
		if !ok {
			return
		}
		if again, ok := parseOrigin(o); !ok || again != o {
			t.Fatalf("parseOrigin(%q) = %q, not a fixed point (%q, %v)", s, o, again, ok)
		}
	})
}
