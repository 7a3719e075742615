// Package api is the console server's HTTP layer: the route table (every
// route with the resource type and action it needs, so that authorization,
// the OpenAPI document and the tests share one list), JSON request and
// error handling, and the operational endpoints (health, readiness,
// Prometheus metrics).
//
// Requests flow through: request ID and structured log → panic recovery →
// body limit → authentication (package auth) → per-route authorization
// (package rbac, deny by default) → handler. Handlers speak JSON only;
// errors are {"error": {"code": "...", "message": "..."}} with stable codes.
package api
