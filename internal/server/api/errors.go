package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error codes: stable strings clients can rely on.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeTooLarge         = "request_too_large"
	CodeUnauthenticated  = "unauthenticated"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeInvalidFilter    = "invalid_filter"
	CodeInvalidPolicy    = "invalid_policy"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal_error"
	CodeUnavailable      = "unavailable"
)

// Error is an API error: an HTTP status, a stable code and a message for
// people. Handlers return it; WriteError writes it.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, when there is one.
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteError writes err as the JSON error body. Errors that are not *Error
// become 500 internal_error without their text: internal details never
// reach clients.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// MaxBody is the largest JSON request body accepted by DecodeJSON.
const MaxBody = 1 << 20

// DecodeJSON reads exactly one JSON object from the request into v,
// rejecting unknown fields, trailing data, a wrong content type and bodies
// over limit bytes (MaxBody when limit is 0).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if limit <= 0 {
		limit = MaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return Errorf(http.StatusUnsupportedMediaType, CodeBadRequest, "content type %q is not application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, CodeInvalidJSON, "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, CodeInvalidJSON, "the body is empty")
	case errors.As(err, &se):
		return Errorf(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Field: te.Field, Message: fmt.Sprintf("field %q must be %s", te.Field, te.Type)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Field: f, Message: fmt.Sprintf("unknown field %q", f)}
	}
	return Errorf(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON: %v", err)
}
