package api

import (
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Page is the body of every list response.
type Page[T any] struct {
	// Items are this page's items.
	Items []T `json:"items"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// Info describes the API in the document.
type Info struct {
	Title, Version, Description string
}

var pathParam = regexp.MustCompile(`\{([a-zA-Z0-9_]+)(\.\.\.)?\}`)

// OpenAPI builds the OpenAPI 3.1 document of the routes. Schemas come from
// the Go types of each route's Request and Response by reflection, so the
// document cannot drift from the code; every route carries the permission
// it needs as x-mamori-permission.
func OpenAPI(info Info, routes []*Route) map[string]any {
	g := &schemaGen{components: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		p := pathParam.ReplaceAllString(r.Path, "{$1}")
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{"operationId": r.OperationID, "summary": r.Summary}
		if r.Tag != "" {
			op["tags"] = []string{r.Tag}
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if r.List {
			params = append(params,
				queryParam("filter", "Filter expression, e.g. severity=CRITICAL,HIGH;fixable=true (see docs/api.md)"),
				queryParam("sort", "Sort fields, comma separated; a leading - sorts descending"),
				map[string]any{"name": "limit", "in": "query", "description": "Page size (1 to 500, default 50)", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 500}},
				queryParam("cursor", "The nextCursor of the previous page"))
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(r.Request))}}}
		}
		status := r.Status
		if status == 0 {
			status = http.StatusOK
		}
		resp := map[string]any{"description": http.StatusText(status)}
		if r.Response != nil {
			s := g.schema(reflect.TypeOf(r.Response))
			if r.List {
				s = map[string]any{"type": "object", "required": []string{"items"}, "properties": map[string]any{
					"items":      map[string]any{"type": "array", "items": s},
					"nextCursor": map[string]any{"type": "string"},
				}}
			}
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": s}}
		}
		errRef := map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/ErrorBody"}}}}
		op["responses"] = map[string]any{strconv.Itoa(status): resp, "default": errRef}
		if r.Public {
			op["security"] = []any{}
		} else {
			op["x-mamori-permission"] = map[string]string{"resource": r.Resource, "action": r.Action}
		}
		paths[p][strings.ToLower(r.Method)] = op
	}
	g.components["ErrorBody"] = map[string]any{"type": "object", "required": []string{"error"}, "properties": map[string]any{
		"error": g.schema(reflect.TypeOf(Error{})),
	}}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": info.Title, "version": info.Version, "description": info.Description},
		"paths":   paths,
		"components": map[string]any{
			"schemas": g.components,
			"securitySchemes": map[string]any{
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": "mamori_session", "description": "Session cookie from POST /api/v1/auth/login; unsafe methods also need the X-CSRF-Token header."},
				"token":   map[string]any{"type": "http", "scheme": "bearer", "description": "API token (mamori_...)."},
			},
		},
		"security": []any{map[string]any{"session": []string{}}, map[string]any{"token": []string{}}},
	}
}

func queryParam(name, desc string) map[string]any {
	return map[string]any{"name": name, "in": "query", "description": desc, "schema": map[string]any{"type": "string"}}
}

// schemaGen turns Go types into JSON Schema 2020-12 (the dialect of
// OpenAPI 3.1). Named struct types become components.
type schemaGen struct {
	components map[string]any
}

var (
	timeType      = reflect.TypeOf(time.Time{})
	rawType       = reflect.TypeOf(json.RawMessage{})
	textMarshaler = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	jsonMarshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		nullable = true
	}
	s := g.plain(t)
	if nullable {
		if typ, ok := s["type"].(string); ok {
			s = clone(s)
			s["type"] = []string{typ, "null"}
		}
	}
	return s
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (g *schemaGen) plain(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler):
		// A type with its own JSON encoding: its shape is its own.
		return map[string]any{}
	case t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": []string{"array", "null"}, "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if name != "" {
			if _, ok := g.components[name]; !ok {
				g.components[name] = map[string]any{} // placeholder for recursion
				g.components[name] = g.object(t)
			}
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return g.object(t)
	}
	return map[string]any{}
}

// schemaName names a struct's component: package and type, so that two
// packages' Finding types do not clash. Generic and unnamed types are
// inlined.
func schemaName(t reflect.Type) string {
	if t.Name() == "" || strings.ContainsAny(t.Name(), "[]") {
		return ""
	}
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	return pkg + "." + t.Name()
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}
