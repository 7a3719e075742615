package server

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/webui"
)

// consoleLogin logs in through the console's form and returns the session
// cookie.
func (f *fixture) consoleLogin(t *testing.T, user, password string) *http.Cookie {
	t.Helper()
	code, _, hdr := f.raw("POST", "/login", nil, func(r *http.Request) {
		r.Body = http.NoBody
		form := url.Values{"username": {user}, "password": {password}}.Encode()
		r.Body = ioNopCloser(strings.NewReader(form))
		r.ContentLength = int64(len(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	if code != http.StatusSeeOther {
		t.Fatalf("console login as %s: %d", user, code)
	}
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if strings.Contains(c.Name, "session") {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// csrfRe finds a form's CSRF token in a console page.
var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// post submits a console form with the session's CSRF token (read from
// the account page) and returns the status and page.
func (f *fixture) post(t *testing.T, cookie *http.Cookie, path string, form url.Values) (int, string) {
	t.Helper()
	_, body, _ := f.page(cookie, "/account", "")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the account page:\n%s", body)
	}
	form.Set("csrf_token", html.UnescapeString(m[1]))
	enc := form.Encode()
	code, b, hdr := f.raw("POST", path, nil, func(r *http.Request) {
		r.AddCookie(cookie)
		r.Body = ioNopCloser(strings.NewReader(enc))
		r.ContentLength = int64(len(enc))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	if code == http.StatusSeeOther {
		return code, hdr.Get("Location")
	}
	return code, string(b)
}

// adminConsole logs the admin in to the console and replaces the
// generated first-start password, as the console requires.
func (f *fixture) adminConsole(t *testing.T) *http.Cookie {
	t.Helper()
	c := f.consoleLogin(t, "admin", f.adminPwd)
	if code, _, hdr := f.page(c, "/images", ""); code != http.StatusSeeOther || hdr.Get("Location") != "/account" {
		t.Fatalf("first admin login: %d to %q, want a redirect to the password change", code, hdr.Get("Location"))
	}
	next := f.adminPwd + " but changed"
	if code, body := f.post(t, c, "/account", url.Values{"current": {f.adminPwd}, "new": {next}}); code != http.StatusOK || strings.Contains(body, `id="must-change"`) {
		t.Fatalf("password change: %d\n%s", code, body)
	}
	f.adminPwd = next
	return c
}

func (f *fixture) page(cookie *http.Cookie, path, lang string) (int, string, http.Header) {
	code, body, hdr := f.raw("GET", path, nil, func(r *http.Request) {
		if cookie != nil {
			r.AddCookie(cookie)
		}
		if lang != "" {
			r.Header.Set("Accept-Language", lang)
		}
	})
	return code, string(body), hdr
}

// TestConsole checks the console's pages without a browser: login,
// scopes, language, headers and escaping.
func TestConsole(t *testing.T) {
	f := newFixture(t, "")
	// A hostile image: HTML in its repository name and a package name.
	pkg := inventory.Package{Name: `<script>alert("pkg")</script>`, Version: "1", Type: inventory.TypeNPM, Path: "/app/package.json"}
	im := store.Image{Registry: "reg-a.example", Repository: `team-a/x"><img src=x onerror=alert(1)>`, Tag: "1",
		Labels: map[string]string{"org.example.note": `<script>alert("label")</script>`}}
	rep := &report.Scan{SchemaVersion: report.SchemaVersion,
		Inventory:       &inventory.Report{SchemaVersion: 1, Image: inventory.ImageInfo{Ref: im.Ref(), Name: im.Ref()}, Packages: []inventory.Package{pkg}},
		Vulnerabilities: []vuln.Finding{{ID: "CVE-0000-0001", Package: vuln.PackageOf(&pkg), Severity: vuln.SeverityHigh, Summary: `<b onmouseover=alert(2)>x</b>`}},
	}
	sc, err := f.srv.db.IngestScan(context.Background(), im, rep)
	if err != nil {
		t.Fatal(err)
	}

	if code, _, hdr := f.page(nil, "/", ""); code != http.StatusSeeOther || hdr.Get("Location") != webui.LoginPath {
		t.Fatalf("anonymous dashboard: %d %v", code, hdr.Get("Location"))
	}
	code, body, hdr := f.page(nil, webui.LoginPath, "ja,en;q=0.5")
	if code != 200 || !strings.Contains(body, "ログイン") || !strings.Contains(body, `lang="ja"`) || hdr.Get("Content-Security-Policy") != webui.CSP ||
		strings.Contains(body, "oidc/login") {
		t.Fatalf("login page in Japanese: %d %v\n%s", code, hdr, body)
	}
	// The generated password must be replaced first: the wrong current
	// password is refused, and until the change every page leads to it.
	first := f.consoleLogin(t, "admin", f.adminPwd)
	if code, body := f.post(t, first, "/account", url.Values{"current": {"wrong password"}, "new": {"whatever whatever 1"}}); code != http.StatusForbidden || !strings.Contains(body, `id="must-change"`) {
		t.Errorf("password change with a wrong current password: %d", code)
	}
	if code, _ := f.post(t, first, "/policies", url.Values{"definition": {"x"}}); code != http.StatusForbidden {
		t.Errorf("a form before the password change: %d", code)
	}
	admin := f.adminConsole(t)
	code, body, _ = f.page(admin, "/", "")
	if code != 200 || !strings.Contains(body, `id="image-count">3<`) {
		t.Fatalf("dashboard: %d\n%s", code, body)
	}
	code, body, _ = f.page(admin, "/images/"+strconv.FormatInt(sc.ImageID, 10), "")
	if code != 200 || strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<b onmouseover") {
		t.Fatalf("hostile names are not escaped: %d\n%s", code, body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;pkg") || !strings.Contains(body, "&lt;script&gt;alert(&#34;label") {
		t.Errorf("the hostile package name or label is missing from the page:\n%s", body)
	}

	// A policy whose name is HTML.
	if _, err := f.srv.db.CreatePolicy(context.Background(), store.PolicyAssurance, `<img src=x onerror=alert(3)>`, []byte(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"x","controls":{"disallow_root":true}}`), "admin"); err != nil {
		t.Fatal(err)
	}
	code, body, _ = f.page(admin, "/policies", "")
	if code != 200 || strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x") {
		t.Errorf("hostile policy name is not escaped: %d\n%s", code, body)
	}

	bob := f.consoleLogin(t, "bob", f.setPassword(t, "bob"))
	code, body, _ = f.page(bob, "/images", "")
	if code != 200 || !strings.Contains(body, "team-a/app") || strings.Contains(body, "team-b/api") {
		t.Fatalf("bob's images: %d\n%s", code, body)
	}
	if code, _, _ := f.page(bob, "/images/"+strconv.FormatInt(f.imageB.ID, 10), ""); code != http.StatusNotFound {
		t.Errorf("bob opens team-b's image by URL: %d", code)
	}
	erin := f.consoleLogin(t, "erin", f.setPassword(t, "erin"))
	if code, _, _ := f.page(erin, "/images", ""); code != http.StatusForbidden {
		t.Errorf("erin (no roles) lists images: %d", code)
	}
	// Logout needs the form's CSRF token.
	code, _, _ = f.raw("POST", "/logout", nil, func(r *http.Request) {
		r.AddCookie(admin)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	if code != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d", code)
	}
	if code, _, hdr := f.page(nil, "/lang?l=ja&next=//evil.example/", ""); code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Errorf("open redirect through /lang: %d %s", code, hdr.Get("Location"))
	}
}

// setPassword gives a fixture user a password and returns it.
func (f *fixture) setPassword(t *testing.T, user string) string {
	t.Helper()
	u, err := f.srv.db.GetUserByName(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	pw := "a console password number " + strconv.Itoa(len(user)) + " for the test"
	if err := f.srv.auth.SetPassword(context.Background(), strconv.FormatInt(u.ID, 10), pw); err != nil {
		t.Fatal(err)
	}
	return pw
}

func ioNopCloser(r *strings.Reader) *nopCloser { return &nopCloser{r} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"a: 1.0\nb: [x, 2, true, null]\nc: {d: \"3\"}\n", `{"a":1.0,"b":["x",2,true,null],"c":{"d":"3"}}`, ""},
		{`{"a": 9.0}`, `{"a":9.0}`, ""},
		{"a: &x [1]\nb: *x\n", "", "aliases"},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), "", "nested too deeply"},
		{"a: [\n", "", "did not find"},
	} {
		got, err := yamlToJSON([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("yamlToJSON(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("yamlToJSON(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzYAMLToJSON(f *testing.F) {
	for _, s := range []string{"a: 1.0\n", `{"a": [1, "x"]}`, "a: &x 1\nb: *x\n", "- - - 1\n", "a: !!binary aGk=\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := yamlToJSON([]byte(in))
		if err == nil && !json.Valid(out) {
			t.Fatalf("yamlToJSON(%q) = %q, not JSON", in, out)
		}
	})
}

// TestConsoleActions drives the console's forms without a browser:
// policy enable/disable, import and export, exceptions, rescans, tokens,
// scopes, audit filters and the live feed, each with its authorization.
func TestConsoleActions(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	admin := f.adminConsole(t)
	imageA := "/images/" + strconv.FormatInt(f.imageA.ID, 10)
	imageB := "/images/" + strconv.FormatInt(f.imageB.ID, 10)

	// Import: one invalid policy refuses the whole import.
	good := `{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"imported","mode":"audit","enforce_from":"2099-01-01","controls":{"disallow_root":true}}`
	bad := `{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"broken","controls":{"disallow_rot":true}}`
	if code, body := f.post(t, admin, "/policies/import", url.Values{"policies": {"[" + good + "," + bad + "]"}}); code != http.StatusBadRequest || !strings.Contains(body, "disallow_rot") {
		t.Errorf("import with an invalid policy: %d\n%s", code, body)
	}
	if _, err := f.srv.db.GetPolicy(ctx, store.PolicyAssurance, "imported", 0); err == nil {
		t.Error("a refused import stored a policy")
	}
	if code, body := f.post(t, admin, "/policies/import", url.Values{"policies": {"[" + good + "]"}}); code != http.StatusOK || !strings.Contains(body, "imported") || !strings.Contains(body, "2099-01-01") {
		t.Errorf("import: %d\n%s", code, body)
	}
	// Disable and export: the export holds the switch and reads back.
	if code, body := f.post(t, admin, "/policies/toggle", url.Values{"name": {"imported"}, "enabled": {"false"}}); code != http.StatusOK || !strings.Contains(body, "Disabled") {
		t.Errorf("disable: %d\n%s", code, body)
	}
	code, body, hdr := f.page(admin, "/policies/export", "")
	var exported []map[string]any
	if err := json.Unmarshal([]byte(body), &exported); err != nil {
		t.Errorf("export is not JSON: %v", err)
	}
	if code != 200 || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") ||
		len(exported) != 2 || exported[1]["name"] != "imported" || exported[1]["enabled"] != false || exported[1]["mode"] != "audit" {
		t.Errorf("export: %d\n%s", code, body)
	}
	if code, _ := f.post(t, admin, "/policies/import", url.Values{"policies": {body}}); code != http.StatusOK {
		t.Errorf("re-import of the export: %d", code)
	}
	p, err := f.srv.db.GetPolicy(ctx, store.PolicyAssurance, "imported", 0)
	if err != nil || p.Version != 3 {
		t.Errorf("policy versions after import, toggle, re-import: %+v %v", p, err)
	}

	// The images page narrows to an application scope, never beyond the
	// caller's own.
	bob := f.consoleLogin(t, "bob", f.setPassword(t, "bob"))
	for _, tc := range []struct {
		who        *http.Cookie
		path       string
		code       int
		want, miss string
	}{
		{admin, "/images?scope=team-a", 200, "team-a/app", "team-b/api"},
		{admin, "/images?scope=team-b", 200, "team-b/api", "team-a/app"},
		{admin, "/images?scope=Global", 200, "team-b/api", ""},
		{bob, "/images?scope=team-b", 200, "No images", "team-b/api"},
		{bob, "/images?scope=team-a", 200, "team-a/app", "team-b/api"},
		{admin, "/images?scope=nope", 400, "nope", "team-a/app"},
	} {
		code, body, _ := f.page(tc.who, tc.path, "")
		if code != tc.code || !strings.Contains(body, tc.want) || (tc.miss != "" && strings.Contains(body, tc.miss)) {
			t.Errorf("%s: %d, want %d with %q and without %q", tc.path, code, tc.code, tc.want, tc.miss)
		}
	}

	// Bob (team-a editor) rescans his image but not team-b's, and may
	// not write policies.
	if code, loc := f.post(t, bob, imageA+"/rescan", url.Values{}); code != http.StatusSeeOther || !strings.HasPrefix(loc, imageA) {
		t.Errorf("bob rescans his image: %d %s", code, loc)
	}
	if code, body, _ := f.page(bob, imageA, ""); code != 200 || !strings.Contains(body, `data-busy="true"`) || !strings.Contains(body, "/static/live.js") {
		t.Errorf("the image page does not show the queued scan: %d\n%s", code, body)
	}
	if code, _ := f.post(t, bob, imageB+"/rescan", url.Values{}); code != http.StatusNotFound {
		t.Errorf("bob rescans team-b's image: %d", code)
	}
	if code, _ := f.post(t, bob, "/policies", url.Values{"definition": {good}}); code != http.StatusForbidden {
		t.Errorf("bob writes a policy: %d", code)
	}
	if code, _ := f.post(t, bob, "/images", url.Values{"ref": {"reg-b.example/team-b/api:2"}}); code != http.StatusNotFound && code != http.StatusForbidden {
		t.Errorf("bob scans a team-b reference: %d", code)
	}
	if code, _ := f.post(t, bob, "/images", url.Values{"ref": {"not a reference"}}); code != http.StatusBadRequest {
		t.Errorf("a bad reference: %d", code)
	}
	// Exceptions: bob may add them (Team Editor edits exceptions).
	if code, body := f.post(t, bob, imageA+"/exceptions", url.Values{"finding": {"CVE-2024-0727"}, "days": {"30"}, "justification": {"fixed upstream next week"}}); code != http.StatusOK || !strings.Contains(body, "Exception added") {
		t.Errorf("exception: %d\n%s", code, body)
	}
	if code, _ := f.post(t, bob, imageA+"/exceptions", url.Values{"finding": {"CVE-2024-0727"}, "days": {"9999"}, "justification": {"x"}}); code != http.StatusBadRequest {
		t.Errorf("an exception for 9999 days: %d", code)
	}
	exc, err := f.srv.db.ListExceptions(ctx, store.ListOptions{})
	if err != nil || len(exc.Items) != 1 || exc.Items[0].Scope != "reg-a.example/team-a/app" || exc.Items[0].CreatedBy != "bob" {
		t.Errorf("stored exceptions: %+v %v", exc.Items, err)
	}

	// Tokens: the secret is shown once and works; revoking ends it.
	code, body = f.post(t, admin, "/tokens", url.Values{"name": {"ci"}, "access": {"view"}, "days": {"7"}})
	m := regexp.MustCompile(`id="token-secret">([^<]+)<`).FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("token: %d\n%s", code, body)
	}
	secret := html.UnescapeString(m[1])
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }
	if code, _, _ := f.raw("GET", "/api/v1/images", nil, auth); code != 200 {
		t.Errorf("the console's token: %d", code)
	}
	toks, _ := f.srv.db.ListTokens(ctx, store.ListOptions{Filter: "name=ci"})
	if len(toks.Items) != 1 {
		t.Fatalf("tokens named ci: %+v", toks.Items)
	}
	if code, _ := f.post(t, bob, "/tokens/revoke", url.Values{"id": {toks.Items[0].ID}}); code != http.StatusNotFound {
		t.Errorf("bob revokes the admin's token: %d", code)
	}
	if code, _ := f.post(t, admin, "/tokens/revoke", url.Values{"id": {toks.Items[0].ID}}); code != http.StatusOK {
		t.Errorf("revoke: %d", code)
	}
	if code, _, _ := f.raw("GET", "/api/v1/images", nil, auth); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", code)
	}
	if code, _ := f.post(t, admin, "/tokens", url.Values{"name": {"x"}, "access": {"edit"}, "days": {"0"}}); code != http.StatusBadRequest {
		t.Errorf("a token for 0 days: %d", code)
	}

	// Scopes: an invalid one is refused, a valid one listed; bob may not.
	if code, _ := f.post(t, admin, "/scopes", url.Values{"definition": {`{"name":"Global"}`}}); code != http.StatusBadRequest {
		t.Errorf("a scope named Global: %d", code)
	}
	if code, body := f.post(t, admin, "/scopes", url.Values{"definition": {`{"name":"team-c","artifacts":{"images":["reg-c.example/*"]}}`}}); code != http.StatusOK || !strings.Contains(body, "team-c") {
		t.Errorf("scope: %d\n%s", code, body)
	}
	if code, _ := f.post(t, bob, "/scopes", url.Values{"definition": {`{"name":"team-d"}`}}); code != http.StatusForbidden {
		t.Errorf("bob writes a scope: %d", code)
	}

	// Audit filters, a bad date, and the CSV export link keeping the
	// filter.
	code, body, _ = f.page(admin, "/audit?action=token&outcome=success", "")
	if code != 200 || !strings.Contains(body, "token.create") || strings.Contains(body, "policy.update") || !strings.Contains(body, "/api/v1/audit/export?filter=") {
		t.Errorf("filtered audit log: %d\n%s", code, body)
	}
	if code, _, _ := f.page(admin, "/audit?since=yesterday", ""); code != http.StatusBadRequest {
		t.Errorf("audit with a bad date: %d", code)
	}

	// The live feed: the admin gets the security events after a seq;
	// bob (no audit access) gets only his image's scan state.
	feed := func(c *http.Cookie, path string) (int, string) {
		rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		code, b, _ := f.raw("GET", path, nil, func(r *http.Request) {
			r.AddCookie(c)
			*r = *r.WithContext(rctx)
		})
		return code, string(b)
	}
	code, body = feed(admin, "/events?after=0")
	if code != 200 || !strings.Contains(body, "event: audit") || !strings.Contains(body, `"outcome":"denied"`) {
		t.Errorf("admin's live feed: %d\n%s", code, body)
	}
	if code, _ := feed(bob, "/events?after=0"); code != http.StatusForbidden {
		t.Errorf("bob's audit feed: %d", code)
	}
	code, body = feed(bob, "/events?image="+strconv.FormatInt(f.imageA.ID, 10))
	if code != 200 || !strings.Contains(body, "event: scan\ndata: queued") || strings.Contains(body, "event: audit") {
		t.Errorf("bob's scan feed: %d\n%s", code, body)
	}
	if code, _ := feed(bob, "/events?image="+strconv.FormatInt(f.imageB.ID, 10)); code != http.StatusNotFound {
		t.Errorf("bob's feed of team-b's image: %d", code)
	}
}
