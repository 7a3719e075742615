// Package webtest drives a real headless Chromium for the end-to-end tests of
// the mamori web console. It is meant for tests only, but it is a normal
// package so that several test packages can share it.
//
// A [Browser] runs one Chromium process with a private profile in the test's
// temporary directory. It only reaches loopback: the tab blocks (through the
// DevTools protocol) every request to a host other than 127.0.0.1, localhost
// and [::1], including IP addresses; under that, every host name except
// 127.0.0.1 and localhost resolves to nothing for the whole browser, no proxy
// is used, and the background services of the browser (updates, sync,
// translation, default apps) are off. Every helper fails the test, naming the selector or URL, when
// it does not finish within [Browser.Timeout].
package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mamorisec/mamori/internal/testenv"
)

// DefaultTimeout is the time each helper waits before it fails the test.
const DefaultTimeout = 10 * time.Second

// startTimeout bounds the start of the browser process.
const startTimeout = 30 * time.Second

// Window size of every browser, in CSS pixels.
const (
	WindowWidth  = 1280
	WindowHeight = 900
)

// hostResolverRules makes every host name except loopback unresolvable, so a
// page can never reach the network.
const hostResolverRules = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"

// loopbackOnly lets requests reach loopback hosts and blocks all others,
// including hosts written as IP addresses, which the host resolver rules
// cannot stop because they are never resolved.
var loopbackOnly = []*network.BlockPattern{
	{URLPattern: "*://127.0.0.1:*/*", Block: false},
	{URLPattern: "*://localhost:*/*", Block: false},
	{URLPattern: `*://\[\:\:1\]:*/*`, Block: false},
	{URLPattern: "*://*:*/*", Block: true},
}

// Browser is a headless Chromium with one tab, bound to a test. Its helpers
// drive that one tab, so call them from the test's goroutine only.
type Browser struct {
	// Timeout is how long each helper waits; New sets DefaultTimeout.
	Timeout time.Duration

	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	errs     []string
	requests []Request
	byID     map[network.RequestID]int
}

// Request is a network request that the page made.
type Request struct {
	URL    string
	Status int64  // HTTP status; 0 when no response arrived
	Error  string // why loading failed: Chromium's error text (net::ERR_NAME_NOT_RESOLVED) or "(blocked: reason)"
}

// New starts a headless Chromium with the language en-US. It skips the test
// outside CI when Chromium is missing (fails under CI=true), and stops the
// browser when the test ends.
func New(t testing.TB) *Browser {
	t.Helper()
	return NewWithLanguage(t, "en-US")
}

// NewWithLanguage is New with the browser language lang (for example "ja"):
// it sets --lang, the Accept-Language header and navigator.language.
func NewWithLanguage(t testing.TB, lang string) *Browser {
	t.Helper()
	return start(t, lang, true)
}

// start starts the browser; blockURLs turns on the DevTools URL block that
// stops requests to any host but loopback (only tests of the host resolver
// rules turn it off).
func start(t testing.TB, lang string, blockURLs bool) *Browser {
	t.Helper()
	exe := testenv.Chromium(t)
	profile := t.TempDir() // before Cleanup below, so it is removed after the browser stops
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(WindowWidth, WindowHeight),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.Flag("host-resolver-rules", hostResolverRules),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-service-autorun", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{Timeout: DefaultTimeout, t: t, byID: map[network.RequestID]int{}}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.onEvent))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b.ctx = ctx

	// The first Run starts the browser and binds it to its context, so it
	// cannot take a deadline; a timer cancels a start that hangs.
	timer := time.AfterFunc(startTimeout, cancel)
	err := chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		t.Fatalf("webtest: start %s: %v", exe, err)
	}
	version, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("webtest: read browser version: %v", err)
	}
	if blockURLs {
		b.call("block non-loopback URLs", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: loopbackOnly})
			return err
		}))
	}
	// The window size flag does not fix the viewport of a headless tab.
	b.call("set viewport", chromedp.EmulateViewport(WindowWidth, WindowHeight))
	b.call("set language "+lang, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: version.UserAgent, AcceptLanguage: lang,
		}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: lang}); err != nil {
			return err
		}
		// A headless tab has no window focus; emulate it so focus and
		// keyboard navigation behave as in a visible window.
		_, err := cdp.Call(ctx, tg, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	}))
	return b
}

// onEvent records console errors and network requests. It runs on the read
// loop of the tab, so it only appends under the lock.
func (b *Browser) onEvent(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			b.errs = append(b.errs, "console."+string(e.Type)+": "+argsText(e.Args))
		}
	case *runtime.EventExceptionThrown:
		b.errs = append(b.errs, "exception: "+exceptionText(e.ExceptionDetails))
	case *log.EventEntryAdded:
		if e.Entry != nil && e.Entry.Level == log.EntryLevelError {
			b.errs = append(b.errs, "log("+string(e.Entry.Source)+"): "+e.Entry.Text)
		}
	case *network.EventRequestWillBeSent:
		if e.Request == nil {
			return
		}
		if i, ok := b.byID[e.RequestID]; ok && b.requests[i].URL == e.Request.URL {
			return
		}
		b.byID[e.RequestID] = len(b.requests)
		b.requests = append(b.requests, Request{URL: e.Request.URL})
	case *network.EventResponseReceived:
		if i, ok := b.byID[e.RequestID]; ok && e.Response != nil {
			b.requests[i].Status = e.Response.Status
		}
	case *network.EventLoadingFailed:
		if i, ok := b.byID[e.RequestID]; ok {
			msg := e.ErrorText
			if e.BlockedReason != "" {
				msg = strings.TrimSpace(msg + " (blocked: " + string(e.BlockedReason) + ")")
			}
			b.requests[i].Error = msg
		}
	}
}

// argsText renders console arguments roughly as the DevTools console does.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == nil:
		case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.UnserializableValue != "":
			parts = append(parts, string(a.UnserializableValue))
		default:
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

// exceptionText is the message of an uncaught exception.
func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown exception"
	}
	text := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		text += " " + d.Exception.Description
	}
	if d.URL != "" {
		text += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	}
	return text
}

// call runs the action with the timeout and fails the test naming what.
func (b *Browser) call(what string, a chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	run(b, what, a)
}

// run runs an action that returns a value with the timeout, and fails the
// test naming what on error.
func run[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			b.t.Fatalf("webtest: %s: timed out after %v", what, b.Timeout)
		}
		b.t.Fatalf("webtest: %s: %v", what, err)
	}
	return v
}

// Navigate loads url and waits for its load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.call(fmt.Sprintf("navigate to %s", url), chromedp.Navigate(url))
}

// Text returns the visible text of the first element matching the CSS
// selector, waiting for it to appear.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return run(b, fmt.Sprintf("text of %q", selector), chromedp.Text(chromedp.CSS(selector)))
}

// Click clicks the first element matching the CSS selector once it is visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.call(fmt.Sprintf("click %q", selector), chromedp.Click(chromedp.CSS(selector)))
}

// SetValue sets the value of the form control matching the CSS selector.
func (b *Browser) SetValue(selector, value string) {
	b.t.Helper()
	b.call(fmt.Sprintf("set value of %q", selector), chromedp.SetValue(chromedp.CSS(selector), value))
}

// Type focuses the element matching the CSS selector and types text as key
// events, as a user would.
func (b *Browser) Type(selector, text string) {
	b.t.Helper()
	b.call(fmt.Sprintf("type into %q", selector), chromedp.SendKeys(chromedp.CSS(selector), text))
}

// Submit submits the form of the element matching the CSS selector. It does
// not wait for the next page: follow it with WaitVisible.
func (b *Browser) Submit(selector string) {
	b.t.Helper()
	b.call(fmt.Sprintf("submit %q", selector), chromedp.Submit(chromedp.CSS(selector)))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	b.call(fmt.Sprintf("wait for %q to be visible", selector), chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Eval evaluates the JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out; out may be nil.
func (b *Browser) Eval(js string, out any) {
	b.t.Helper()
	raw := run(b, fmt.Sprintf("evaluate %q", abbreviate(js)), chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if out == nil {
		return
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("webtest: evaluate %q: decode result %s: %v", abbreviate(js), abbreviate(string(raw)), err)
	}
}

// abbreviate shortens a script for error messages.
func abbreviate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// ArtifactsDir returns the directory for screenshots: $MAMORI_ARTIFACTS if
// set, else a directory under the test's temporary directory.
func (b *Browser) ArtifactsDir() string {
	b.t.Helper()
	dir := os.Getenv("MAMORI_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(b.t.TempDir(), "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatalf("webtest: create artifacts directory: %v", err)
	}
	return dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG named after the test and name in the
// artifacts directory, logs its path and returns it.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png := run(b, fmt.Sprintf("screenshot %q", name), chromedp.FullScreenshot(100))
	file := unsafeName.ReplaceAllString(b.t.Name()+"-"+name, "_") + ".png"
	path := filepath.Join(b.ArtifactsDir(), file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("webtest: screenshot %q: %v", name, err)
	}
	b.t.Logf("webtest: screenshot %s", path)
	return path
}

// ConsoleErrors returns the errors seen so far in the tab: console.error and
// failed console.assert calls, uncaught exceptions and unhandled rejections,
// and error entries of the browser log, prefixed log(source). Those include
// failed resource loads (log(network)) and Content Security Policy violations
// (log(security); Chromium words them "Refused to ..." or, since about
// version 130, "Executing inline script violates ... Content Security Policy
// directive ...").
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Requests returns the network requests that the tab made so far.
func (b *Browser) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.requests...)
}

// timingJS waits for loadEventEnd and returns navigationStart→loadEventEnd in
// milliseconds.
const timingJS = `new Promise(resolve => {
	const check = () => {
		const t = performance.timing;
		if (t.loadEventEnd > 0) resolve(t.loadEventEnd - t.navigationStart);
		else setTimeout(check, 10);
	};
	check();
})`

// Timing loads url and returns its load time, from navigationStart to
// loadEventEnd as the page's window.performance reports it.
func (b *Browser) Timing(url string) time.Duration {
	b.t.Helper()
	b.Navigate(url)
	ms := run(b, fmt.Sprintf("load timing of %s", url), chromedp.Evaluate[float64](timingJS, chromedp.EvalAwaitPromise))
	return time.Duration(ms * float64(time.Millisecond))
}

// describeJS names an element as tag#id.class, with its aria-label.
const describeJS = `(el => {
	if (!el) return "(none)";
	let s = el.tagName.toLowerCase();
	if (el.id) s += "#" + el.id;
	for (const c of el.classList) s += "." + c;
	const label = el.getAttribute("aria-label");
	if (label) s += '[aria-label="' + label + '"]';
	return s;
})(document.activeElement)`

// TabOrder presses Tab n times and returns, for each press, the focused
// element as tag#id.class followed by [aria-label="..."] when it has one
// ("body" when focus left the page content).
func (b *Browser) TabOrder(n int) []string {
	b.t.Helper()
	order := make([]string, 0, n)
	for i := range n {
		b.call(fmt.Sprintf("press Tab (%d of %d)", i+1, n), chromedp.KeyEvent(kb.Tab))
		order = append(order, run(b, "describe focused element", chromedp.Evaluate[string](describeJS)))
	}
	return order
}

// A11y runs basic accessibility checks in the page and returns the problems
// found, each naming the element (tag#id.class) and the problem:
//
//   - <html> without a lang attribute;
//   - duplicate id attributes;
//   - form controls (input, select, textarea; not hidden or button inputs)
//     without a non-empty <label>, aria-label, aria-labelledby or title;
//   - images without an alt attribute (alt="" marks a decorative image);
//   - buttons and links without accessible text (text, aria-label,
//     aria-labelledby, title, value, or alt of an image inside);
//   - visible text with contrast below 4.5:1 (3:1 for large text: at least
//     24px, or 18.66px and bold), as WCAG 2 AA asks.
//
// The contrast is an approximation: the text colour is composited over the
// background found by walking up the ancestors, where translucent
// background colours are blended until an opaque one is met (white when none
// is). Background images, gradients, opacity, filters, text shadows and
// positioned elements overlapping from elsewhere are ignored. Colours are
// converted to sRGB by painting them on a canvas, so any CSS colour syntax
// works.
func (b *Browser) A11y() []string {
	b.t.Helper()
	var problems []string
	b.Eval(a11yJS, &problems)
	return problems
}
