package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/api/apitest"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/ldapauth"
	"github.com/mamorisec/mamori/internal/server/ldapauth/slapdtest"
	"github.com/mamorisec/mamori/internal/server/oidcauth"
	"github.com/mamorisec/mamori/internal/server/oidcauth/oidctest"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/testenv"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// fixture is a server with users of different roles and scopes, and two
// scanned images in different scopes.
type fixture struct {
	t        *testing.T
	srv      *Server
	h        http.Handler
	tokens   map[string]string // principal -> API token
	imageA   store.Image       // reg-a.example/team-a/app, in scope team-a
	imageB   store.Image       // reg-b.example/team-b/api, in scope team-b
	scanA    store.Scan
	scanB    store.Scan
	adminPwd string
	doc      *apitest.Validator
}

// everything is every permission, so that fixture tokens restrict nothing
// beyond their owner's bindings.
func everything() []string {
	var out []string
	for _, t := range rbac.ResourceTypes() {
		out = append(out, string(t)+":edit")
	}
	return out
}

func newFixture(t *testing.T, databaseURL string) *fixture {
	t.Helper()
	return newFixtureConfig(t, databaseURL, nil)
}

// newFixtureConfig is newFixture with a hook to change the configuration.
func newFixtureConfig(t *testing.T, databaseURL string, change func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, tokens: map[string]string{}}
	cfg := Config{
		DataDir: filepath.Join(t.TempDir(), "data"), DatabaseURL: databaseURL, VulnDB: filepath.Join(t.TempDir(), "none.db"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FirstRun: func(_, pw string) { f.adminPwd = pw },
	}
	if change != nil {
		change(&cfg)
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.srv, f.h = srv, srv.Handler()
	db := srv.db
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.CreateRole(ctx, store.Role{Name: "Team Editor", Permissions: []string{"images:edit", "scans:edit", "vulnerabilities:edit", "exceptions:edit"}})
	must(err)
	for _, sc := range []rbac.ApplicationScope{
		{Name: "team-a", Artifacts: rbac.Artifacts{Registries: []rbac.Glob{rbac.MustGlob("reg-a.example")}, Images: []rbac.Glob{rbac.MustGlob("reg-a.example/team-a/**")}}},
		{Name: "team-b", Artifacts: rbac.Artifacts{Images: []rbac.Glob{rbac.MustGlob("reg-b.example/team-b/*")}}},
	} {
		_, err := db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Definition: jsonBody(sc)})
		must(err)
	}
	users := map[string][]store.RoleBinding{
		"admin": nil, // created on first start
		"bob":   {{Role: "Team Editor", Scopes: []string{"team-a"}}},
		"carol": {{Role: rbac.RoleAuditor, Scopes: []string{rbac.GlobalScopeName}}},
		"dave":  {{Role: rbac.RoleViewer, Scopes: []string{"team-b"}}},
		"erin":  nil,
	}
	for name, bindings := range users {
		if name != "admin" {
			_, err := db.CreateUser(ctx, store.User{Username: name, Source: store.SourceLocal})
			must(err)
		}
		for _, b := range bindings {
			b.SubjectKind, b.Subject = store.SubjectUser, name
			_, err := db.CreateRoleBinding(ctx, b)
			must(err)
		}
		u, err := db.GetUserByName(ctx, name)
		must(err)
		tok, _, err := srv.auth.IssueToken(ctx, strconv.FormatInt(u.ID, 10), "fixture", everything(), time.Hour)
		must(err)
		f.tokens[name] = tok
	}
	f.imageA, f.scanA = f.ingest("reg-a.example", "team-a/app", "1.0")
	f.imageB, f.scanB = f.ingest("reg-b.example", "team-b/api", "2.0")
	_, err = db.CreatePolicy(ctx, store.PolicyAssurance, "baseline", json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"baseline","controls":{"max_severity":"CRITICAL"}}`), "admin")
	must(err)
	_, err = db.CreatePolicy(ctx, store.PolicyRuntime, "baseline", json.RawMessage(`{"mode":"audit"}`), "admin")
	must(err)
	if f.doc, err = apitest.New(srv.OpenAPI()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) ingest(registry, repo, tag string) (store.Image, store.Scan) {
	f.t.Helper()
	im := store.Image{Registry: registry, Repository: repo, Tag: tag}
	pkg := inventory.Package{Name: "openssl", Version: "3.0.11-1~deb12u1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status"}
	rep := &report.Scan{SchemaVersion: report.SchemaVersion,
		Inventory:       &inventory.Report{SchemaVersion: 1, Image: inventory.ImageInfo{Ref: im.Ref(), Name: im.Ref()}, Packages: []inventory.Package{pkg}},
		Vulnerabilities: []vuln.Finding{{ID: "CVE-2024-0727", Package: vuln.PackageOf(&pkg), Severity: vuln.SeverityMedium, Status: vuln.StatusFixed, FixedVersions: []string{"3.0.13-1~deb12u1"}}},
	}
	sc, err := f.srv.db.IngestScan(context.Background(), im, rep)
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := f.srv.db.GetImage(context.Background(), sc.ImageID, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return got, sc
}

// do sends a request as principal ("" for anonymous) and returns the
// status and body.
func (f *fixture) do(principal, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := f.tokens[principal]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// access is what each fixture principal may do per resource type:
// "edit", "view" or "" (nothing), written out from the roles above rather
// than computed, and the scope each principal's image access is limited to.
var access = map[string]map[string]string{
	"admin": nil, // everything
	"carol": nil, // view everything
	"bob":   {rImages: "edit", rScans: "edit", rVulns: "edit", rExceptions: "edit"},
	"dave":  {rImages: "view", rScans: "view", rVulns: "view", rAssurance: "view", rRuntime: "view"},
	"erin":  {},
}

func allowed(principal, resource, action string) bool {
	switch principal {
	case "admin":
		return true
	case "carol":
		return action == "view"
	case "":
		return false
	}
	got := access[principal][resource]
	return got == "edit" || (got == "view" && action == "view")
}

// request builds a request for a route; object routes point at team-a's
// image and scan.
type request struct {
	path string
	body any
	// scoped marks requests on an object of team-a: only principals
	// whose scopes include team-a may see it.
	scoped bool
}

func (f *fixture) requestFor(rt *api.Route, principal string) request {
	ctx := context.Background()
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	uniq := principal + strconv.FormatInt(time.Now().UnixNano(), 36)
	if req, ok := f.fleetRequestFor(rt, uniq); ok {
		return req
	}
	if rt.OperationID == "fleetGatewayCertificate" {
		return request{path: rt.Path, body: GatewayCertificateRequest{CSR: newCSR(f.t), Hosts: []string{"gw-" + uniq + ".example", "127.0.0.1"}}}
	}
	switch rt.OperationID {
	case "getImage":
		return request{path: "/api/v1/images/" + id(f.imageA.ID), scoped: true}
	case "getScan":
		return request{path: "/api/v1/scans/" + id(f.scanA.ID), scoped: true}
	case "getScanReport":
		return request{path: "/api/v1/scans/" + id(f.scanA.ID) + "/report", scoped: true}
	case "requestScan":
		return request{path: rt.Path, body: scanRequest{Image: "reg-a.example/team-a/app:2.0"}, scoped: true}
	case "imagesWithVulnerability":
		return request{path: "/api/v1/vulnerabilities/CVE-2024-0727/images"}
	case "imagesWithPackage":
		return request{path: "/api/v1/packages/images?type=deb&name=openssl&version=%3C3.0.13"}
	case "createUser":
		return request{path: rt.Path, body: userRequest{Username: "new-" + uniq, Password: "correct horse battery " + uniq}}
	case "getUser":
		u, _ := f.srv.db.GetUserByName(ctx, "erin")
		return request{path: "/api/v1/users/" + id(u.ID)}
	case "deleteUser":
		u, err := f.srv.db.CreateUser(ctx, store.User{Username: "gone-" + uniq, Source: store.SourceLocal})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/users/" + id(u.ID)}
	case "updateUser":
		u, err := f.srv.db.CreateUser(ctx, store.User{Username: "p-" + uniq, Source: store.SourceLocal})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/users/" + id(u.ID), body: map[string]any{"displayName": "Renamed", "disabled": true}}
	case "deleteRole":
		if _, err := f.srv.db.CreateRole(ctx, store.Role{Name: "dr-" + uniq, Permissions: []string{"images:view"}}); err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/roles/dr-" + uniq}
	case "updateScope", "deleteScope":
		sc := rbac.ApplicationScope{Name: "s-" + uniq, Artifacts: rbac.Artifacts{Registries: []rbac.Glob{rbac.MustGlob("reg-d.example")}}}
		if _, err := f.srv.db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Definition: jsonBody(sc)}); err != nil {
			f.t.Fatal(err)
		}
		if rt.OperationID == "deleteScope" {
			return request{path: "/api/v1/scopes/" + sc.Name}
		}
		sc.Description = "changed"
		return request{path: "/api/v1/scopes/" + sc.Name, body: sc}
	case "createRole":
		return request{path: rt.Path, body: rbac.Role{Name: "role-" + uniq, Permissions: rbac.Permissions{rbac.Images: rbac.View}}}
	case "createScope":
		return request{path: rt.Path, body: rbac.ApplicationScope{Name: "scope-" + uniq, Artifacts: rbac.Artifacts{Registries: []rbac.Glob{rbac.MustGlob("reg-c.example")}}}}
	case "createRoleBinding":
		return request{path: rt.Path, body: store.RoleBinding{SubjectKind: store.SubjectGroup, Subject: "readers-" + uniq, Role: rbac.RoleViewer, Scopes: []string{"team-b"}}}
	case "deleteRoleBinding":
		b, err := f.srv.db.CreateRoleBinding(ctx, store.RoleBinding{SubjectKind: store.SubjectGroup, Subject: "g-" + uniq, Role: rbac.RoleViewer, Scopes: []string{"team-b"}})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/role-bindings/" + id(b.ID)}
	case "createToken":
		return request{path: rt.Path, body: tokenRequest{Name: "t", Scopes: []string{"images:view"}, TTL: "1h"}}
	case "revokeToken":
		u, _ := f.srv.db.GetUserByName(ctx, principal)
		if principal == "" {
			u, _ = f.srv.db.GetUserByName(ctx, "erin")
		}
		_, tok, err := f.srv.auth.IssueToken(ctx, id(u.ID), "doomed", []string{"images:view"}, time.Hour)
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/tokens/" + tok.ID}
	case "createAssurancePolicy":
		return request{path: rt.Path, body: policyRequest{Name: "p-" + uniq, Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"p","controls":{"disallow_malware":true}}`)}}
	case "updateAssurancePolicy":
		return request{path: "/api/v1/policies/assurance/baseline", body: policyRequest{Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"baseline","controls":{"max_severity":"HIGH"}}`)}}
	case "getAssurancePolicy", "listAssurancePolicyVersions":
		return request{path: strings.Replace(rt.Path, "{name}", "baseline", 1)}
	case "deleteAssurancePolicy", "deleteRuntimePolicy":
		kind := store.PolicyAssurance
		if rt.OperationID == "deleteRuntimePolicy" {
			kind = store.PolicyRuntime
		}
		def := json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"x","controls":{"disallow_root":true}}`)
		if _, err := f.srv.db.CreatePolicy(ctx, kind, "d-"+uniq, def, "admin"); err != nil {
			f.t.Fatal(err)
		}
		return request{path: strings.Replace(rt.Path, "{name}", "d-"+uniq, 1)}
	case "createRuntimePolicy":
		return request{path: rt.Path, body: policyRequest{Name: "r-" + uniq, Definition: json.RawMessage(`{"mode":"enforce"}`)}}
	case "updateRuntimePolicy":
		return request{path: "/api/v1/policies/runtime/baseline", body: policyRequest{Definition: json.RawMessage(`{"mode":"enforce"}`)}}
	case "getRuntimePolicy", "listRuntimePolicyVersions":
		return request{path: strings.Replace(rt.Path, "{name}", "baseline", 1)}
	case "createRegistry":
		return request{path: rt.Path, body: registryRequest{Name: "r-" + uniq, URL: "https://" + uniq + ".example", AuthType: store.AuthBasic, Username: "u", Secret: "s3cret-value"}}
	case "deleteRegistry":
		reg, err := f.srv.db.CreateRegistry(ctx, store.Registry{Name: "d-" + uniq, URL: "https://" + uniq + ".example", AuthType: store.AuthNone})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/registries/" + id(reg.ID)}
	case "updateRegistry":
		reg, err := f.srv.db.CreateRegistry(ctx, store.Registry{Name: "u-" + uniq, URL: "https://" + uniq + ".example", AuthType: store.AuthBasic, Username: "u", Secret: "kept"})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/registries/" + id(reg.ID), body: registryRequest{Name: "u-" + uniq, URL: "https://" + uniq + ".example", AuthType: store.AuthBasic, Username: "u2"}}
	case "getRegistryWebhook":
		reg, err := f.srv.db.CreateRegistry(ctx, store.Registry{Name: "w-" + uniq, URL: "https://" + uniq + ".example", AuthType: store.AuthNone})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/registries/" + id(reg.ID) + "/webhook"}
	case "putSetting":
		return request{path: "/api/v1/settings/ui.language", body: settingRequest{Value: json.RawMessage(`"ja"`)}}
	case "createException":
		return request{path: rt.Path, body: map[string]any{"image": "reg-a.example/team-a/*", "finding": "CVE-2024-0727",
			"expires": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339), "justification": "not reachable in our build"}}
	case "deleteException":
		e, err := f.srv.db.CreateException(ctx, store.Exception{Scope: "*", VulnID: "CVE-1", Expires: time.Now().Add(time.Hour), Justification: "x", CreatedBy: "admin"})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{path: "/api/v1/exceptions/" + id(e.ID)}
	}
	if strings.Contains(rt.Path, "{") {
		f.t.Fatalf("no sample request for %s %s", rt.Method, rt.Path)
	}
	return request{path: rt.Path}
}

// scopesA says which principals' scopes include team-a's image.
var scopesA = map[string]bool{"admin": true, "carol": true, "bob": true}

// TestAuthorization sends every route as every fixture principal and
// checks allow or deny, and that every answer matches the OpenAPI
// document.
func TestAuthorization(t *testing.T) {
	testAuthorization(t, "")
}

func testAuthorization(t *testing.T, databaseURL string) {
	f := newFixture(t, databaseURL)
	principals := []string{"", "admin", "bob", "carol", "dave", "erin"}
	for _, rt := range f.srv.Routes() {
		if rt.Public {
			continue
		}
		for _, p := range principals {
			name := fmt.Sprintf("%s/%s", rt.OperationID, cmpOr(p, "anonymous"))
			t.Run(name, func(t *testing.T) {
				req := f.requestFor(rt, p)
				want := allowed(p, rt.Resource, rt.Action)
				if req.scoped && !scopesA[p] {
					want = false
				}
				if rt.OperationID == "createToken" {
					want = false // fixture principals use tokens, and tokens never mint tokens (TestTokenFromSession)
				}
				code, body := f.do(p, rt.Method, req.path, req.body)
				denied := code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound
				switch {
				case p == "" && code != http.StatusUnauthorized:
					t.Errorf("anonymous: status %d, want 401: %s", code, body)
				case want && (denied || code >= 300):
					t.Errorf("want allowed, got %d: %s", code, body)
				case !want && !denied:
					t.Errorf("want denied, got %d: %s", code, body)
				}
				if err := f.doc.Check(rt.Method, rt.Path, code, body); err != nil && code != http.StatusNoContent {
					t.Error(err)
				}
			})
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestScopedLists checks that lists, counts and cross-image queries show a
// scoped principal only the images of its scopes.
func TestScopedLists(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		principal, path string
		want            []int64
	}{
		{"admin", "/api/v1/images", []int64{f.imageA.ID, f.imageB.ID}},
		{"bob", "/api/v1/images", []int64{f.imageA.ID}},
		{"dave", "/api/v1/images", []int64{f.imageB.ID}},
		{"bob", "/api/v1/vulnerabilities/CVE-2024-0727/images", []int64{f.imageA.ID}},
		{"dave", "/api/v1/vulnerabilities/CVE-2024-0727/images", []int64{f.imageB.ID}},
	} {
		code, body := f.do(tc.principal, "GET", tc.path, nil)
		var page struct {
			Items []struct {
				ID int64 `json:"id"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &page); code != 200 || err != nil {
			t.Fatalf("%s %s: %d %s", tc.principal, tc.path, code, body)
		}
		var got []int64
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s: images %v, want %v", tc.principal, tc.path, got, tc.want)
		}
	}
	// Direct URLs to an image outside the scope are not found.
	if code, _ := f.do("bob", "GET", "/api/v1/images/"+strconv.FormatInt(f.imageB.ID, 10), nil); code != 404 {
		t.Errorf("bob reads team-b's image: %d", code)
	}
	if code, _ := f.do("dave", "GET", "/api/v1/scans/"+strconv.FormatInt(f.scanA.ID, 10)+"/report", nil); code != 404 {
		t.Errorf("dave reads team-a's report: %d", code)
	}
}

// TestAuthorizationPostgres runs the authorization table on PostgreSQL.
func TestAuthorizationPostgres(t *testing.T) {
	testAuthorization(t, testenv.Postgres(t))
}

// session logs in with a password and returns a client that sends the
// session cookie and the CSRF token.
type session struct {
	f      *fixture
	cookie *http.Cookie
	csrf   string
}

func (f *fixture) login(user, password string) (*session, int) {
	code, body, hdr := f.raw("POST", "/api/v1/auth/login", map[string]string{"username": user, "password": password}, nil)
	if code != http.StatusOK {
		return nil, code
	}
	var resp struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(body, &resp)
	s := &session{f: f, csrf: resp.CSRF}
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		s.cookie = c
	}
	return s, code
}

func (f *fixture) raw(method, path string, body any, prep func(*http.Request)) (int, []byte, http.Header) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, "https://console.example"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://console.example")
	if prep != nil {
		prep(req)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes(), w.Header()
}

func (s *session) do(method, path string, body any, csrf bool) (int, []byte) {
	code, b, _ := s.f.raw(method, path, body, func(r *http.Request) {
		r.AddCookie(s.cookie)
		if csrf {
			r.Header.Set("X-CSRF-Token", s.csrf)
		}
	})
	return code, b
}

// TestSessionTokenAndAudit logs in as the first admin with the generated
// password, creates an API token through the session (CSRF checked), uses
// it, and checks that logins and changes are in a verifiable audit trail.
func TestSessionTokenAndAudit(t *testing.T) {
	f := newFixture(t, "")
	if f.adminPwd == "" || len(f.adminPwd) < 20 {
		t.Fatalf("first start generated no usable admin password: %q", f.adminPwd)
	}
	if _, code := f.login("admin", "wrong password entirely"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	s, code := f.login("admin", f.adminPwd)
	if code != http.StatusOK || s.cookie == nil || s.csrf == "" {
		t.Fatalf("login: %d", code)
	}
	if code, body := s.do("POST", "/api/v1/tokens", tokenRequest{Name: "ci", Scopes: []string{"images:view"}, TTL: "24h"}, false); code != http.StatusForbidden {
		t.Errorf("token without CSRF: %d %s", code, body)
	}
	code, body := s.do("POST", "/api/v1/tokens", tokenRequest{Name: "ci", Scopes: []string{"images:view"}, TTL: "24h"}, true)
	if code != http.StatusCreated {
		t.Fatalf("create token: %d %s", code, body)
	}
	var tc tokenCreated
	json.Unmarshal(body, &tc)
	if !strings.HasPrefix(tc.Token, "mamori_") || strings.Contains(string(body), `"hash"`) {
		t.Fatalf("token response: %s", body)
	}
	f.tokens["ci"] = tc.Token
	if code, _ := f.do("ci", "GET", "/api/v1/images", nil); code != http.StatusOK {
		t.Errorf("token with images:view lists images: %d", code)
	}
	if code, _ := f.do("ci", "GET", "/api/v1/users", nil); code != http.StatusForbidden {
		t.Errorf("token with images:view lists users: %d", code)
	}
	if code, _ := f.do("ci", "DELETE", "/api/v1/tokens/"+tc.Info.ID, nil); code != http.StatusForbidden {
		t.Errorf("view-only token revokes itself: %d", code)
	}
	if code, _ := s.do("DELETE", "/api/v1/tokens/"+tc.Info.ID, nil, true); code != http.StatusNoContent {
		t.Errorf("revoke: %d", code)
	}
	if code, _ := f.do("ci", "GET", "/api/v1/images", nil); code != http.StatusUnauthorized {
		t.Errorf("revoked token still works: %d", code)
	}
	if code, body := s.do("POST", "/api/v1/auth/password", passwordRequest{Current: "not it at all", New: "a brand new console passphrase"}, true); code != http.StatusForbidden {
		t.Errorf("password change with a wrong current password: %d %s", code, body)
	}
	if code, body := s.do("POST", "/api/v1/auth/password", passwordRequest{Current: f.adminPwd, New: "short"}, true); code != http.StatusBadRequest {
		t.Errorf("weak new password: %d %s", code, body)
	}
	if code, body := s.do("POST", "/api/v1/auth/password", passwordRequest{Current: f.adminPwd, New: "a brand new console passphrase"}, true); code != http.StatusNoContent {
		t.Errorf("password change: %d %s", code, body)
	}
	if _, code := f.login("admin", f.adminPwd); code != http.StatusUnauthorized {
		t.Errorf("the old password still works: %d", code)
	}
	if code, _ := s.do("POST", "/api/v1/auth/logout", nil, true); code != http.StatusNoContent {
		t.Errorf("logout: %d", code)
	}
	if code, _ := s.do("GET", "/api/v1/images", nil, false); code != http.StatusUnauthorized {
		t.Errorf("session after logout: %d", code)
	}

	code, body = f.do("admin", "GET", "/api/v1/audit?limit=500", nil)
	if code != 200 {
		t.Fatalf("audit list: %d %s", code, body)
	}
	for _, action := range []string{"user.create", "auth.login_failed", "auth.login", "token.create", "token.revoke", "auth.logout", "access.denied"} {
		if !strings.Contains(string(body), `"action":"`+action+`"`) {
			t.Errorf("audit trail lacks %s", action)
		}
	}
	if strings.Contains(string(body), f.adminPwd) || strings.Contains(string(body), tc.Token) {
		t.Error("the audit trail holds a password or token")
	}
	code, body = f.do("admin", "GET", "/api/v1/audit/verify", nil)
	if code != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Errorf("audit verify: %d %s", code, body)
	}
	code, body = f.do("admin", "GET", "/api/v1/audit/export?format=csv", nil)
	if code != 200 || !strings.HasPrefix(string(body), "seq,") {
		t.Errorf("audit export: %d %.200s", code, body)
	}
	var out bytes.Buffer
	ok, err := VerifyAudit(context.Background(), f.srv.data.Dir, "", &out)
	if err != nil || !ok {
		t.Errorf("VerifyAudit: %v %v %s", ok, err, out.String())
	}
}

// TestBadInput sends malformed and hostile requests.
func TestBadInput(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		method, path string
		body         any
		code         int
		errCode      string
	}{
		{"GET", "/api/v1/vulnerabilities?filter=severity%3DCRITICAL%27%20OR%201%3D1--", nil, 400, api.CodeInvalidFilter},
		{"GET", "/api/v1/vulnerabilities?filter=nosuchfield%3D1", nil, 400, api.CodeInvalidFilter},
		{"GET", "/api/v1/images?sort=%3Bdrop%20table%20images", nil, 400, api.CodeInvalidFilter},
		{"GET", "/api/v1/images?limit=0", nil, 400, api.CodeBadRequest},
		{"GET", "/api/v1/images?cursor=forged", nil, 400, api.CodeInvalidFilter},
		{"GET", "/api/v1/images/abc", nil, 404, api.CodeNotFound},
		{"POST", "/api/v1/users", map[string]any{"username": "x", "password": "short"}, 400, api.CodeBadRequest},
		{"POST", "/api/v1/users", map[string]any{"username": "x", "password": "a good long password", "isAdmin": true}, 400, api.CodeInvalidJSON},
		{"POST", "/api/v1/policies/assurance", policyRequest{Name: "bad", Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"bad","controls":{"disalow_root":true}}`)}, 400, api.CodeInvalidPolicy},
		{"POST", "/api/v1/scans", scanRequest{Image: "not a reference!"}, 400, api.CodeBadRequest},
		{"POST", "/api/v1/tokens", tokenRequest{Name: "t", TTL: "forever"}, 400, api.CodeBadRequest},
		{"GET", "/api/v1/tokens?filter=name%3Da%5C", nil, 400, api.CodeInvalidFilter},
	} {
		code, body := f.do("admin", tc.method, tc.path, tc.body)
		if tc.path == "/api/v1/tokens?filter=name%3Da%5C" {
			code, body = f.do("carol", tc.method, tc.path, tc.body)
		}
		if code != tc.code || !strings.Contains(string(body), `"code":"`+tc.errCode+`"`) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, code, body, tc.code, tc.errCode)
		}
	}
	// Nothing was written by the failed requests.
	if _, err := f.srv.db.GetUserByName(context.Background(), "x"); err == nil {
		t.Error("a rejected user was stored")
	}
}

// TestScanThroughAPI pushes the demo image to a real registry with
// authentication, asks the server to scan it, waits for the local worker
// and reads the stored scan, its findings and its assurance status.
func TestScanThroughAPI(t *testing.T) {
	reg, ref, dbPath := demoRegistry(t)
	f := newFixture(t, "")
	f.srv.cfg.VulnDB = dbPath
	code, body := f.do("admin", "POST", "/api/v1/registries", registryRequest{Name: "local", URL: "http://" + reg.Host, AuthType: store.AuthBasic, Username: reg.Username, Secret: reg.Password})
	if code != http.StatusCreated || strings.Contains(string(body), reg.Password) {
		t.Fatalf("registry: %d %s", code, body)
	}
	code, body = f.do("admin", "PUT", "/api/v1/policies/assurance/baseline", policyRequest{Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"baseline","controls":{"disallow_malware":true}}`)})
	if code != 200 {
		t.Fatalf("policy: %d %s", code, body)
	}
	code, body = f.do("admin", "POST", "/api/v1/policies/assurance", policyRequest{Name: "labelled", Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"labelled","controls":{"required_labels":{"org.opencontainers.image.source":""},"max_image_age":"36500d"}}`)})
	if code != http.StatusCreated {
		t.Fatalf("policy: %d %s", code, body)
	}
	code, body = f.do("admin", "POST", "/api/v1/scopes", rbac.ApplicationScope{Name: "local", Artifacts: rbac.Artifacts{Registries: []rbac.Glob{rbac.MustGlob(reg.Host)}}})
	if code != http.StatusCreated {
		t.Fatalf("scope: %d %s", code, body)
	}
	code, body = f.do("admin", "POST", "/api/v1/policies/assurance", policyRequest{Name: "local-only", Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"local-only","scopes":["local"],"controls":{"disallow_root":true}}`)})
	if code != http.StatusCreated {
		t.Fatalf("policy: %d %s", code, body)
	}
	code, body = f.do("admin", "POST", "/api/v1/policies/assurance", policyRequest{Name: "team-b-only", Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"team-b-only","scopes":["team-b"],"controls":{"disallow_root":true}}`)})
	if code != http.StatusCreated {
		t.Fatalf("policy: %d %s", code, body)
	}
	code, body = f.do("admin", "POST", "/api/v1/policies/assurance", policyRequest{Name: "based", Definition: json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"based","controls":{"trusted_base_images":[{"name":"` + ref + `"}]}}`)})
	if code != http.StatusCreated {
		t.Fatalf("policy: %d %s", code, body)
	}
	f.srv.Start()
	code, body = f.do("admin", "POST", "/api/v1/scans", scanRequest{Image: ref})
	if code != http.StatusAccepted {
		t.Fatalf("scan request: %d %s", code, body)
	}
	var image store.Image
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body = f.do("admin", "GET", "/api/v1/images?filter=repository%3Dteam-a%2Fdemo", nil)
		var page api.Page[store.Image]
		json.Unmarshal(body, &page)
		if code == 200 && len(page.Items) == 1 && page.Items[0].LatestScanID != 0 {
			image = page.Items[0]
			break
		}
		if time.Now().After(deadline) {
			jobs := f.srv.queue.List()
			t.Fatalf("the scan did not finish: %d %s; jobs %+v", code, body, jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body = f.do("admin", "GET", "/api/v1/scans/"+strconv.FormatInt(image.LatestScanID, 10)+"/report", nil)
	var rep report.Scan
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil {
		t.Fatalf("report: %d %v", code, err)
	}
	if len(rep.Vulnerabilities) == 0 || len(rep.Secrets) == 0 || len(rep.Malware) == 0 {
		t.Errorf("report has %d vulnerabilities, %d secrets, %d malware", len(rep.Vulnerabilities), len(rep.Secrets), len(rep.Malware))
	}
	if rep.Assurance == nil || rep.Assurance.Pass || rep.Assurance.Policy != "baseline" {
		t.Errorf("assurance %+v, want the baseline policy failing on malware", rep.Assurance)
	}
	// Every policy judged the scan, with the image's configuration (labels,
	// creation time) at hand.
	controls := map[string]bool{}
	for _, v := range rep.Verdicts {
		for _, vi := range v.Violations {
			controls[v.Policy+"/"+vi.Control] = true
		}
	}
	// The image is built on itself: the server resolved the trusted base
	// image's layers from the registry. The team-b policy does not judge a
	// team-a image.
	if len(rep.Verdicts) != 4 || !controls["local-only/disallow_root"] || controls["team-b-only/disallow_root"] ||
		controls["based/trusted_base_images"] || !controls["baseline/disallow_malware"] || !controls["labelled/required_labels"] || controls["labelled/max_image_age"] {
		t.Errorf("verdicts %+v", rep.Verdicts)
	}
	code, body = f.do("admin", "GET", "/api/v1/scans/"+strconv.FormatInt(image.LatestScanID, 10), nil)
	if code != 200 || !strings.Contains(string(body), `"assurance":"fail"`) {
		t.Errorf("scan: %d %s", code, body)
	}
	code, body = f.do("admin", "GET", "/api/v1/vulnerabilities/DEMO-CVE-2026-1005/images", nil)
	if code != 200 || !strings.Contains(string(body), `"repository":"team-a/demo"`) {
		t.Errorf("images with DEMO-CVE-2026-1005: %d %s", code, body)
	}
	code, body = f.do("admin", "GET", "/api/v1/packages/images?type=npm&name=lodash&version=%3C4.17.21", nil)
	if code != 200 || !strings.Contains(string(body), `"repository":"team-a/demo"`) {
		t.Errorf("images with lodash < 4.17.21: %d %s", code, body)
	}
	// The scan is in the audit trail.
	if code, body := f.do("admin", "GET", "/api/v1/audit?filter=action%3Dscan.complete", nil); code != 200 || !strings.Contains(string(body), "team-a/demo") {
		t.Errorf("audit of the scan: %d %s", code, body)
	}
}

// pushLayout copies the OCI layout's image to ref.
// demoRegistry pushes the demo image to a real registry with
// authentication as team-a/demo:1 and builds a vulnerability database from
// the demo feed; it returns the registry, the image reference and the
// database path.
func demoRegistry(t *testing.T) (*testenv.Registry, string, string) {
	t.Helper()
	reg := testenv.Distribution(t, true)
	t.Setenv("MAMORI_USERNAME", "")
	layout := filepath.Join(t.TempDir(), "layout")
	if err := demo.Write(layout, ""); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/team-a/demo:1"
	pushLayout(t, layout, ref, reg)
	feed := filepath.Join(t.TempDir(), "feed")
	if err := demo.WriteFeed(feed); err != nil {
		t.Fatal(err)
	}
	b := vulndb.NewBuilder()
	if _, err := b.AddPath("demo", "demo feed", feed); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "vuln.db")
	if _, err := b.Write(dbPath, time.Now()); err != nil {
		t.Fatal(err)
	}
	return reg, ref, dbPath
}

func pushLayout(t *testing.T, dir, ref string, reg *testenv.Registry) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})); err != nil {
		t.Fatal(err)
	}
}

// TestLDAPLogin logs a directory user in through the API against a real
// slapd; the role comes from a binding on the user's directory group.
func TestLDAPLogin(t *testing.T) {
	d := slapdtest.Start(t)
	people, groups := "ou=people,"+slapdtest.Suffix, "ou=groups,"+slapdtest.Suffix
	lara := "uid=lara," + people
	auditors := "cn=auditors," + groups
	d.Add(t,
		slapdtest.Entry{DN: slapdtest.Suffix, Attrs: map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		slapdtest.Entry{DN: people, Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		slapdtest.Entry{DN: groups, Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
		slapdtest.Entry{DN: lara, Attrs: map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {"lara"}, "cn": {"Lara"}, "sn": {"Test"}, "userPassword": {"lara directory password"}}},
		slapdtest.Entry{DN: auditors, Attrs: map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"auditors"}, "member": {lara}}},
	)
	f := &fixture{t: t, tokens: map[string]string{}}
	srv, err := New(context.Background(), Config{
		DataDir: filepath.Join(t.TempDir(), "data"), VulnDB: filepath.Join(t.TempDir(), "none.db"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LDAP: &ldapauth.Config{URL: d.URL, AllowPlaintext: true, UserBaseDN: slapdtest.Suffix, UserFilter: "(&(objectClass=person)(uid={username}))",
			GroupBaseDN: groups, GroupFilter: "(&(objectClass=groupOfNames)(member={userDN}))", Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f.srv, f.h = srv, srv.Handler()
	if _, err := srv.db.CreateRoleBinding(context.Background(), store.RoleBinding{SubjectKind: store.SubjectGroup, Subject: auditors, Role: rbac.RoleAuditor, Scopes: []string{rbac.GlobalScopeName}}); err != nil {
		t.Fatal(err)
	}
	if _, code := f.login("lara", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong directory password: %d", code)
	}
	s, code := f.login("lara", "lara directory password")
	if code != http.StatusOK {
		t.Fatalf("directory login: %d", code)
	}
	if code, body := s.do("GET", "/api/v1/audit", nil, false); code != http.StatusOK {
		t.Errorf("auditor reads the audit trail: %d %s", code, body)
	}
	if code, _ := s.do("POST", "/api/v1/users", userRequest{Username: "x", Password: "a long enough password"}, true); code != http.StatusForbidden {
		t.Errorf("auditor creates a user: %d", code)
	}
	u, err := srv.db.GetUserByName(context.Background(), "lara")
	if err != nil || u.Source != store.SourceLDAP || u.PasswordHash != "" {
		t.Errorf("directory user row: %+v %v", u, err)
	}
}

// TestRegistryWebhook registers a real registry, fetches its webhook
// secret and posts a push notification: a forged secret is refused and a
// valid push queues a scan of the pushed digest.
func TestRegistryWebhook(t *testing.T) {
	reg := testenv.Distribution(t, true)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	if err := demo.Write(layoutDir, ""); err != nil {
		t.Fatal(err)
	}
	pushLayout(t, layoutDir, reg.Host+"/team-a/demo:1", reg)
	desc, err := remote.Head(must(name.ParseReference(reg.Host+"/team-a/demo:1")), remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "")
	code, body := f.do("admin", "POST", "/api/v1/registries", registryRequest{Name: "local", URL: "http://" + reg.Host, AuthType: store.AuthBasic, Username: reg.Username, Secret: reg.Password})
	if code != http.StatusCreated {
		t.Fatalf("registry: %d %s", code, body)
	}
	var created store.Registry
	json.Unmarshal(body, &created)
	code, body = f.do("admin", "GET", "/api/v1/registries/"+strconv.FormatInt(created.ID, 10)+"/webhook", nil)
	var info webhookInfo
	if err := json.Unmarshal(body, &info); code != 200 || err != nil || len(info.Secret) < 32 {
		t.Fatalf("webhook info: %d %s", code, body)
	}
	if code, _ := f.do("dave", "GET", info.Path, nil); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("a viewer reads the webhook secret: %d", code)
	}
	envelope := map[string]any{"events": []map[string]any{{
		"id": "e1", "timestamp": time.Now().UTC().Format(time.RFC3339), "action": "push",
		"target": map[string]any{"mediaType": string(desc.MediaType), "digest": desc.Digest.String(), "size": desc.Size, "repository": "team-a/demo", "tag": "1",
			"url": "http://" + reg.Host + "/v2/team-a/demo/manifests/" + desc.Digest.String()},
	}}}
	post := func(secret string) int {
		code, _, _ := f.raw("POST", info.Path, envelope, func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Authorization", "Bearer "+secret)
		})
		return code
	}
	if code := post("forged-secret-forged-secret-forged"); code != http.StatusUnauthorized {
		t.Errorf("forged webhook secret: %d", code)
	}
	if len(f.srv.queue.List()) != 0 {
		t.Fatal("a forged push queued a scan")
	}
	if code := post(info.Secret); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	jobs := f.srv.queue.List()
	if len(jobs) != 1 || jobs[0].Digest != desc.Digest.String() || !strings.Contains(jobs[0].Ref, "team-a/demo") {
		t.Errorf("queued jobs %+v", jobs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestOIDCLogin signs in through an OIDC provider (authorization code +
// PKCE) with a browser-like client; the group claim's role binding gives
// the user access, and the session works like a password login's.
func TestOIDCLogin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	callback := base + "/api/v1/auth/oidc/callback"
	idp := oidctest.Start(t, "mamori-console", "console-secret", callback,
		oidctest.User{Subject: "u-42", PreferredUsername: "olive", Name: "Olive", Email: "olive@example.org", Groups: []string{"console-auditors"}})
	srv, err := New(context.Background(), Config{
		DataDir: filepath.Join(t.TempDir(), "data"), VulnDB: filepath.Join(t.TempDir(), "none.db"), InsecureCookie: true,
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OIDC: &oidcauth.Config{Issuer: idp.Issuer, ClientID: "mamori-console", ClientSecret: "console-secret", RedirectURL: callback},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	defer hs.Close()
	if _, err := srv.db.CreateRoleBinding(context.Background(), store.RoleBinding{SubjectKind: store.SubjectGroup, Subject: "console-auditors", Role: rbac.RoleAuditor, Scopes: []string{rbac.GlobalScopeName}}); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	// The console's login page offers single sign-on.
	resp, err := browser.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `href="/api/v1/auth/oidc/login"`) {
		t.Errorf("the login page has no SSO button:\n%s", page)
	}
	resp, err = browser.Get(base + "/api/v1/auth/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		t.Fatalf("the flow ended at %s", resp.Request.URL)
	}
	resp, err = browser.Get(base + "/api/v1/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"username":"olive"`) || !strings.Contains(string(body), "console-auditors") {
		t.Fatalf("session after SSO: %d %s", resp.StatusCode, body)
	}
	resp, err = browser.Get(base + "/api/v1/audit")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("auditor via SSO reads the audit trail: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	// A callback without the flow's state cookie is refused.
	resp, err = http.Get(callback + "?code=forged&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged callback: %d", resp.StatusCode)
	}
}

// TestRemoteScanner runs a remote scan worker (as `mamori scanner` does)
// against the server with a Scanner token: it leases the queued job, and
// the result it posts is stored as the image's scan. A token without the
// Scanner role on the Global scope is refused.
func TestRemoteScanner(t *testing.T) {
	f := newFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hs := httptest.NewServer(f.h)
	defer hs.Close()
	admin, _ := f.srv.db.GetUserByName(ctx, "admin")
	if _, err := f.srv.db.CreateUser(ctx, store.User{Username: "ci-scanner", Source: store.SourceLocal}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.db.CreateRoleBinding(ctx, store.RoleBinding{SubjectKind: store.SubjectUser, Subject: "ci-scanner", Role: rbac.RoleScanner, Scopes: []string{rbac.GlobalScopeName}}); err != nil {
		t.Fatal(err)
	}
	sc, _ := f.srv.db.GetUserByName(ctx, "ci-scanner")
	token, _, err := f.srv.auth.IssueToken(ctx, strconv.FormatInt(sc.ID, 10), "scanner", []string{"scans:edit", "images:edit"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	viewer, _, err := f.srv.auth.IssueToken(ctx, strconv.FormatInt(admin.ID, 10), "viewer", []string{"images:view"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	never := func(context.Context, string) (*report.Scan, error) { return nil, errors.New("unreachable") }
	if err := jobs.RunRemoteWorker(ctx, hs.URL, viewer, never, jobs.WorkerOptions{Name: "bad"}); !errors.Is(err, jobs.ErrUnauthorized) {
		t.Errorf("a view-only token runs a scanner: %v", err)
	}
	code, body := f.do("admin", "POST", "/api/v1/scans", scanRequest{Image: "reg-c.example/team-c/app:3"})
	if code != http.StatusAccepted {
		t.Fatalf("scan request: %d %s", code, body)
	}
	scanned := make(chan string, 1)
	scan := func(_ context.Context, ref string) (*report.Scan, error) {
		scanned <- ref
		pkg := inventory.Package{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Type: inventory.TypeDeb, Path: "/var/lib/dpkg/status"}
		return &report.Scan{SchemaVersion: report.SchemaVersion, Vulnerabilities: []vuln.Finding{},
			Inventory: &inventory.Report{SchemaVersion: 1, Image: inventory.ImageInfo{Ref: ref, Name: ref}, Packages: []inventory.Package{pkg}}}, nil
	}
	go jobs.RunRemoteWorker(ctx, hs.URL, token, scan, jobs.WorkerOptions{Name: "build-01", Wait: time.Second})
	select {
	case ref := <-scanned:
		if !strings.Contains(ref, "reg-c.example/team-c/app:3") {
			t.Errorf("the worker scanned %q", ref)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the remote worker got no job")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = f.do("admin", "GET", "/api/v1/images?filter=repository%3Dteam-c%2Fapp", nil)
		if code == 200 && strings.Contains(string(body), `"latestScanID"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote result was not stored: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDisableUser checks that disabling a user stops their token at once
// and that built-in roles cannot be deleted.
func TestDisableUser(t *testing.T) {
	f := newFixture(t, "")
	if code, _ := f.do("dave", "GET", "/api/v1/images", nil); code != 200 {
		t.Fatalf("dave before: %d", code)
	}
	dave, _ := f.srv.db.GetUserByName(context.Background(), "dave")
	if code, body := f.do("admin", "PATCH", "/api/v1/users/"+strconv.FormatInt(dave.ID, 10), map[string]any{"disabled": true}); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	if code, _ := f.do("dave", "GET", "/api/v1/images", nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("a disabled user's token still works: %d", code)
	}
	if code, _ := f.do("admin", "DELETE", "/api/v1/roles/"+rbac.RoleAdministrator, nil); code != http.StatusConflict {
		t.Errorf("deleting a built-in role: %d", code)
	}
	admin, _ := f.srv.db.GetUserByName(context.Background(), "admin")
	if code, _ := f.do("admin", "PATCH", "/api/v1/users/"+strconv.FormatInt(admin.ID, 10), map[string]any{"disabled": true}); code != http.StatusConflict {
		t.Errorf("an admin disables themself: %d", code)
	}
}

// TestRegistrySchedule runs one scheduler tick over a registered real
// registry: every discovered image that has no scan is queued once.
func TestRegistrySchedule(t *testing.T) {
	reg := testenv.Distribution(t, true)
	auth := remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})
	var digests []string
	for _, repo := range []string{"team-a/api:1", "team-a/worker:2"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(must(name.ParseReference(reg.Host+"/"+repo)), img, auth); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests = append(digests, d.String())
	}
	f := newFixture(t, "")
	if code, body := f.do("admin", "POST", "/api/v1/registries", registryRequest{Name: "local", URL: "http://" + reg.Host, AuthType: store.AuthBasic, Username: reg.Username, Secret: reg.Password}); code != http.StatusCreated {
		t.Fatalf("registry: %d %s", code, body)
	}
	sched := f.srv.scheduler()
	if _, err := sched.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, j := range f.srv.queue.List() {
		got[j.Digest] = true
	}
	for _, d := range digests {
		if !got[d] {
			t.Errorf("image %s was not queued; jobs %+v", d, f.srv.queue.List())
		}
	}
	if n := len(f.srv.queue.List()); n != len(digests) {
		t.Errorf("%d jobs, want %d", n, len(digests))
	}
}
