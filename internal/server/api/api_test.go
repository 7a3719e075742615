package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/api/apitest"
)

type item struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Created time.Time         `json:"created"`
	Note    *string           `json:"note,omitempty"`
	Tags    []string          `json:"tags"`
	Parent  *item             `json:"parent,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

type createItem struct {
	Name string `json:"name"`
}

// allowHeader lets a request through when it has X-Allow: yes.
type allowHeader struct{}

func (allowHeader) Authorize(r *http.Request, rt *api.Route) error {
	if r.Header.Get("X-Allow") == "yes" {
		return nil
	}
	if r.Header.Get("X-Allow") == "" {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "authentication required")
	}
	return api.Errorf(http.StatusForbidden, api.CodeForbidden, "%s %s needs %s on %s", rt.Method, rt.Path, rt.Action, rt.Resource)
}

func newRouter(t *testing.T, ready error) (*api.Router, *apitest.Validator) {
	t.Helper()
	m := api.NewMetrics()
	rt := api.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)), allowHeader{}, m)
	var doc map[string]any
	rt.Handle(api.OpsRoutes(m, []api.ReadyCheck{{Name: "database", Check: func(context.Context) error { return ready }}},
		func() map[string]any { return doc })...)
	rt.Handle(
		&api.Route{Method: "GET", Path: "/api/v1/items", OperationID: "listItems", Resource: "images", Action: "view", List: true, Response: item{},
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				api.WriteJSON(w, 200, api.Page[item]{Items: []item{{ID: "1", Name: "a", Tags: []string{"x"}}}})
				return nil
			}},
		&api.Route{Method: "POST", Path: "/api/v1/items", OperationID: "createItem", Resource: "images", Action: "edit", Request: createItem{}, Response: item{}, Status: 201,
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				var in createItem
				if err := api.DecodeJSON(w, r, &in, 64); err != nil {
					return err
				}
				api.WriteJSON(w, 201, item{ID: "2", Name: in.Name})
				return nil
			}},
		&api.Route{Method: "GET", Path: "/api/v1/items/{id}", OperationID: "getItem", Resource: "images", Action: "view", Response: item{},
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				switch r.PathValue("id") {
				case "panic":
					panic("boom")
				case "internal":
					return errors.New("database password is hunter2")
				}
				return api.Errorf(404, api.CodeNotFound, "no item %q", r.PathValue("id"))
			}},
	)
	doc = api.OpenAPI(api.Info{Title: "test", Version: "1"}, rt.Routes())
	v, err := apitest.New(doc)
	if err != nil {
		t.Fatal(err)
	}
	return rt, v
}

func TestRouter(t *testing.T) {
	rt, v := newRouter(t, nil)
	tests := []struct {
		name, method, url, allow, body, ctype string
		status                                int
		code                                  string // error code, "" for success
		docPath                               string // path in the document, "" when unmatched
	}{
		{"list", "GET", "/api/v1/items", "yes", "", "", 200, "", "/api/v1/items"},
		{"unauthenticated", "GET", "/api/v1/items", "", "", "", 401, api.CodeUnauthenticated, "/api/v1/items"},
		{"forbidden", "GET", "/api/v1/items", "no", "", "", 403, api.CodeForbidden, "/api/v1/items"},
		{"create", "POST", "/api/v1/items", "yes", `{"name":"n"}`, "application/json", 201, "", "/api/v1/items"},
		{"unknown field", "POST", "/api/v1/items", "yes", `{"name":"n","admin":true}`, "", 400, api.CodeInvalidJSON, "/api/v1/items"},
		{"wrong type", "POST", "/api/v1/items", "yes", `{"name":1}`, "", 400, api.CodeInvalidJSON, "/api/v1/items"},
		{"two values", "POST", "/api/v1/items", "yes", `{"name":"a"}{"name":"b"}`, "", 400, api.CodeInvalidJSON, "/api/v1/items"},
		{"malformed", "POST", "/api/v1/items", "yes", `{"name":`, "", 400, api.CodeInvalidJSON, "/api/v1/items"},
		{"empty", "POST", "/api/v1/items", "yes", ``, "", 400, api.CodeInvalidJSON, "/api/v1/items"},
		{"too large", "POST", "/api/v1/items", "yes", `{"name":"` + strings.Repeat("x", 100) + `"}`, "", 413, api.CodeTooLarge, "/api/v1/items"},
		{"content type", "POST", "/api/v1/items", "yes", `name=n`, "application/x-www-form-urlencoded", 415, api.CodeBadRequest, "/api/v1/items"},
		{"not found item", "GET", "/api/v1/items/7", "yes", "", "", 404, api.CodeNotFound, "/api/v1/items/{id}"},
		{"internal error hides text", "GET", "/api/v1/items/internal", "yes", "", "", 500, api.CodeInternal, "/api/v1/items/{id}"},
		{"panic", "GET", "/api/v1/items/panic", "yes", "", "", 500, api.CodeInternal, "/api/v1/items/{id}"},
		{"no route", "GET", "/api/v1/nothing", "yes", "", "", 404, api.CodeNotFound, ""},
		{"wrong method", "DELETE", "/api/v1/items", "yes", "", "", 405, api.CodeMethodNotAllowed, ""},
		{"health", "GET", "/healthz", "", "", "", 200, "", "/healthz"},
		{"ready", "GET", "/readyz", "", "", "", 200, "", "/readyz"},
		{"openapi", "GET", "/api/v1/openapi.json", "", "", "", 200, "", "/api/v1/openapi.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if tc.allow != "" {
				req.Header.Set("X-Allow", tc.allow)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, req)
			body := w.Body.Bytes()
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, body)
			}
			if tc.code != "" && !bytes.Contains(body, []byte(`"code":"`+tc.code+`"`)) {
				t.Errorf("body %s lacks code %s", body, tc.code)
			}
			if bytes.Contains(body, []byte("hunter2")) || bytes.Contains(body, []byte("boom")) {
				t.Errorf("internal detail leaked: %s", body)
			}
			if w.Header().Get("X-Request-ID") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing request ID or security headers: %v", w.Header())
			}
			if tc.docPath != "" {
				if err := v.Check(tc.method, tc.docPath, w.Code, body); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if w := httptest.NewRecorder(); true {
		rt.ServeHTTP(w, httptest.NewRequest("DELETE", "/api/v1/items", nil))
		if allow := w.Header().Get("Allow"); allow != "GET, POST" {
			t.Errorf("Allow = %q", allow)
		}
	}
}

func TestReadyAndMetrics(t *testing.T) {
	rt, _ := newRouter(t, errors.New("connection refused to 10.0.0.1"))
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"database":"failing"`) || strings.Contains(w.Body.String(), "10.0.0.1") {
		t.Errorf("readyz: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(w.Body.String(), `mamori_http_requests_total{code="503",pattern="GET /readyz"} 1`) {
		t.Errorf("metrics lack the readyz request:\n%s", w.Body)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	rt, _ := newRouter(t, nil)
	doc := api.OpenAPI(api.Info{Title: "t", Version: "1"}, rt.Routes())
	paths := doc["paths"].(map[string]map[string]any)
	for _, r := range rt.Routes() {
		op, ok := paths[r.Path][strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s is not in the document", r.Method, r.Path)
			continue
		}
		if !r.Public {
			perm := op["x-mamori-permission"].(map[string]string)
			if perm["resource"] != r.Resource || perm["action"] != r.Action {
				t.Errorf("%s: permission %v", r.OperationID, perm)
			}
		}
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi version %v", doc["openapi"])
	}
}
