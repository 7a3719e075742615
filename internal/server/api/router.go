package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// HandlerFunc handles one API request. A returned error is written with
// WriteError, so handlers return instead of writing error bodies.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one API operation. The route table drives the mux, the
// authorization check before every handler and the OpenAPI document.
type Route struct {
	// Method and Path, Path in net/http pattern syntax
	// ("/api/v1/images/{id}").
	Method, Path string
	// OperationID names the operation in the OpenAPI document.
	OperationID string
	// Summary is a one-line description.
	Summary string
	// Tag groups operations in the document ("images", "users").
	Tag string
	// Public routes need no authentication (login, health). Every other
	// route needs a principal and the permission Action on Resource.
	Public bool
	// Resource is the RBAC resource type; Action is "view" or "edit".
	Resource, Action string
	// Request and Response are values of the body types, for the
	// document's schemas; nil for none.
	Request, Response any
	// List marks a paginated list: it takes filter, sort, limit and
	// cursor query parameters and answers a Page.
	List bool
	// Status is the success status (200 when zero).
	Status int
	// Handler serves the route.
	Handler HandlerFunc
}

// Authorizer decides whether the request may run the route. It returns
// nil to allow, an *Error (401 or 403) to deny.
type Authorizer interface {
	Authorize(r *http.Request, rt *Route) error
}

// Router serves a route table.
type Router struct {
	mux    *http.ServeMux
	routes []*Route
	authz  Authorizer
	log    *slog.Logger
	m      *Metrics
}

// NewRouter builds a router; authz is consulted before every non-public
// route (a nil authz denies them all).
func NewRouter(log *slog.Logger, authz Authorizer, m *Metrics) *Router {
	return &Router{mux: http.NewServeMux(), authz: authz, log: log, m: m}
}

// Handle registers routes.
func (rt *Router) Handle(routes ...*Route) {
	for _, r := range routes {
		if r.Handler == nil || r.OperationID == "" {
			panic(fmt.Sprintf("api: route %s %s has no handler or operation ID", r.Method, r.Path))
		}
		if !r.Public && (r.Resource == "" || (r.Action != "view" && r.Action != "edit")) {
			panic(fmt.Sprintf("api: route %s %s needs a resource and an action", r.Method, r.Path))
		}
		rt.routes = append(rt.routes, r)
		rt.mux.Handle(r.Method+" "+r.Path, rt.serve(r))
	}
}

// Routes returns the route table, sorted by path and method.
func (rt *Router) Routes() []*Route {
	out := slices.Clone(rt.routes)
	slices.SortFunc(out, func(a, b *Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}

// Mount adds a plain handler outside the route table (static files, the
// remote scanner protocol); it must do its own authorization.
func (rt *Router) Mount(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

func (rt *Router) serve(route *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !route.Public {
			if rt.authz == nil {
				WriteError(w, Errorf(http.StatusForbidden, CodeForbidden, "access denied"))
				return
			}
			if err := rt.authz.Authorize(r, route); err != nil {
				WriteError(w, err)
				return
			}
		}
		if err := route.Handler(w, r); err != nil {
			if _, ok := err.(*Error); !ok {
				rt.log.ErrorContext(r.Context(), "handler failed", "operation", route.OperationID, "err", err)
			}
			WriteError(w, err)
		}
	})
}

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the request's ID (also sent as X-Request-ID).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusWriter records the status for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ServeHTTP runs the request through the common middleware: request ID,
// security headers, panic recovery, structured access log and metrics.
// Unknown paths and methods get JSON errors.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
	h := w.Header()
	h.Set("X-Request-ID", id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			rt.log.ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				WriteError(sw, nil)
			}
		}
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		d := time.Since(start)
		if rt.m != nil {
			rt.m.observe(pattern, sw.status, d)
		}
		rt.log.InfoContext(r.Context(), "request", "id", id, "method", r.Method, "path", r.URL.Path,
			"pattern", pattern, "status", sw.status, "duration_ms", float64(d.Microseconds())/1000, "remote", r.RemoteAddr)
	}()
	if _, pattern := rt.mux.Handler(r); pattern == "" {
		rt.notFound(sw, r)
		return
	}
	rt.mux.ServeHTTP(sw, r)
}

// notFound answers paths no route matches, and known paths with another
// method, in JSON.
func (rt *Router) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, route := range rt.routes {
		probe := r.Clone(r.Context())
		probe.Method = route.Method
		if _, p := rt.mux.Handler(probe); p != "" && p == route.Method+" "+route.Path {
			allowed = append(allowed, route.Method)
		}
	}
	if len(allowed) > 0 {
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(slices.Compact(allowed), ", "))
		WriteError(w, Errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "no such endpoint: %s", r.URL.Path))
}
