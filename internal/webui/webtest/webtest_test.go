package webtest

import (
	"bytes"
	"fmt"
	"html"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/pixel.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pixel)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Result</title><p id="result">%s/%s</p>`,
			html.EscapeString(r.FormValue("name")), html.EscapeString(r.FormValue("team")))
	})
	mux.HandleFunc("/external", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>External</title><img id="remote" alt="remote" src="%s">`,
			html.EscapeString(r.FormValue("src")))
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
	var size []int
	b.Eval("[innerWidth, innerHeight]", &size)
	if want := []int{WindowWidth, WindowHeight}; !slices.Equal(size, want) {
		t.Errorf("viewport = %v, want %v", size, want)
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
	if os.Getenv("MAMORI_ARTIFACTS") == "" {
		t.Setenv("MAMORI_ARTIFACTS", t.TempDir())
	}
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
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	if w := img.Bounds().Dx(); w != WindowWidth {
		t.Errorf("screenshot width = %d, want the window width %d", w, WindowWidth)
	}
}

func TestConsoleErrors(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		page  string
		wants []string
	}{
		{"/error", []string{"boom from console", "undefinedFunction is not defined"}},
		{"/csp", []string{"log(security): ", "Content Security Policy directive 'script-src 'self''"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.page, "/"), func(t *testing.T) {
			b := New(t)
			b.Navigate(srv.URL + tt.page)
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
	tests := []struct {
		name      string
		blockURLs bool
		src       string
		wantError string // "" means the image loads
	}{
		// The DevTools URL block stops names and IP addresses alike; a
		// loopback address other than 127.0.0.1 stands for a remote IP
		// address, so a failure of the block still stays on this machine.
		{"blocked name", true, "http://example.com/x.png", "(blocked: inspector)"},
		{"blocked address", true, "http://127.0.0.2:9/x.png", "(blocked: inspector)"},
		// Under it, the host resolver rules resolve no name but loopback.
		{"unresolved name", false, "http://example.com/x.png", "net::ERR_NAME_NOT_RESOLVED"},
		// Loopback stays reachable by address and by name.
		{"loopback address", true, srv.URL + "/pixel.png", ""},
		{"loopback name", true, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/pixel.png", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := start(t, "en-US", tt.blockURLs)
			b.Navigate(srv.URL + "/external?src=" + url.QueryEscape(tt.src))
			var width int
			b.Eval(`new Promise(r => { const i = document.getElementById("remote");
				const done = () => r(i.naturalWidth);
				if (i.complete) done(); else { i.onload = i.onerror = done; } })`, &width)
			wantWidth := 1
			if tt.wantError != "" {
				wantWidth = 0
			}
			if width != wantWidth {
				t.Errorf("image %s has width %d, want %d", tt.src, width, wantWidth)
			}
			var found bool
			for _, r := range b.Requests() {
				if r.URL != tt.src {
					continue
				}
				found = true
				switch {
				case tt.wantError == "" && (r.Status != http.StatusOK || r.Error != ""):
					t.Errorf("request to %s: status %d, error %q; want 200", r.URL, r.Status, r.Error)
				case tt.wantError != "" && (r.Status != 0 || !strings.Contains(r.Error, tt.wantError)):
					t.Errorf("request to %s: status %d, error %q; want no response and error %s", r.URL, r.Status, r.Error, tt.wantError)
				}
			}
			if !found {
				t.Errorf("no request to %s recorded; requests: %+v", tt.src, b.Requests())
			}
		})
	}
}
