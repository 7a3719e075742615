package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

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
	im := store.Image{Registry: "reg-a.example", Repository: `team-a/x"><img src=x onerror=alert(1)>`, Tag: "1"}
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
	if code != 200 || !strings.Contains(body, "ログイン") || !strings.Contains(body, `lang="ja"`) || hdr.Get("Content-Security-Policy") != webui.CSP {
		t.Fatalf("login page in Japanese: %d %v\n%s", code, hdr, body)
	}
	admin := f.consoleLogin(t, "admin", f.adminPwd)
	code, body, _ = f.page(admin, "/", "")
	if code != 200 || !strings.Contains(body, `id="image-count">3<`) {
		t.Fatalf("dashboard: %d\n%s", code, body)
	}
	code, body, _ = f.page(admin, "/images/"+strconv.FormatInt(sc.ImageID, 10), "")
	if code != 200 || strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<b onmouseover") {
		t.Fatalf("hostile names are not escaped: %d\n%s", code, body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert") {
		t.Errorf("the hostile package name is missing from the page")
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
