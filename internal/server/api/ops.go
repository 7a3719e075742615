package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Health is the body of /healthz and /readyz.
type Health struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Checks names each dependency checked and its state.
	Checks map[string]string `json:"checks,omitempty"`
}

// ReadyCheck is one readiness dependency (the database, the vulnerability
// database): nil when usable.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// OpsRoutes are the operational endpoints: liveness, readiness (every check
// must pass within 2 seconds), Prometheus metrics and the OpenAPI document
// of routes (a function, so the document lists every route registered by
// the time it is asked for).
func OpsRoutes(m *Metrics, checks []ReadyCheck, doc func() map[string]any) []*Route {
	return []*Route{
		{Method: "GET", Path: "/healthz", OperationID: "health", Summary: "Liveness: the process serves requests", Tag: "operations", Public: true, Response: Health{},
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				WriteJSON(w, http.StatusOK, Health{Status: "ok"})
				return nil
			}},
		{Method: "GET", Path: "/readyz", OperationID: "ready", Summary: "Readiness: the dependencies answer", Tag: "operations", Public: true, Response: Health{},
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
				defer cancel()
				h := Health{Status: "ok", Checks: map[string]string{}}
				for _, c := range checks {
					if err := c.Check(ctx); err != nil {
						h.Status, h.Checks[c.Name] = "unavailable", "failing"
						continue
					}
					h.Checks[c.Name] = "ok"
				}
				status := http.StatusOK
				if h.Status != "ok" {
					status = http.StatusServiceUnavailable
				}
				WriteJSON(w, status, h)
				return nil
			}},
		{Method: "GET", Path: "/metrics", OperationID: "metrics", Summary: "Prometheus metrics (text format)", Tag: "operations", Public: true,
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				m.Handler().ServeHTTP(w, r)
				return nil
			}},
		{Method: "GET", Path: "/api/v1/openapi.json", OperationID: "openapi", Summary: "This API's OpenAPI 3.1 document", Tag: "operations", Public: true, Response: json.RawMessage{},
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				WriteJSON(w, http.StatusOK, doc())
				return nil
			}},
	}
}
