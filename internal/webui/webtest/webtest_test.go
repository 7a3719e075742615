package webtest

import (
	"bytes"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

// pages are the small HTML pages that the tests load.
var pages = map[string]string{
	"/hello": `<!doctype html><html lang="en"><title>Hello</title>
<h1 id="greeting">Hello, mamori</h1>`,

	"/form": `<!doctype html><html lang="en"><title>Form</title>
<form id="f" action="/result" method="get">
<label for="name">Name</label><input id="name" name="name">
<label for="team">Team</label><input id="team" name="team">
<button type="submit">Send</button>
</form>`,

	"/error": `<!doctype html><html lang="en"><title>Error</title>
<script>console.error("boom from console"); undefinedFunction();</script>`,

	"/csp": `<!doctype html><html lang="en"><title>CSP</title>
<p id="state">blocked</p>
<script>document.getElementById("state").textContent = "ran";</script>`,

	"/tabs": `<!doctype html><html lang="en"><title>Tabs</title>
<a id="first" href="#top">First</a>
<input id="second" aria-label="Second field">
<span>not focusable</span>
<button id="third" class="primary wide">Third</button>`,

	"/bad": `<!doctype html><html><title>Bad</title>
<input id="lonely" name="q">
<p id="faint" style="color:#bbb;background:#fff">hard to read</p>
<img src="/pixel.png">
<button id="empty"></button>
<span id="twice">a</span><span id="twice">b</span>`,

	"/good": `<!doctype html><html lang="en"><title>Good</title>
<main>
<label for="q">Search</label><input id="q" name="q">
<input aria-label="Filter" name="filter">
<p style="color:#222;background:#fff">easy to read</p>
<p style="color:#fff;background:#1a4d8f">white on dark blue</p>
<img src="/pixel.png" alt="status">
<button>Scan</button>
<a href="/hello">Hello</a>
</main>`,

	"/external": `<!doctype html><html lang="en"><title>External</title>
<img id="remote" alt="remote" src="http://example.com/x.png">`,
}

// pixel is a 1x1 PNG.
var pixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// newServer serves pages on 127.0.0.1.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, body := range pages {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if path == "/csp" {
				w.Header().Set("Content-Security-Policy", "script-src 'self'")
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		})
	}
	mux.HandleFunc("/pixel.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pixel)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Result</title><p id="result">%s/%s</p>`,
			html.EscapeString(r.FormValue("name")), html.EscapeString(r.FormValue("team")))
	})
	mux.HandleFunc("/lang", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Lang</title>
<p id="header">%s</p><p id="nav"></p>
<script>document.getElementById("nav").textContent = navigator.language;</script>`,
			html.EscapeString(r.Header.Get("Accept-Language")))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestNavigateAndText(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	b.Navigate(srv.URL + "/hello")
	if got, want := b.Text("#greeting"), "Hello, mamori"; got != want {
		t.Errorf("Text(#greeting) = %q, want %q", got, want)
	}
	var title string
	b.Eval("document.title", &title)
	if title != "Hello" {
		t.Errorf("document.title = %q, want Hello", title)
	}
	if d := b.Timing(srv.URL + "/hello"); d <= 0 || d > DefaultTimeout {
		t.Errorf("Timing = %v, want a positive load time below %v", d, DefaultTimeout)
	}
	if errs := b.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("ConsoleErrors on a clean page = %q, want none", errs)
	}
}

func TestFormFillAndSubmit(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	b.Navigate(srv.URL + "/form")
	b.SetValue("#name", "Aiko")
	b.Type("#team", "blue")
	b.Submit("#name")
	b.WaitVisible("#result")
	if got, want := b.Text("#result"), "Aiko/blue"; got != want {
		t.Errorf("result = %q, want %q", got, want)
	}
	b.Navigate(srv.URL + "/form")
	b.SetValue("#name", "Ken")
	b.Click("button[type=submit]")
	b.WaitVisible("#result")
	if got, want := b.Text("#result"), "Ken/"; got != want {
		t.Errorf("result after click = %q, want %q", got, want)
	}
}

func TestScreenshot(t *testing.T) {
	srv := newServer(t)
	t.Setenv("MAMORI_ARTIFACTS", t.TempDir())
	b := New(t)
	b.Navigate(srv.URL + "/good")
	path := b.Screenshot("good page")
	if !strings.HasPrefix(path, os.Getenv("MAMORI_ARTIFACTS")) {
		t.Errorf("screenshot %s is not in $MAMORI_ARTIFACTS", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 100 || !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot %s is not a non-empty PNG (%d bytes)", path, len(data))
	}
}

func TestConsoleErrors(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		page  string
		wants []string
	}{
		{"/error", []string{"boom from console", "undefinedFunction is not defined"}},
		{"/csp", []string{"Refused to execute inline script"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.page, "/"), func(t *testing.T) {
			b := New(t)
			b.Navigate(srv.URL + tt.page)
			b.WaitVisible("title, body")
			errs := strings.Join(b.ConsoleErrors(), "\n")
			for _, want := range tt.wants {
				if !strings.Contains(errs, want) {
					t.Errorf("ConsoleErrors = %q, want one containing %q", errs, want)
				}
			}
		})
	}
}

func TestCSPBlocksInlineScript(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	b.Navigate(srv.URL + "/csp")
	if got := b.Text("#state"); got != "blocked" {
		t.Errorf("inline script ran despite CSP: #state = %q", got)
	}
}

func TestTabOrder(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	b.Navigate(srv.URL + "/tabs")
	got := b.TabOrder(3)
	want := []string{"a#first", `input#second[aria-label="Second field"]`, "button#third.primary.wide"}
	if !slices.Equal(got, want) {
		t.Errorf("TabOrder(3) = %q, want %q", got, want)
	}
}

func TestA11y(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	tests := []struct {
		page  string
		wants []string // substrings each expected in some problem; nil means no problem
	}{
		{"/good", nil},
		{"/bad", []string{
			"html: missing lang attribute",
			"input#lonely: form control without label",
			"p#faint: contrast",
			"img: image without alt",
			"button#empty: button without accessible text",
			`duplicate id "twice"`,
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.page, "/"), func(t *testing.T) {
			b.Navigate(srv.URL + tt.page)
			problems := b.A11y()
			if tt.wants == nil && len(problems) != 0 {
				t.Errorf("A11y() = %q, want no problems", problems)
			}
			all := strings.Join(problems, "\n")
			for _, want := range tt.wants {
				if !strings.Contains(all, want) {
					t.Errorf("A11y() = %q, want a problem containing %q", problems, want)
				}
			}
		})
	}
}

func TestLanguage(t *testing.T) {
	srv := newServer(t)
	b := NewWithLanguage(t, "ja")
	b.Navigate(srv.URL + "/lang")
	if got := b.Text("#header"); !strings.HasPrefix(got, "ja") {
		t.Errorf("Accept-Language = %q, want ja first", got)
	}
	if got := b.Text("#nav"); got != "ja" {
		t.Errorf("navigator.language = %q, want ja", got)
	}
}

func TestNoExternalNetwork(t *testing.T) {
	srv := newServer(t)
	b := New(t)
	b.Navigate(srv.URL + "/external")
	var complete bool
	b.Eval(`new Promise(r => { const i = document.getElementById("remote");
		if (i.complete) r(true); else { i.onload = i.onerror = () => r(true); } })`, &complete)
	var found bool
	for _, r := range b.Requests() {
		if !strings.HasPrefix(r.URL, "http://example.com/") {
			continue
		}
		found = true
		if r.Status != 0 || r.Error == "" {
			t.Errorf("request to %s: status %d, error %q; want it to fail without a response", r.URL, r.Status, r.Error)
		}
		t.Logf("external request %s failed: %s", r.URL, r.Error)
	}
	if !found {
		t.Errorf("no request to example.com recorded; requests: %+v", b.Requests())
	}
	var width int
	b.Eval(`document.getElementById("remote").naturalWidth`, &width)
	if width != 0 {
		t.Errorf("external image loaded with width %d", width)
	}
}
