package jobs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
)

// Paths of the remote scanner API, relative to HandlerOptions.Prefix.
const (
	PathLease     = "/lease"
	PathHeartbeat = "/jobs/{id}/heartbeat"
	PathResult    = "/jobs/{id}/result"
	PathFail      = "/jobs/{id}/fail"
	// LeaseHeader carries the lease token with a posted result.
	LeaseHeader = "X-Mamori-Lease"
)

// Limits of the remote scanner API.
const (
	// DefaultMaxResult bounds a result body after decompression.
	DefaultMaxResult = 64 << 20
	// MaxWait is the longest long poll a worker may ask for.
	MaxWait = 60 * time.Second
	// maxSmallBody bounds lease, heartbeat and failure bodies.
	maxSmallBody = 64 << 10
)

// HandlerOptions configures NewHandler.
type HandlerOptions struct {
	// Authorize authenticates a remote worker (its bearer token). It must
	// return an error for requests that are not allowed. Required.
	Authorize func(r *http.Request) error
	// Prefix is where the handler is mounted ("/api/v1/scanner" when
	// empty).
	Prefix string
	// MaxResult bounds a decompressed result body (DefaultMaxResult when 0).
	MaxResult int64
}

// LeaseRequest is the body of POST {prefix}/lease.
type LeaseRequest struct {
	// Worker names the worker, for display.
	Worker string `json:"worker"`
	// WaitSeconds is how long to wait for a job (at most MaxWait).
	WaitSeconds int `json:"waitSeconds"`
}

// LeaseResponse is the answer to a lease when a job was leased; 204 No
// Content means none was ready within the wait.
type LeaseResponse struct {
	ID           string    `json:"id"`
	Ref          string    `json:"ref"`
	Digest       string    `json:"digest,omitempty"`
	LeaseToken   string    `json:"leaseToken"`
	LeaseExpires time.Time `json:"leaseExpires"`
	// HeartbeatMillis is how often to send heartbeats (a third of the
	// lease duration).
	HeartbeatMillis int64 `json:"heartbeatMillis"`
}

// HeartbeatRequest is the body of POST {prefix}/jobs/{id}/heartbeat.
type HeartbeatRequest struct {
	LeaseToken string `json:"leaseToken"`
}

// HeartbeatResponse is the answer to a heartbeat.
type HeartbeatResponse struct {
	LeaseExpires time.Time `json:"leaseExpires"`
}

// FailRequest is the body of POST {prefix}/jobs/{id}/fail.
type FailRequest struct {
	LeaseToken string `json:"leaseToken"`
	Error      string `json:"error"`
	// Transient asks for a retry.
	Transient bool `json:"transient"`
}

// apiError is a client-visible error with its status.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// writeError writes {"error":{"code","message"}}, the console API's error
// shape. Errors that are not *apiError become a 500 without their text.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = &apiError{status: http.StatusInternalServerError, code: "internal_error", message: "internal error"}
	}
	writeJSON(w, e.status, map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// leaseError maps queue errors to HTTP errors.
func leaseError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, ErrLeaseLost):
		return errorf(http.StatusConflict, "conflict", "%v", err)
	}
	return err
}

// decodeStrict decodes exactly one JSON value from b into v, rejecting
// unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid_json", "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid_json", "invalid JSON body: data after the JSON value")
	}
	return nil
}

// readBody reads a body of at most limit bytes, inflating gzip when the
// Content-Encoding says so (the limit applies to the inflated bytes).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return nil, errorf(http.StatusUnsupportedMediaType, "bad_request", "content type %q is not application/json", ct)
	}
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "bad_request", "gzip body: %v", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "bad_request", "content encoding %q is not supported (use gzip)", enc)
	}
	b, err := inventory.ReadAllLimited(body, limit)
	var tl *inventory.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, errorf(http.StatusRequestEntityTooLarge, "request_too_large", "body is larger than %d bytes", limit)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "bad_request", "reading body: %v", err)
	}
	return b, nil
}

// NewHandler returns the remote scanner API over q: POST lease,
// heartbeat, result and fail under opts.Prefix. Every request must pass
// opts.Authorize.
func NewHandler(q *Queue, opts HandlerOptions) http.Handler {
	if opts.Prefix == "" {
		opts.Prefix = "/api/v1/scanner"
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.MaxResult <= 0 {
		opts.MaxResult = DefaultMaxResult
	}
	h := &handler{q: q, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+opts.Prefix+PathLease, h.wrap(h.lease))
	mux.HandleFunc("POST "+opts.Prefix+PathHeartbeat, h.wrap(h.heartbeat))
	mux.HandleFunc("POST "+opts.Prefix+PathResult, h.wrap(h.result))
	mux.HandleFunc("POST "+opts.Prefix+PathFail, h.wrap(h.fail))
	return mux
}

type handler struct {
	q    *Queue
	opts HandlerOptions
}

// wrap authorizes the request and writes handler errors.
func (h *handler) wrap(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Authorize == nil {
			writeError(w, errorf(http.StatusForbidden, "forbidden", "remote scanners are not enabled"))
			return
		}
		if err := h.opts.Authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-scanner"`)
			writeError(w, errorf(http.StatusUnauthorized, "unauthenticated", "scanner token missing or not accepted"))
			return
		}
		if err := f(w, r); err != nil {
			writeError(w, err)
		}
	}
}

func (h *handler) lease(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	var req LeaseRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	if req.WaitSeconds < 0 || time.Duration(req.WaitSeconds)*time.Second > MaxWait {
		return errorf(http.StatusBadRequest, "bad_request", "waitSeconds must be between 0 and %d", int(MaxWait/time.Second))
	}
	if len(req.Worker) > 200 {
		return errorf(http.StatusBadRequest, "bad_request", "worker name is longer than 200 bytes")
	}
	worker := "remote"
	if req.Worker != "" {
		worker = "remote:" + req.Worker
	}
	l, err := h.q.Lease(r.Context(), worker, time.Duration(req.WaitSeconds)*time.Second)
	if err != nil {
		return nil // the client went away
	}
	if l == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, LeaseResponse{
		ID: l.Job.ID, Ref: l.Job.Ref, Digest: l.Job.Digest, LeaseToken: l.Token,
		LeaseExpires: l.Job.LeaseExpires, HeartbeatMillis: max(h.q.LeaseDuration().Milliseconds()/3, 1),
	})
	return nil
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	var req HeartbeatRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	exp, err := h.q.Heartbeat(r.PathValue("id"), req.LeaseToken)
	if err != nil {
		return leaseError(err)
	}
	writeJSON(w, http.StatusOK, HeartbeatResponse{LeaseExpires: exp})
	return nil
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(r, maxSmallBody)
	if err != nil {
		return err
	}
	var req FailRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	msg := req.Error
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	if msg == "" {
		msg = "remote scanner failed without a message"
	}
	if err := h.q.Fail(r.PathValue("id"), req.LeaseToken, msg, req.Transient); err != nil {
		return leaseError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) result(w http.ResponseWriter, r *http.Request) error {
	id, token := r.PathValue("id"), r.Header.Get(LeaseHeader)
	// Check the lease before reading a large body.
	if _, err := h.q.Heartbeat(id, token); err != nil {
		return leaseError(err)
	}
	b, err := readBody(r, h.opts.MaxResult)
	if err != nil {
		return err
	}
	scan, err := ParseResult(b)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_json", "%v", err)
	}
	if err := h.q.Complete(r.Context(), id, token, scan); err != nil {
		return leaseError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ParseResult decodes and validates a scan result posted by a remote
// scanner: one JSON object of the report.Scan schema this server speaks,
// with an inventory naming the image.
func ParseResult(b []byte) (*report.Scan, error) {
	var scan report.Scan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&scan); err != nil {
		return nil, fmt.Errorf("scan result: invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("scan result: data after the JSON object")
	}
	if scan.SchemaVersion != report.SchemaVersion {
		return nil, fmt.Errorf("scan result: schemaVersion %d, this server reads %d", scan.SchemaVersion, report.SchemaVersion)
	}
	if scan.Inventory == nil {
		return nil, errors.New("scan result: no inventory")
	}
	if scan.Inventory.Image.Ref == "" && scan.Inventory.Image.Digest == "" {
		return nil, errors.New("scan result: the inventory names no image (no ref or digest)")
	}
	return &scan, nil
}
