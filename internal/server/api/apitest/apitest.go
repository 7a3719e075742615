// Package apitest checks API responses against the server's OpenAPI
// document: every route's success and error bodies must match the schemas
// the document gives for them.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL is where the document is registered with the schema compiler.
const docURL = "mem://mamori/openapi.json"

// Validator validates bodies against one OpenAPI document.
type Validator struct {
	doc   map[string]any
	mu    sync.Mutex
	c     *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

// New prepares a validator for doc (as api.OpenAPI returns it).
func New(doc map[string]any) (*Validator, error) {
	// Round-trip through JSON so the compiler sees plain JSON values.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, v); err != nil {
		return nil, err
	}
	var plain map[string]any
	_ = json.Unmarshal(b, &plain)
	return &Validator{doc: plain, c: c, cache: map[string]*jsonschema.Schema{}}, nil
}

// pointerEscape escapes a JSON pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Check validates a response body of the operation (method and path as
// the document spells them, "/api/v1/images/{id}") with status. A status
// the operation does not list is checked against its "default" (error)
// response.
func (v *Validator) Check(method, path string, status int, body []byte) error {
	paths, _ := v.doc["paths"].(map[string]any)
	op, _ := paths[path].(map[string]any)
	if op == nil {
		return fmt.Errorf("the OpenAPI document has no path %s", path)
	}
	o, _ := op[strings.ToLower(method)].(map[string]any)
	if o == nil {
		return fmt.Errorf("the OpenAPI document has no %s %s", method, path)
	}
	resps, _ := o["responses"].(map[string]any)
	code := strconv.Itoa(status)
	if _, ok := resps[code]; !ok {
		code = "default"
	}
	r, _ := resps[code].(map[string]any)
	content, _ := r["content"].(map[string]any)
	if content == nil {
		return nil // no body documented (metrics text)
	}
	ptr := "#/paths/" + pointerEscape(path) + "/" + strings.ToLower(method) + "/responses/" + code + "/content/application~1json/schema"
	s, err := v.schema(ptr)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %v", method, path, status, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%s %s %d: body does not match the document: %v", method, path, status, err)
	}
	return nil
}

func (v *Validator) schema(ptr string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[ptr]; ok {
		return s, nil
	}
	s, err := v.c.Compile(docURL + ptr)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", ptr, err)
	}
	v.cache[ptr] = s
	return s, nil
}
