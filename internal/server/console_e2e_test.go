package server

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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
	b := webtest.New(t)
	login := func(b *webtest.Browser, user, pw string) {
		t.Helper()
		b.Navigate(hs.URL + "/")
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
	check := func(b *webtest.Browser, name string) {
		t.Helper()
		b.Screenshot(name)
		if errs := b.A11y(); len(errs) > 0 {
			t.Errorf("%s: accessibility problems: %q", name, errs)
		}
		if errs := b.ConsoleErrors(); len(errs) > 0 {
			t.Errorf("%s: console errors: %q", name, errs)
		}
	}
	b.Navigate(hs.URL + "/")
	b.WaitVisible("form.login")
	check(b, "login")
	login(b, "admin", f.adminPwd)
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
}
