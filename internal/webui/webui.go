// Package webui is mamori's web console: server-rendered pages (Go
// html/template, which escapes every value for its context) with a
// stylesheet and no scripts, served by `mamori server` from files embedded
// in the binary, in English and Japanese.
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

// CSP is the Content-Security-Policy of every page: no scripts at all, no
// inline styles, nothing from other origins, no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Counts summarizes what the caller may see.
type Counts struct {
	Images     int64
	BySeverity map[string]int64
}

// Deps are the console's data sources; each applies the caller's
// permissions and scopes (a denial is an error wrapping ErrForbidden, a
// missing object one wrapping store.ErrNotFound).
type Deps struct {
	Auth   *auth.Service
	Images func(r *http.Request, o store.ListOptions) (store.Page[store.Image], error)
	Image  func(r *http.Request, id int64) (store.Image, error)
	Report func(r *http.Request, scanID int64) (*report.Scan, error)
	Counts func(r *http.Request) (Counts, error)
	// Vulnerabilities lists findings across the images in scope.
	Vulnerabilities func(r *http.Request, o store.ListOptions) (store.Page[store.Vulnerability], error)
	// Policies lists the current assurance policies; SavePolicy stores a
	// policy (a new one or a new version) after validating it, and
	// returns a validation error as ErrInvalidPolicy.
	Policies   func(r *http.Request) (store.Page[store.Policy], error)
	SavePolicy func(r *http.Request, definition []byte) error
	// Audit lists audit events, newest first.
	Audit func(r *http.Request, o store.ListOptions) (store.Page[audit.Event], error)
	// Users and Registries list those resources.
	Users      func(r *http.Request, o store.ListOptions) (store.Page[store.User], error)
	Registries func(r *http.Request) (store.Page[store.Registry], error)
	// ChangePassword changes the session user's password.
	ChangePassword func(r *http.Request, current, next string) error
	Log            *slog.Logger
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
}

// New parses the templates and message catalogs.
func New(d Deps) (*UI, error) {
	u := &UI{d: d, pages: map[string]*template.Template{}, msgs: map[string]map[string]string{}}
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
	funcs := template.FuncMap{
		"t":    func(string) string { return "" }, // replaced per request
		"join": strings.Join,
		"pair": func(key string, f any) map[string]any { return map[string]any{"Key": key, "Findings": f} },
	}
	for _, p := range []string{"login", "dashboard", "images", "image", "error", "vulnerabilities", "policies", "audit", "account", "risk", "users", "registries"} {
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
	Data                                any
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
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, which the CSRF check must refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ServeHTTP routes the console's pages.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/static/") && r.Method == http.MethodGet:
		w.Header().Set("Content-Security-Policy", CSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		u.files.ServeHTTP(w, r)
	case r.URL.Path == LoginPath && r.Method == http.MethodGet:
		u.render(w, r, http.StatusOK, "login", page{Page: "login"})
	case r.URL.Path == LoginPath && r.Method == http.MethodPost:
		u.login(w, r)
	case r.URL.Path == "/logout" && r.Method == http.MethodPost:
		if err := u.d.Auth.EndSession(w, r); err != nil {
			u.fail(w, r, err)
			return
		}
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
	case r.URL.Path == "/lang" && r.Method == http.MethodGet:
		u.setLanguage(w, r)
	case r.URL.Path == "/policies" && r.Method == http.MethodPost:
		u.savePolicy(w, r)
	case r.URL.Path == "/account" && r.Method == http.MethodPost:
		u.changePassword(w, r)
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		if _, ok := auth.PrincipalFrom(r.Context()); !ok {
			http.Redirect(w, r, LoginPath, http.StatusSeeOther)
			return
		}
		switch {
		case r.URL.Path == "/":
			u.dashboard(w, r)
		case r.URL.Path == "/images":
			u.images(w, r)
		case strings.HasPrefix(r.URL.Path, "/images/"):
			u.image(w, r, strings.TrimPrefix(r.URL.Path, "/images/"))
		case r.URL.Path == "/vulnerabilities":
			u.vulnerabilities(w, r)
		case r.URL.Path == "/policies":
			u.policies(w, r, http.StatusOK, "", "", "")
		case r.URL.Path == "/audit":
			u.auditLog(w, r)
		case r.URL.Path == "/risk":
			// Workloads arrive from enforcers and the kube-enforcer; until
			// they report, the page says so instead of inventing data.
			u.render(w, r, http.StatusOK, "risk", page{Page: "risk"})
		case r.URL.Path == "/users":
			p, err := u.d.Users(r, store.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: 100})
			if err != nil {
				u.fail(w, r, err)
				return
			}
			u.render(w, r, http.StatusOK, "users", page{Page: "users", Data: map[string]any{"Items": p.Items, "Next": p.Next}})
		case r.URL.Path == "/registries":
			p, err := u.d.Registries(r)
			if err != nil {
				u.fail(w, r, err)
				return
			}
			u.render(w, r, http.StatusOK, "registries", page{Page: "registries", Data: map[string]any{"Items": p.Items}})
		case r.URL.Path == "/account":
			u.render(w, r, http.StatusOK, "account", page{Page: "account", Data: map[string]any{}})
		default:
			u.render(w, r, http.StatusNotFound, "error", page{Title: "404", Error: "error.notFound"})
		}
	}
}

// fail renders an error page: not found and forbidden as such, anything
// else as a logged server error.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		u.render(w, r, http.StatusNotFound, "error", page{Title: "404", Error: "error.notFound"})
	case errors.Is(err, ErrForbidden):
		u.render(w, r, http.StatusForbidden, "error", page{Title: "403", Error: "error.forbidden"})
	default:
		u.d.Log.ErrorContext(r.Context(), "console page", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.render(w, r, http.StatusBadRequest, "login", page{Page: "login", Error: "login.failed"})
		return
	}
	id, err := u.d.Auth.Login(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"), u.d.Auth.ClientIP(r))
	var le *auth.LoginError
	switch {
	case errors.As(err, &le) && le.Code == "invalid_credentials":
		u.render(w, r, http.StatusUnauthorized, "login", page{Page: "login", Error: "login.failed"})
		return
	case errors.As(err, &le):
		u.render(w, r, http.StatusTooManyRequests, "login", page{Page: "login", Error: "login.locked"})
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
	next := r.URL.Query().Get("next")
	// Only a path on this site: never "//host" or a scheme.
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

type severityCount struct {
	Name string
	N    int64
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	c, err := u.d.Counts(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var sevs []severityCount
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN"} {
		sevs = append(sevs, severityCount{s, c.BySeverity[s]})
	}
	u.render(w, r, http.StatusOK, "dashboard", page{Page: "dashboard", Data: map[string]any{"Images": c.Images, "Severities": sevs}})
}

func (u *UI) images(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := u.d.Images(r, store.ListOptions{Filter: q.Get("filter"), Cursor: q.Get("cursor"), Limit: 50})
	if errors.Is(err, store.ErrInvalid) {
		u.render(w, r, http.StatusBadRequest, "images", page{Page: "images", Error: "error.notFound", Data: map[string]any{"Filter": q.Get("filter")}})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "images", page{Page: "images", Data: map[string]any{"Images": p.Items, "Next": p.Next, "Filter": q.Get("filter")}})
}

func (u *UI) image(w http.ResponseWriter, r *http.Request, idText string) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	im, err := u.d.Image(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var rep *report.Scan
	if im.LatestScanID != 0 {
		if rep, err = u.d.Report(r, im.LatestScanID); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	u.render(w, r, http.StatusOK, "image", page{Page: "images", Data: map[string]any{"Image": &im, "Report": rep}})
}

func (u *UI) vulnerabilities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := u.d.Vulnerabilities(r, store.ListOptions{Filter: q.Get("filter"), Cursor: q.Get("cursor"), Limit: 50})
	data := map[string]any{"Filter": q.Get("filter")}
	if errors.Is(err, store.ErrInvalid) {
		u.render(w, r, http.StatusBadRequest, "vulnerabilities", page{Page: "vulnerabilities", Data: data})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data["Items"], data["Next"] = p.Items, p.Next
	u.render(w, r, http.StatusOK, "vulnerabilities", page{Page: "vulnerabilities", Data: data})
}

// policies shows the policy list and the editor; notice and problem are
// the outcome of a save, definition the text to show again.
func (u *UI) policies(w http.ResponseWriter, r *http.Request, status int, notice, problem, definition string) {
	p, err := u.d.Policies(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "policies", page{Page: "policies", Error: problem,
		Data: map[string]any{"Items": p.Items, "Notice": notice, "Definition": definition}})
}

func (u *UI) savePolicy(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		u.policies(w, r, http.StatusBadRequest, "", err.Error(), "")
		return
	}
	def := r.PostForm.Get("definition")
	err := u.d.SavePolicy(r, []byte(def))
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		u.policies(w, r, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": "), def)
	case err != nil:
		u.fail(w, r, err)
	default:
		u.policies(w, r, http.StatusOK, "policies.saved", "", "")
	}
}

func (u *UI) auditLog(w http.ResponseWriter, r *http.Request) {
	p, err := u.d.Audit(r, store.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: 100})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "audit", page{Page: "audit", Data: map[string]any{"Items": p.Items, "Next": p.Next}})
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.render(w, r, http.StatusBadRequest, "account", page{Page: "account", Error: err.Error(), Data: map[string]any{}})
		return
	}
	err := u.d.ChangePassword(r, r.PostForm.Get("current"), r.PostForm.Get("new"))
	msgs := u.msgs[language(r)]
	switch {
	case errors.Is(err, ErrWrongPassword):
		u.render(w, r, http.StatusForbidden, "account", page{Page: "account", Error: msgs["account.wrong"], Data: map[string]any{}})
	case err == nil:
		u.render(w, r, http.StatusOK, "account", page{Page: "account", Data: map[string]any{"Notice": "account.changed"}})
	default:
		var pe *auth.PolicyError
		if errors.As(err, &pe) {
			u.render(w, r, http.StatusBadRequest, "account", page{Page: "account", Error: msgs["account.weak"] + " " + pe.Error(), Data: map[string]any{}})
			return
		}
		u.fail(w, r, err)
	}
}
