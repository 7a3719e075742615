package server

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/webui/webtest"
)

// TestConsoleBrowser drives the console in headless Chromium: log in,
// see the dashboard and the images, open an image's vulnerabilities,
// read it in Japanese, and check that a team-scoped user cannot see
// another team's image, also by direct URL. Every page is checked for
// console errors (CSP violations included) and basic accessibility, and
// screenshotted.
func TestConsoleBrowser(t *testing.T) {
	f := newFixtureConfig(t, "", func(c *Config) { c.InsecureCookie = true })
	hs := httptest.NewServer(f.h)
	defer hs.Close()
	defer f.srv.console.Stop() // end live feeds, or Close waits for them
	b := webtest.New(t)
	login := func(b *webtest.Browser, user, pw string) {
		t.Helper()
		browserLogin(t, b, hs.URL, user, pw)
	}
	check := func(b *webtest.Browser, name string) {
		t.Helper()
		checkPage(t, b, name)
	}
	b.Navigate(hs.URL + "/")
	b.WaitVisible("form.login")
	check(b, "login")
	// Keyboard: the username field has the focus; Tab goes through the
	// form, then (past the browser's own controls) to the skip link, the
	// header and the language switch, in reading order.
	if got := strings.Join(b.TabOrder(7), " "); got != "input#password button body a.skip a.brand select#lang-select button" {
		t.Errorf("tab order on the login page: %s", got)
	}
	browserFirstLogin(t, b, hs.URL, f)
	check(b, "account-changed")
	b.Navigate(hs.URL + "/")
	b.WaitVisible("#image-count")
	if got := b.Text("#image-count"); got != "2" {
		t.Errorf("dashboard counts %q images, want 2", got)
	}
	check(b, "dashboard")
	b.Navigate(hs.URL + "/images")
	b.WaitVisible("table")
	if got := b.Text("table"); !strings.Contains(got, "team-a/app") || !strings.Contains(got, "team-b/api") {
		t.Errorf("images table: %q", got)
	}
	check(b, "images")
	t.Logf("images page load: %v", b.Timing(hs.URL+"/images"))
	b.Navigate(hs.URL + "/images/" + strconv.FormatInt(f.imageA.ID, 10))
	b.WaitVisible("h1")
	if got := b.Text("main"); !strings.Contains(got, "CVE-2024-0727") || !strings.Contains(got, "3.0.13-1~deb12u1") {
		t.Errorf("image page: %q", got)
	}
	check(b, "image")

	b.Navigate(hs.URL + "/vulnerabilities?filter=severity%3DMEDIUM")
	b.WaitVisible("table")
	if got := b.Text("table"); !strings.Contains(got, "CVE-2024-0727") {
		t.Errorf("vulnerabilities page: %q", got)
	}
	check(b, "vulnerabilities")

	// Write an assurance policy in the console: a broken one is refused
	// with the parser's reason, a valid one is stored and audited.
	// (The refusal is a 400 page, which the browser logs: a browser of its
	// own keeps that out of the other pages' console checks.)
	bad := webtest.New(t)
	login(bad, "admin", f.adminPwd)
	bad.Navigate(hs.URL + "/policies")
	bad.WaitVisible("#definition")
	bad.SetValue("#definition", "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: prod\ncontrols:\n  disalow_malware: true\n")
	bad.Submit("form.policy")
	bad.WaitVisible(".error")
	if got := bad.Text(".error"); !strings.Contains(got, `unknown key "disalow_malware"`) {
		t.Errorf("invalid policy message: %q", got)
	}
	b.Navigate(hs.URL + "/policies")
	b.WaitVisible("#definition")
	b.SetValue("#definition", "apiVersion: mamori.dev/v1\nkind: AssurancePolicy\nname: prod\ncontrols:\n  disallow_malware: true\n  max_cvss_score: 9.0\n")
	b.Submit("form.policy")
	b.WaitVisible(".notice")
	if got := b.Text("main"); !strings.Contains(got, "prod") {
		t.Errorf("the saved policy is not listed: %q", got)
	}
	check(b, "policies")
	if p, err := f.srv.db.GetPolicy(context.Background(), store.PolicyAssurance, "prod", 0); err != nil {
		t.Errorf("the console's policy is not stored: %v", err)
	} else if pol, err := assurance.Parse("prod", p.Definition); err != nil || pol.Controls.MaxCVSSScore == nil || *pol.Controls.MaxCVSSScore != 9.0 || !pol.Controls.DisallowMalware {
		t.Errorf("stored policy %s: %+v, %v", p.Definition, pol, err)
	}
	b.Navigate(hs.URL + "/audit")
	b.WaitVisible("table")
	if got := b.Text("table"); !strings.Contains(got, "policy.update") || !strings.Contains(got, "auth.login") {
		t.Errorf("audit log page: %q", got)
	}
	check(b, "audit")

	for _, pg := range []struct{ path, want string }{
		{"/risk", "No workloads are reported yet"},
		{"/users", "erin"},
		{"/registries", "No registries"},
		{"/account", "Current password"},
		{"/scopes", "team-a"},
		{"/tokens", "New token"},
		{"/settings", "Settings"},
	} {
		b.Navigate(hs.URL + pg.path)
		b.WaitVisible("h1")
		if got := b.Text("main"); !strings.Contains(got, pg.want) {
			t.Errorf("%s: %q", pg.path, got)
		}
		check(b, strings.TrimPrefix(pg.path, "/"))
	}

	// Switch to Japanese with the header's language form.
	b.Navigate(hs.URL + "/images")
	b.WaitVisible("#lang-select")
	b.SetValue("#lang-select", "ja")
	b.Submit("form.lang")
	b.WaitVisible("#images")
	if got := b.Text("h1"); got != "イメージ" {
		t.Errorf("the images page after switching to Japanese: %q", got)
	}
	check(b, "images-ja")
	b.Navigate(hs.URL + "/lang?l=en&next=/")
	b.WaitVisible("#image-count")

	ja := webtest.NewWithLanguage(t, "ja")
	ja.Navigate(hs.URL + "/login")
	ja.WaitVisible("h1")
	if got := ja.Text("h1"); got != "ログイン" {
		t.Errorf("Japanese login title %q", got)
	}
	check(ja, "login-ja")

	bob := webtest.New(t)
	login(bob, "bob", f.setPassword(t, "bob"))
	bob.Navigate(hs.URL + "/images")
	bob.WaitVisible("table")
	if got := bob.Text("table"); !strings.Contains(got, "team-a/app") || strings.Contains(got, "team-b") {
		t.Errorf("bob's images: %q", got)
	}
	bob.Navigate(hs.URL + "/images/" + strconv.FormatInt(f.imageB.ID, 10))
	bob.WaitVisible("main")
	if got := bob.Text("main"); strings.Contains(got, "team-b") || !strings.Contains(got, "Not found") {
		t.Errorf("bob opens team-b's image by URL: %q", got)
	}
	bob.Navigate(hs.URL + "/users")
	bob.WaitVisible("main")
	if got := bob.Text("main"); strings.Contains(got, "erin") {
		t.Errorf("bob lists users: %q", got)
	}
	bob.Navigate(hs.URL + "/audit")
	bob.WaitVisible("main")
	if got := bob.Text("main"); strings.Contains(got, "auth.login") || !strings.Contains(got, "do not have access") {
		t.Errorf("bob reads the audit log: %q", got)
	}
}

// browserLogin logs user in through the console's form and waits for the
// page the login leads to.
func browserLogin(t *testing.T, b *webtest.Browser, base, user, pw string) {
	t.Helper()
	b.Navigate(base + "/")
	b.WaitVisible("#username")
	b.SetValue("#username", user)
	b.SetValue("#password", pw)
	b.Submit("form.login")
	b.WaitVisible("h1")
	var loc string
	b.Eval("location.pathname", &loc)
	if loc != "/" {
		t.Fatalf("login as %s ended at %s: %q", user, loc, b.Text("main"))
	}
	b.WaitVisible("#image-count")
}

// browserFirstLogin logs the admin in with the generated password, which
// leads to the password change, and replaces it.
func browserFirstLogin(t *testing.T, b *webtest.Browser, base string, f *fixture) {
	t.Helper()
	b.Navigate(base + "/")
	b.WaitVisible("#username")
	b.SetValue("#username", "admin")
	b.SetValue("#password", f.adminPwd)
	b.Submit("form.login")
	b.WaitVisible("#must-change")
	checkPage(t, b, "first-login")
	next := f.adminPwd + " replaced"
	b.SetValue("#current", f.adminPwd)
	b.SetValue("#new", next)
	b.Submit("form.login")
	b.WaitVisible(".notice")
	f.adminPwd = next
}

// checkPage screenshots the page (a build artifact) and checks it for
// accessibility problems and console errors (CSP violations included).
func checkPage(t *testing.T, b *webtest.Browser, name string) {
	t.Helper()
	b.Screenshot(name)
	if errs := b.A11y(); len(errs) > 0 {
		t.Errorf("%s: accessibility problems: %q", name, errs)
	}
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("%s: console errors: %q", name, errs)
	}
}
