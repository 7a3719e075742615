// Package webui is mamori's web console: server-rendered pages (Go
// html/template, which escapes every value for its context) with a
// stylesheet and one small script of its own for the live event feed
// (every page works without it), served by `mamori server` from files
// embedded in the binary, in English and Japanese.
//
// The pages read data only through the functions in Deps, which the
// server implements with the same authorization and application-scope
// filtering as the REST API: a page can never show more than the API
// would. docs/decisions/0010-web-console.md records why the console is
// rendered on the server.
package webui

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/store"
)

//go:embed templates/*.html static/* i18n/*.json
var files embed.FS

// Languages are the console's languages; the first is the default.
var Languages = []string{"en", "ja"}

// LoginPath is the console's login form.
const LoginPath = "/login"

// langCookie holds the user's language choice.
const langCookie = "mamori_lang"

// CSP is the Content-Security-Policy of every page: scripts only from the
// console's own static files (no inline script, no eval), no inline
// styles, connections only back to the console (the live feed), nothing
// from other origins, no framing.
const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Deps are the console's data sources and actions; each applies the
// caller's permissions and scopes (a denial is an error wrapping
// ErrForbidden, a missing object one wrapping store.ErrNotFound, bad
// input one wrapping store.ErrInvalid or ErrInvalidPolicy).
type Deps struct {
	Auth *auth.Service
	Log  *slog.Logger
	// SSO shows the single sign-on button on the login page (an OIDC
	// provider is configured).
	SSO bool

	// Dashboard sums up the risk the caller may see.
	Dashboard func(r *http.Request) (Dashboard, error)
	// Images lists the images in the caller's scopes, narrowed to the
	// application scope named scope when it is not "" (ScopeNames lists
	// the names to pick from).
	Images     func(r *http.Request, o store.ListOptions, scope string) (store.Page[store.Image], error)
	ScopeNames func(r *http.Request) ([]string, error)
	Image      func(r *http.Request, id int64) (store.Image, error)
	Report     func(r *http.Request, scanID int64) (*report.Scan, error)
	// ScanState returns the status of an image's newest scan request
	// (queued, running, done or failed) for the progress display.
	ScanState func(r *http.Request, imageID int64) (string, error)
	// RequestScan queues a scan of a registry image reference; Rescan
	// queues a new scan of a stored image.
	RequestScan func(r *http.Request, ref string) error
	Rescan      func(r *http.Request, imageID int64) error
	// AddException waives a finding or control on an image's repository.
	AddException func(r *http.Request, im store.Image, e assurance.Exception) error
	// Vulnerabilities lists findings across the images in scope.
	Vulnerabilities func(r *http.Request, o store.ListOptions) (store.Page[store.Vulnerability], error)
	// ImagesWithVulnerability lists the images in scope affected by one
	// vulnerability ID.
	ImagesWithVulnerability func(r *http.Request, id string) (store.Page[store.Image], error)
	// Policies lists the current assurance policies; SavePolicy stores a
	// policy (a new one or a new version) after validating it, and
	// returns a validation error as ErrInvalidPolicy. SetPolicyEnabled
	// switches one on or off; ImportPolicies stores a JSON array of
	// policies (all or none) and ExportPolicies writes them all.
	Policies         func(r *http.Request) (store.Page[store.Policy], error)
	SavePolicy       func(r *http.Request, definition []byte) error
	SetPolicyEnabled func(r *http.Request, name string, enabled bool) error
	ImportPolicies   func(r *http.Request, data []byte) (int, error)
	ExportPolicies   func(r *http.Request) ([]byte, error)
	// Audit lists audit events, newest first; Events returns the security
	// events (denials, failures, runtime detections) among at most limit
	// audit events after seq, oldest first, and the last seq it read, for
	// the live feed.
	Audit  func(r *http.Request, o store.ListOptions) (store.Page[audit.Event], error)
	Events func(r *http.Request, afterSeq int64, limit int) ([]audit.Event, int64, error)
	// Users, Roles, Scopes, Tokens, Settings and Registries list those
	// resources.
	Users      func(r *http.Request, o store.ListOptions) (store.Page[store.User], error)
	Roles      func(r *http.Request) (store.Page[store.Role], error)
	Scopes     func(r *http.Request) (store.Page[store.AppScope], error)
	SaveScope  func(r *http.Request, definition []byte) error
	Tokens     func(r *http.Request) (store.Page[store.APIToken], error)
	Settings   func(r *http.Request) (store.Page[store.Setting], error)
	Registries func(r *http.Request) (store.Page[store.Registry], error)
	// CreateToken issues an API token for the session user with view or
	// edit access (never beyond the user's own) and returns its secret
	// (shown once); RevokeToken revokes one of theirs.
	CreateToken func(r *http.Request, name, access string, ttl time.Duration) (string, error)
	RevokeToken func(r *http.Request, id string) error
	// ChangePassword changes the session user's password;
	// MustChangePassword reports whether they must do so before using
	// the console (the generated first-start password).
	ChangePassword     func(r *http.Request, current, next string) error
	MustChangePassword func(r *http.Request) bool
	// Denied records a refused page or form in the audit trail.
	Denied func(r *http.Request)

	// RuntimePolicies lists the runtime policies. SaveRuntimePolicy
	// creates or replaces one from its YAML or JSON text,
	// SetRuntimePolicyEnabled switches one on or off,
	// LoadBuiltinRuntimePolicy stores a built-in baseline under its name,
	// ImportRuntimePolicies stores a JSON array (all or none) and
	// ExportRuntimePolicies writes them all; validation errors wrap
	// ErrInvalidPolicy. Every change is audited.
	RuntimePolicies          func(r *http.Request) ([]store.RuntimePolicy, error)
	SaveRuntimePolicy        func(r *http.Request, definition []byte) error
	SetRuntimePolicyEnabled  func(r *http.Request, name string, enabled bool) error
	LoadBuiltinRuntimePolicy func(r *http.Request, name string) error
	ImportRuntimePolicies    func(r *http.Request, data []byte) (int, error)
	ExportRuntimePolicies    func(r *http.Request) ([]byte, error)
	// Bypass and SetBypass read and replace the global bypass.
	Bypass    func(r *http.Request) (fleet.Bypass, error)
	SetBypass func(r *http.Request, b fleet.Bypass) error
	// EnforcerGroups lists the enforcer groups; CreateEnforcerGroup and
	// RotateEnrollmentToken return the group's new enrollment token (shown
	// once); UpdateEnforcerGroup changes a group's switches.
	EnforcerGroups        func(r *http.Request) ([]store.EnforcerGroup, error)
	CreateEnforcerGroup   func(r *http.Request, name, description string, s fleet.GroupSettings) (string, error)
	UpdateEnforcerGroup   func(r *http.Request, name string, s fleet.GroupSettings) error
	RotateEnrollmentToken func(r *http.Request, name string) (string, error)
	// Agents lists the enrolled agents on hosts in the caller's scopes.
	Agents func(r *http.Request) ([]store.Agent, error)
	// Inventory returns the latest inventory of every agent in the
	// caller's scopes that reported recently.
	Inventory func(r *http.Request) ([]store.AgentInventory, error)
	// LookupImages maps image references to the stored images in the
	// caller's scopes; references without a stored image are left out.
	LookupImages func(r *http.Request, refs []string) (map[string]store.Image, error)
	// Now is the clock agent health is judged by (time.Now when nil).
	Now func() time.Time
}

// Dashboard is the risk summary of the images in the caller's scopes.
type Dashboard struct {
	Images int64
	// ByAssurance counts images by their latest assurance status
	// (store.AssurancePass, AssuranceFail, AssuranceWarn, AssuranceNone).
	ByAssurance map[string]int64
	// BySeverity and Fixable count the latest scans' findings by
	// severity, all of them and those with a fix; nil when the caller may
	// not see vulnerabilities.
	BySeverity map[string]int64
	Fixable    map[string]int64
	// Trend sums the scans of the last days.
	Trend []store.TrendDay
	// Risky are the images with the most critical and high findings.
	Risky []store.Image
	// Events are recent security events (denials, failures, runtime
	// detections), newest first, and LastSeq the audit trail's newest
	// sequence number, where the live feed starts; Events is nil when
	// the caller may not read the audit trail.
	Events  []audit.Event
	LastSeq int64
	// Agents are the enrolled agents in the caller's scopes, nil when the
	// caller may not see enforcers.
	Agents []store.Agent
}

// ErrInvalidPolicy wraps a policy validation error.
var ErrInvalidPolicy = errors.New("invalid policy")

// ErrWrongPassword is returned when the current password is wrong.
var ErrWrongPassword = errors.New("wrong password")

// ErrForbidden marks a page the caller may not see.
var ErrForbidden = errors.New("forbidden")

// UI serves the console.
type UI struct {
	d     Deps
	pages map[string]*template.Template
	msgs  map[string]map[string]string
	files http.Handler
	// poll is how often the live feed looks for new events.
	poll time.Duration
	// stop ends every live feed (Stop closes it once).
	stop     chan struct{}
	stopOnce sync.Once
}

// Stop ends the live feeds in progress and any started later, so that a
// server shutdown does not wait for them.
func (u *UI) Stop() { u.stopOnce.Do(func() { close(u.stop) }) }

// pageNames are the templates, one per page.
var pageNames = []string{"login", "dashboard", "images", "image", "error", "vulnerabilities", "vulnerability",
	"policies", "audit", "account", "risk", "users", "registries", "tokens", "scopes", "settings",
	"runtime-policies", "enforcers", "workload", "host"}

// New parses the templates and message catalogs.
func New(d Deps) (*UI, error) {
	u := &UI{d: d, pages: map[string]*template.Template{}, msgs: map[string]map[string]string{}, poll: time.Second, stop: make(chan struct{})}
	for _, l := range Languages {
		b, err := files.ReadFile("i18n/" + l + ".json")
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("webui: catalog %s: %w", l, err)
		}
		u.msgs[l] = m
	}
	for key := range u.msgs["en"] {
		if _, ok := u.msgs["ja"][key]; !ok {
			return nil, fmt.Errorf("webui: message %q has no Japanese text", key)
		}
	}
	for key := range u.msgs["ja"] {
		if _, ok := u.msgs["en"][key]; !ok {
			return nil, fmt.Errorf("webui: message %q has no English text", key)
		}
	}
	funcs := template.FuncMap{
		"t":     func(string) string { return "" }, // replaced per request
		"join":  strings.Join,
		"pair":  func(key string, f any) map[string]any { return map[string]any{"Key": key, "Findings": f} },
		"bar":   barWidth,
		"short": shortDigest,
		"add64": func(a, b int64) int64 { return a + b },
		"event": eventDetail,
		"lower": strings.ToLower,
	}
	for _, p := range pageNames {
		t, err := template.New(p).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: template %s: %w", p, err)
		}
		u.pages[p] = t
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	u.files = http.StripPrefix("/static/", http.FileServerFS(static))
	return u, nil
}

// page is what every template gets.
type page struct {
	Lang, Title, Page, Path, User, CSRF string
	Error                               string
	// Notice is a message key shown as a success note.
	Notice string
	// Live turns on the live feed script for the page.
	Live bool
	Data any
}

// language picks the user's language: the cookie, else the browser's
// Accept-Language, else English.
func language(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		for _, l := range Languages {
			if c.Value == l {
				return l
			}
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		for _, l := range Languages {
			if base == l {
				return l
			}
		}
	}
	return Languages[0]
}

// securityHeaders sets the headers every console response carries.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, which the CSRF check must refuse.
	h.Set("Referrer-Policy", "same-origin")
}

// render writes a page with status.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Lang = language(r)
	p.Path = r.URL.Path
	if ap, ok := auth.PrincipalFrom(r.Context()); ok && ap.Method == auth.MethodSession {
		p.User, p.CSRF = ap.Username, ap.CSRFToken()
	}
	msgs := u.msgs[p.Lang]
	t, err := u.pages[name].Clone()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	t.Funcs(template.FuncMap{"t": func(key string) string {
		if s, ok := msgs[key]; ok {
			return s
		}
		return key
	}})
	if p.Title == "" {
		p.Title = msgs[name+".title"]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		u.d.Log.ErrorContext(r.Context(), "rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	securityHeaders(h)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// msg returns the text of a message key in the request's language.
func (u *UI) msg(r *http.Request, key string) string {
	if s, ok := u.msgs[language(r)][key]; ok {
		return s
	}
	return key
}

// ServeHTTP routes the console's pages.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/static/") && r.Method == http.MethodGet:
		securityHeaders(w.Header())
		u.files.ServeHTTP(w, r)
		return
	case r.URL.Path == LoginPath && r.Method == http.MethodGet:
		u.render(w, r, http.StatusOK, "login", u.loginPage(""))
		return
	case r.URL.Path == LoginPath && r.Method == http.MethodPost:
		u.login(w, r)
		return
	case r.URL.Path == "/lang" && r.Method == http.MethodGet:
		u.setLanguage(w, r)
		return
	}
	if _, ok := auth.PrincipalFrom(r.Context()); !ok {
		if r.Method != http.MethodGet {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
		return
	}
	// The generated first-start password must be replaced before the
	// console can be used.
	if r.URL.Path != "/account" && r.URL.Path != "/logout" && u.d.MustChangePassword(r) {
		if r.Method != http.MethodGet {
			http.Error(w, "change your password first", http.StatusForbidden)
			return
		}
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost {
		u.post(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/":
		u.dashboard(w, r)
	case path == "/images":
		u.images(w, r)
	case strings.HasPrefix(path, "/images/"):
		u.image(w, r, strings.TrimPrefix(path, "/images/"), "", "")
	case path == "/vulnerabilities":
		u.vulnerabilities(w, r)
	case strings.HasPrefix(path, "/vulnerabilities/"):
		u.vulnerability(w, r, strings.TrimPrefix(path, "/vulnerabilities/"))
	case path == "/policies":
		u.policies(w, r, http.StatusOK, "", "", "")
	case path == "/policies/export":
		u.exportPolicies(w, r)
	case path == "/audit":
		u.auditLog(w, r)
	case path == "/events":
		u.live(w, r)
	case path == "/risk":
		// Workloads arrive from enforcers and the kube-enforcer; until
		// they report, the page says so instead of inventing data.
		u.riskPage(w, r)
	case path == "/risk/workload":
		u.workloadPage(w, r)
	case path == "/risk/host":
		u.hostPage(w, r)
	case path == "/runtime-policies":
		u.runtimePolicies(w, r, http.StatusOK, "", "", "")
	case path == "/runtime-policies/export":
		u.exportRuntimePolicies(w, r)
	case path == "/enforcers":
		u.enforcers(w, r, http.StatusOK, page{})
	case path == "/users":
		p, err := u.d.Users(r, store.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: 100})
		if err != nil {
			u.fail(w, r, err)
			return
		}
		u.render(w, r, http.StatusOK, "users", page{Page: "users", Data: map[string]any{"Items": p.Items, "Next": p.Next}})
	case path == "/scopes":
		u.scopes(w, r, http.StatusOK, "", "", "")
	case path == "/tokens":
		u.tokens(w, r, http.StatusOK, page{})
	case path == "/settings":
		u.settings(w, r)
	case path == "/registries":
		p, err := u.d.Registries(r)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		u.render(w, r, http.StatusOK, "registries", page{Page: "registries", Data: map[string]any{"Items": p.Items}})
	case path == "/account":
		u.account(w, r, http.StatusOK, page{})
	default:
		u.render(w, r, http.StatusNotFound, "error", page{Title: "404", Error: "error.notFound"})
	}
}

// post routes the console's forms. Every form carries the session's CSRF
// token (checked by the auth middleware before this runs).
func (u *UI) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/logout":
		if err := u.d.Auth.EndSession(w, r); err != nil {
			u.fail(w, r, err)
			return
		}
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
	case path == "/policies":
		u.savePolicy(w, r)
	case path == "/policies/toggle":
		u.togglePolicy(w, r)
	case path == "/policies/import":
		u.importPolicies(w, r)
	case path == "/runtime-policies":
		u.saveRuntimePolicy(w, r)
	case path == "/runtime-policies/toggle":
		u.toggleRuntimePolicy(w, r)
	case path == "/runtime-policies/import":
		u.importRuntimePolicies(w, r)
	case path == "/runtime-policies/builtin":
		u.loadBuiltin(w, r)
	case path == "/enforcers/groups":
		u.createGroup(w, r)
	case path == "/enforcers/settings":
		u.updateGroup(w, r)
	case path == "/enforcers/token":
		u.rotateGroupToken(w, r)
	case path == "/enforcers/bypass":
		u.saveBypass(w, r)
	case path == "/images":
		u.requestScan(w, r)
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/rescan"):
		u.rescan(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/rescan"))
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/exceptions"):
		u.addException(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/exceptions"))
	case path == "/scopes":
		u.saveScope(w, r)
	case path == "/tokens":
		u.createToken(w, r)
	case path == "/tokens/revoke":
		u.revokeToken(w, r)
	case path == "/account":
		u.changePassword(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// fail renders an error page: not found and forbidden as such, anything
// else as a logged server error.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		u.render(w, r, http.StatusNotFound, "error", page{Title: "404", Error: "error.notFound"})
	case errors.Is(err, ErrForbidden):
		u.d.Denied(r)
		u.render(w, r, http.StatusForbidden, "error", page{Title: "403", Error: "error.forbidden"})
	default:
		u.d.Log.ErrorContext(r.Context(), "console page", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.render(w, r, http.StatusBadRequest, "login", u.loginPage("login.failed"))
		return
	}
	id, err := u.d.Auth.Login(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"), u.d.Auth.ClientIP(r))
	var le *auth.LoginError
	switch {
	case errors.As(err, &le) && le.Code == "invalid_credentials":
		u.render(w, r, http.StatusUnauthorized, "login", u.loginPage("login.failed"))
		return
	case errors.As(err, &le):
		u.render(w, r, http.StatusTooManyRequests, "login", u.loginPage("login.locked"))
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	if err := u.d.Auth.StartSession(w, r, id); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// loginPage is the login form with the problem errKey ("" for none).
func (u *UI) loginPage(errKey string) page {
	return page{Page: "login", Error: errKey, Data: map[string]any{"SSO": u.d.SSO}}
}

// setLanguage stores the language choice and returns to a local page.
func (u *UI) setLanguage(w http.ResponseWriter, r *http.Request) {
	l := r.URL.Query().Get("l")
	ok := false
	for _, known := range Languages {
		ok = ok || l == known
	}
	if ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// localPath returns next when it is a path on this site, else "/": never
// "//host", a scheme or a header break.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

// pathID parses a positive numeric path element.
func pathID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}
