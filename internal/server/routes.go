package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/registry"
	"github.com/mamorisec/mamori/internal/server/store"
)

// Resource types of the routes, as rbac names them.
const (
	rImages     = string(rbac.Images)
	rScans      = string(rbac.Scans)
	rVulns      = string(rbac.Vulnerabilities)
	rUsers      = string(rbac.Users)
	rRoles      = string(rbac.Roles)
	rScopes     = string(rbac.Scopes)
	rTokens     = string(rbac.Tokens)
	rAudit      = string(rbac.Audit)
	rSettings   = string(rbac.Settings)
	rAssurance  = string(rbac.AssurancePolicies)
	rRuntime    = string(rbac.RuntimePolicies)
	rExceptions = string(rbac.Exceptions)
	rRegistries = string(rbac.Registries)
)

// loginRequest documents the login body (package auth reads it).
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// userPatch changes a user; absent fields stay.
type userPatch struct {
	DisplayName *string `json:"displayName,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
}

// passwordRequest changes the caller's password.
type passwordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// scanRequest asks for a scan of an image reference.
type scanRequest struct {
	// Image is a registry reference ("registry.example.com/app:1.4").
	Image string `json:"image"`
}

// scanAccepted answers a scan request.
type scanAccepted struct {
	Job jobs.Job `json:"job"`
}

// tokenRequest creates an API token.
type tokenRequest struct {
	Name string `json:"name"`
	// Scopes are "RESOURCE:ACTION" permissions and "scope:NAME" limits.
	Scopes []string `json:"scopes"`
	// TTL is the lifetime ("720h"); at most a year.
	TTL string `json:"ttl"`
}

// tokenCreated returns the new token's secret, once.
type tokenCreated struct {
	Token string         `json:"token"`
	Info  store.APIToken `json:"info"`
}

// userRequest creates or updates a user.
type userRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"displayName,omitempty"`
	// Password is required for new local users.
	Password string `json:"password,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// policyRequest creates or updates a policy.
type policyRequest struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
}

// settingRequest sets a setting.
type settingRequest struct {
	Value json.RawMessage `json:"value"`
}

// auditVerification is the result of checking the audit chain.
type auditVerification struct {
	OK      bool   `json:"ok"`
	Events  int64  `json:"events"`
	Message string `json:"message"`
}

func (s *Server) routes() {
	s.router.Handle(api.OpsRoutes(s.metrics, []api.ReadyCheck{{Name: "database", Check: s.db.Ping}}, s.OpenAPI)...)
	wrap := func(h http.HandlerFunc) api.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil }
	}
	s.router.Handle(
		&api.Route{Method: "POST", Path: auth.LoginPath, OperationID: "login", Tag: "auth", Summary: "Log in with a username and password; sets the session cookie", Public: true,
			Request: loginRequest{}, Response: auth.SessionResponse{}, Handler: wrap(s.auth.HandleLogin)},
		&api.Route{Method: "POST", Path: auth.LogoutPath, OperationID: "logout", Tag: "auth", Summary: "End the session", Public: true, Status: http.StatusNoContent,
			Handler: wrap(s.auth.HandleLogout)},
		&api.Route{Method: "GET", Path: auth.SessionPath, OperationID: "session", Tag: "auth", Summary: "The current user and CSRF token", Public: true,
			Response: auth.SessionResponse{}, Handler: wrap(s.auth.HandleSession)},

		&api.Route{Method: "GET", Path: "/api/v1/auth/oidc/login", OperationID: "oidcLogin", Tag: "auth", Summary: "Start single sign-on (redirects to the OIDC provider)", Public: true, Status: http.StatusFound, Handler: s.oidcBegin},
		&api.Route{Method: "GET", Path: "/api/v1/auth/oidc/callback", OperationID: "oidcCallback", Tag: "auth", Summary: "The OIDC provider's redirect back; starts a session", Public: true, Status: http.StatusFound, Handler: s.oidcCallback},
		&api.Route{Method: "POST", Path: "/api/v1/auth/password", OperationID: "changePassword", Tag: "auth", Summary: "Change the caller's own password (the current one is required)",
			Public: true, Request: passwordRequest{}, Status: http.StatusNoContent, Handler: s.changePassword},

		// Images, scans and findings.
		&api.Route{Method: "GET", Path: "/api/v1/images", OperationID: "listImages", Tag: "images", Summary: "Images in the caller's scopes",
			Resource: rImages, Action: "view", List: true, Response: store.Image{}, Handler: list(rbac.Images, s.db.ListImages)},
		&api.Route{Method: "GET", Path: "/api/v1/images/{id}", OperationID: "getImage", Tag: "images", Summary: "One image",
			Resource: rImages, Action: "view", Response: store.Image{}, Handler: s.getImage},
		&api.Route{Method: "POST", Path: "/api/v1/scans", OperationID: "requestScan", Tag: "scans", Summary: "Queue a scan of a registry image",
			Resource: rScans, Action: "edit", Request: scanRequest{}, Response: scanAccepted{}, Status: http.StatusAccepted, Handler: s.requestScan},
		&api.Route{Method: "GET", Path: "/api/v1/scans", OperationID: "listScans", Tag: "scans", Summary: "Scans of images in the caller's scopes",
			Resource: rScans, Action: "view", List: true, Response: store.Scan{}, Handler: list(rbac.Scans, s.db.ListScans)},
		&api.Route{Method: "GET", Path: "/api/v1/scans/{id}", OperationID: "getScan", Tag: "scans", Summary: "One scan",
			Resource: rScans, Action: "view", Response: store.Scan{}, Handler: s.getScan},
		&api.Route{Method: "GET", Path: "/api/v1/scans/{id}/report", OperationID: "getScanReport", Tag: "scans", Summary: "The scan's full report (the JSON of mamori scan)",
			Resource: rScans, Action: "view", Response: json.RawMessage{}, Handler: s.getScanReport},
		&api.Route{Method: "GET", Path: "/api/v1/vulnerabilities", OperationID: "listVulnerabilities", Tag: "vulnerabilities", Summary: "Vulnerability findings of the latest scan of each image in scope",
			Resource: rVulns, Action: "view", List: true, Response: store.Vulnerability{}, Handler: list(rbac.Vulnerabilities, s.db.ListVulnerabilities)},
		&api.Route{Method: "GET", Path: "/api/v1/packages", OperationID: "listPackages", Tag: "vulnerabilities", Summary: "Packages of the latest scan of each image in scope",
			Resource: rImages, Action: "view", List: true, Response: store.Package{}, Handler: list(rbac.Images, s.db.ListPackages)},
		&api.Route{Method: "GET", Path: "/api/v1/licenses", OperationID: "listLicenses", Tag: "vulnerabilities", Summary: "Package licenses of the latest scan of each image in scope",
			Resource: rImages, Action: "view", List: true, Response: store.License{}, Handler: list(rbac.Images, s.db.ListLicenses)},
		&api.Route{Method: "GET", Path: "/api/v1/secrets", OperationID: "listSecrets", Tag: "vulnerabilities", Summary: "Secrets (redacted) found in images in scope",
			Resource: rVulns, Action: "view", List: true, Response: store.Finding{}, Handler: list(rbac.Vulnerabilities, findings(s.db, "secret"))},
		&api.Route{Method: "GET", Path: "/api/v1/malware", OperationID: "listMalware", Tag: "vulnerabilities", Summary: "Malware found in images in scope",
			Resource: rVulns, Action: "view", List: true, Response: store.Finding{}, Handler: list(rbac.Vulnerabilities, findings(s.db, "malware"))},
		&api.Route{Method: "GET", Path: "/api/v1/misconfigurations", OperationID: "listMisconfigurations", Tag: "vulnerabilities", Summary: "Misconfigurations of images in scope",
			Resource: rVulns, Action: "view", List: true, Response: store.Finding{}, Handler: list(rbac.Vulnerabilities, findings(s.db, "misconfiguration"))},
		&api.Route{Method: "GET", Path: "/api/v1/vulnerabilities/{id}/images", OperationID: "imagesWithVulnerability", Tag: "vulnerabilities", Summary: "Images affected by a vulnerability ID or alias",
			Resource: rVulns, Action: "view", List: true, Response: store.Image{}, Handler: s.imagesWithVulnerability},
		&api.Route{Method: "GET", Path: "/api/v1/packages/images", OperationID: "imagesWithPackage", Tag: "vulnerabilities", Summary: "Images with a package, optionally below a version (type, name, version query parameters)",
			Resource: rImages, Action: "view", List: true, Response: store.PackageHit{}, Handler: s.imagesWithPackage},

		// Identity and access.
		&api.Route{Method: "GET", Path: "/api/v1/users", OperationID: "listUsers", Tag: "users", Resource: rUsers, Action: "view", List: true, Response: store.User{}, Handler: list("", s.db.ListUsers)},
		&api.Route{Method: "POST", Path: "/api/v1/users", OperationID: "createUser", Tag: "users", Resource: rUsers, Action: "edit", Request: userRequest{}, Response: store.User{}, Status: http.StatusCreated, Handler: s.createUser},
		&api.Route{Method: "GET", Path: "/api/v1/users/{id}", OperationID: "getUser", Tag: "users", Resource: rUsers, Action: "view", Response: store.User{}, Handler: s.getUser},
		&api.Route{Method: "PATCH", Path: "/api/v1/users/{id}", OperationID: "updateUser", Tag: "users", Summary: "Change a user's display name or disable them (a disabled user's sessions and tokens stop working)", Resource: rUsers, Action: "edit", Request: userPatch{}, Response: store.User{}, Handler: s.updateUser},
		&api.Route{Method: "DELETE", Path: "/api/v1/users/{id}", OperationID: "deleteUser", Tag: "users", Resource: rUsers, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteUser},
		&api.Route{Method: "GET", Path: "/api/v1/roles", OperationID: "listRoles", Tag: "users", Resource: rRoles, Action: "view", List: true, Response: store.Role{}, Handler: list("", s.db.ListRoles)},
		&api.Route{Method: "POST", Path: "/api/v1/roles", OperationID: "createRole", Tag: "users", Resource: rRoles, Action: "edit", Request: rbac.Role{}, Response: store.Role{}, Status: http.StatusCreated, Handler: s.createRole},
		&api.Route{Method: "DELETE", Path: "/api/v1/roles/{name}", OperationID: "deleteRole", Tag: "users", Summary: "Delete a custom role (built-in roles stay)", Resource: rRoles, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteRole},
		&api.Route{Method: "GET", Path: "/api/v1/scopes", OperationID: "listScopes", Tag: "users", Resource: rScopes, Action: "view", List: true, Response: store.AppScope{}, Handler: list("", s.db.ListAppScopes)},
		&api.Route{Method: "POST", Path: "/api/v1/scopes", OperationID: "createScope", Tag: "users", Resource: rScopes, Action: "edit", Request: rbac.ApplicationScope{}, Response: store.AppScope{}, Status: http.StatusCreated, Handler: s.createScope},
		&api.Route{Method: "PUT", Path: "/api/v1/scopes/{name}", OperationID: "updateScope", Tag: "users", Summary: "Replace an application scope's definition", Resource: rScopes, Action: "edit", Request: rbac.ApplicationScope{}, Response: store.AppScope{}, Handler: s.updateScope},
		&api.Route{Method: "DELETE", Path: "/api/v1/scopes/{name}", OperationID: "deleteScope", Tag: "users", Resource: rScopes, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteScope},
		&api.Route{Method: "GET", Path: "/api/v1/role-bindings", OperationID: "listRoleBindings", Tag: "users", Resource: rRoles, Action: "view", List: true, Response: store.RoleBinding{}, Handler: list("", s.db.ListRoleBindings)},
		&api.Route{Method: "POST", Path: "/api/v1/role-bindings", OperationID: "createRoleBinding", Tag: "users", Resource: rRoles, Action: "edit", Request: store.RoleBinding{}, Response: store.RoleBinding{}, Status: http.StatusCreated, Handler: s.createBinding},
		&api.Route{Method: "DELETE", Path: "/api/v1/role-bindings/{id}", OperationID: "deleteRoleBinding", Tag: "users", Resource: rRoles, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteBinding},
		&api.Route{Method: "GET", Path: "/api/v1/tokens", OperationID: "listTokens", Tag: "tokens", Resource: rTokens, Action: "view", List: true, Response: store.APIToken{}, Handler: s.listTokens},
		&api.Route{Method: "POST", Path: "/api/v1/tokens", OperationID: "createToken", Tag: "tokens", Resource: rTokens, Action: "edit", Request: tokenRequest{}, Response: tokenCreated{}, Status: http.StatusCreated, Handler: s.createToken},
		&api.Route{Method: "DELETE", Path: "/api/v1/tokens/{id}", OperationID: "revokeToken", Tag: "tokens", Resource: rTokens, Action: "edit", Status: http.StatusNoContent, Handler: s.revokeToken},

		// Audit trail.
		&api.Route{Method: "GET", Path: "/api/v1/audit", OperationID: "listAudit", Tag: "audit", Resource: rAudit, Action: "view", List: true, Response: audit.Event{}, Handler: list("", s.db.ListAuditEvents)},
		&api.Route{Method: "GET", Path: "/api/v1/audit/export", OperationID: "exportAudit", Tag: "audit", Summary: "The whole trail as CSV (format=csv) or JSON lines (format=jsonl)", Resource: rAudit, Action: "view", Handler: s.exportAudit},
		&api.Route{Method: "GET", Path: "/api/v1/audit/verify", OperationID: "verifyAudit", Tag: "audit", Summary: "Check the hash chain", Resource: rAudit, Action: "view", Response: auditVerification{}, Handler: s.verifyAudit},

		// Policies, settings, exceptions.
		&api.Route{Method: "GET", Path: "/api/v1/policies/assurance", OperationID: "listAssurancePolicies", Tag: "policies", Resource: rAssurance, Action: "view", List: true, Response: store.Policy{}, Handler: list("", policies(s.db, store.PolicyAssurance))},
		&api.Route{Method: "POST", Path: "/api/v1/policies/assurance", OperationID: "createAssurancePolicy", Tag: "policies", Resource: rAssurance, Action: "edit", Request: policyRequest{}, Response: store.Policy{}, Status: http.StatusCreated, Handler: s.savePolicy(store.PolicyAssurance, true)},
		&api.Route{Method: "GET", Path: "/api/v1/policies/assurance/{name}", OperationID: "getAssurancePolicy", Tag: "policies", Resource: rAssurance, Action: "view", Response: store.Policy{}, Handler: s.getPolicy(store.PolicyAssurance)},
		&api.Route{Method: "PUT", Path: "/api/v1/policies/assurance/{name}", OperationID: "updateAssurancePolicy", Tag: "policies", Summary: "Store a new version", Resource: rAssurance, Action: "edit", Request: policyRequest{}, Response: store.Policy{}, Handler: s.savePolicy(store.PolicyAssurance, false)},
		&api.Route{Method: "GET", Path: "/api/v1/policies/assurance/{name}/versions", OperationID: "listAssurancePolicyVersions", Tag: "policies", Resource: rAssurance, Action: "view", List: true, Response: store.Policy{}, Handler: s.policyVersions(store.PolicyAssurance)},
		&api.Route{Method: "DELETE", Path: "/api/v1/policies/assurance/{name}", OperationID: "deleteAssurancePolicy", Tag: "policies", Resource: rAssurance, Action: "edit", Status: http.StatusNoContent, Handler: s.deletePolicy(store.PolicyAssurance)},
		&api.Route{Method: "GET", Path: "/api/v1/policies/runtime", OperationID: "listRuntimePolicies", Tag: "policies", Resource: rRuntime, Action: "view", List: true, Response: store.Policy{}, Handler: list("", policies(s.db, store.PolicyRuntime))},
		&api.Route{Method: "POST", Path: "/api/v1/policies/runtime", OperationID: "createRuntimePolicy", Tag: "policies", Resource: rRuntime, Action: "edit", Request: policyRequest{}, Response: store.Policy{}, Status: http.StatusCreated, Handler: s.savePolicy(store.PolicyRuntime, true)},
		&api.Route{Method: "GET", Path: "/api/v1/policies/runtime/{name}", OperationID: "getRuntimePolicy", Tag: "policies", Resource: rRuntime, Action: "view", Response: store.Policy{}, Handler: s.getPolicy(store.PolicyRuntime)},
		&api.Route{Method: "PUT", Path: "/api/v1/policies/runtime/{name}", OperationID: "updateRuntimePolicy", Tag: "policies", Summary: "Store a new version", Resource: rRuntime, Action: "edit", Request: policyRequest{}, Response: store.Policy{}, Handler: s.savePolicy(store.PolicyRuntime, false)},
		&api.Route{Method: "GET", Path: "/api/v1/policies/runtime/{name}/versions", OperationID: "listRuntimePolicyVersions", Tag: "policies", Resource: rRuntime, Action: "view", List: true, Response: store.Policy{}, Handler: s.policyVersions(store.PolicyRuntime)},
		&api.Route{Method: "DELETE", Path: "/api/v1/policies/runtime/{name}", OperationID: "deleteRuntimePolicy", Tag: "policies", Resource: rRuntime, Action: "edit", Status: http.StatusNoContent, Handler: s.deletePolicy(store.PolicyRuntime)},
		&api.Route{Method: "GET", Path: "/api/v1/settings", OperationID: "listSettings", Tag: "settings", Resource: rSettings, Action: "view", List: true, Response: store.Setting{}, Handler: list("", s.db.ListSettings)},
		&api.Route{Method: "PUT", Path: "/api/v1/settings/{key}", OperationID: "putSetting", Tag: "settings", Resource: rSettings, Action: "edit", Request: settingRequest{}, Status: http.StatusNoContent, Handler: s.putSetting},
		&api.Route{Method: "GET", Path: "/api/v1/exceptions", OperationID: "listExceptions", Tag: "policies", Resource: rExceptions, Action: "view", List: true, Response: store.Exception{}, Handler: list("", s.db.ListExceptions)},
		&api.Route{Method: "POST", Path: "/api/v1/exceptions", OperationID: "createException", Tag: "policies", Resource: rExceptions, Action: "edit", Request: assurance.Exception{}, Response: store.Exception{}, Status: http.StatusCreated, Handler: s.createException},
		&api.Route{Method: "DELETE", Path: "/api/v1/exceptions/{id}", OperationID: "deleteException", Tag: "policies", Resource: rExceptions, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteException},
		&api.Route{Method: "GET", Path: "/api/v1/registries", OperationID: "listRegistries", Tag: "registries", Resource: rRegistries, Action: "view", List: true, Response: store.Registry{}, Handler: list("", s.db.ListRegistries)},
		&api.Route{Method: "POST", Path: "/api/v1/registries", OperationID: "createRegistry", Tag: "registries", Summary: "Add a registry and its credentials (stored encrypted)", Resource: rRegistries, Action: "edit", Request: registryRequest{}, Response: store.Registry{}, Status: http.StatusCreated, Handler: s.createRegistry},
		&api.Route{Method: "GET", Path: "/api/v1/registries/{id}/webhook", OperationID: "getRegistryWebhook", Tag: "registries", Summary: "Where and with which secret the registry sends push notifications", Resource: rRegistries, Action: "edit", Response: webhookInfo{}, Handler: s.getWebhook},
		&api.Route{Method: "POST", Path: "/api/v1/registries/{id}/webhook", OperationID: "registryWebhook", Tag: "registries", Summary: "Push notifications (distribution, harbor or dockerhub payloads, ?kind=); authenticated by the registry's webhook secret", Public: true, Response: registry.WebhookResponse{}, Status: http.StatusAccepted, Handler: s.receiveWebhook},
		&api.Route{Method: "PUT", Path: "/api/v1/registries/{id}", OperationID: "updateRegistry", Tag: "registries", Summary: "Replace a registry's settings; an empty secret keeps the stored one", Resource: rRegistries, Action: "edit", Request: registryRequest{}, Response: store.Registry{}, Handler: s.updateRegistry},
		&api.Route{Method: "DELETE", Path: "/api/v1/registries/{id}", OperationID: "deleteRegistry", Tag: "registries", Resource: rRegistries, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteRegistry},
	)
	// Runtime protection: policies, enforcer groups, agents, events,
	// inventory (runtime.go) and the fleet relay for gateways (fleet.go).
	s.router.Handle(s.runtimeRoutes()...)
	s.router.Handle(s.fleetRoutes()...)
	s.router.Handle(s.gatewayRoutes()...) // gateways' serving certificates (fleetgateway.go)
}

// listOptions reads filter, sort, limit and cursor.
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	o := store.ListOptions{Filter: q.Get("filter"), Sort: q.Get("sort"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxLimit {
			return o, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "limit", Message: "limit must be a number from 1 to " + strconv.Itoa(store.MaxLimit)}
		}
		o.Limit = n
	}
	return o, nil
}

// storeErr maps database errors to API errors: not found, conflicts and
// invalid filters become 4xx; the rest stays internal.
func storeErr(err error) error {
	var qe *query.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidFilter, Message: qe.Error()}
	case errors.Is(err, store.ErrNotFound):
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "not found")
	case errors.Is(err, store.ErrConflict):
		return api.Errorf(http.StatusConflict, api.CodeConflict, "%v", err)
	case errors.Is(err, store.ErrInvalid):
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	return err
}

// list serves a list endpoint: the query parameters, for image-related
// resources (t not empty) the caller's scope restriction, and the store
// query.
func list[T any](t rbac.ResourceType, fetch func(context.Context, store.ListOptions) (store.Page[T], error)) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		o, err := listOptions(r)
		if err != nil {
			return err
		}
		if t != "" {
			if o.Scope, err = listScope(r.Context(), rbac.View, t); err != nil {
				return err
			}
		}
		p, err := fetch(r.Context(), o)
		return writePage(w, p, err)
	}
}

// findings lists the content findings of one kind.
func findings(db *store.Store, kind string) func(context.Context, store.ListOptions) (store.Page[store.Finding], error) {
	return func(ctx context.Context, o store.ListOptions) (store.Page[store.Finding], error) {
		return db.ListFindings(ctx, kind, o)
	}
}

// policies lists the current policies of one kind.
func policies(db *store.Store, kind string) func(context.Context, store.ListOptions) (store.Page[store.Policy], error) {
	return func(ctx context.Context, o store.ListOptions) (store.Page[store.Policy], error) {
		return db.ListPolicies(ctx, kind, o)
	}
}

func writePage[T any](w http.ResponseWriter, p store.Page[T], err error) error {
	if err != nil {
		return storeErr(err)
	}
	items := p.Items
	if items == nil {
		items = []T{}
	}
	api.WriteJSON(w, http.StatusOK, api.Page[T]{Items: items, NextCursor: p.Next})
	return nil
}

func pathID(r *http.Request) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || n <= 0 {
		return 0, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no such object %q", r.PathValue("id"))
	}
	return n, nil
}

// respond records a change in the audit trail and then answers: v as
// JSON with status, or no body for 204. A change that cannot be audited
// is answered as a server error.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, status int, v any, action, typ, id string, before, after any) error {
	if err := s.record(r, action, typ, id, before, after); err != nil {
		return err
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return nil
	}
	api.WriteJSON(w, status, v)
	return nil
}

// record appends an audit event for a change by the caller.
func (s *Server) record(r *http.Request, action, typ, id string, before, after any) error {
	ap, _ := auth.PrincipalFrom(r.Context())
	e := audit.Event{Actor: actorOf(ap), ActorIP: s.auth.ClientIP(r), Action: action, ResourceType: typ, ResourceID: id, Outcome: audit.Success}
	if before != nil {
		e.Before = jsonBody(before)
	}
	if after != nil {
		e.After = jsonBody(after)
	}
	_, err := s.audit.Append(r.Context(), e)
	return err
}

// actorOf is the audit actor of an authenticated caller: the user, or the
// API token acting for them.
func actorOf(ap *auth.Principal) audit.Actor {
	if ap == nil {
		return audit.Actor{Kind: audit.ActorUser}
	}
	actor := audit.Actor{Kind: audit.ActorUser, ID: ap.UserID, Name: ap.Username}
	if ap.Method == auth.MethodToken {
		actor.Kind, actor.ID = audit.ActorToken, ap.TokenID
	}
	return actor
}

// auditAuth appends login events from package auth.
func (s *Server) auditAuth(ctx context.Context, e auth.AuditEvent) {
	outcome := audit.Success
	if e.Action != auth.ActionLogin && e.Action != auth.ActionLogout {
		outcome = audit.Failure
	}
	// A failed login's name may belong to nobody: it is recorded as given.
	id := e.Actor
	if id == "" {
		id = "(empty)"
	}
	_, err := s.audit.Append(ctx, audit.Event{Time: e.Time, Actor: audit.Actor{Kind: audit.ActorUser, ID: id, Name: e.Actor}, ActorIP: e.ClientIP,
		Action: e.Action, ResourceType: rUsers, Outcome: outcome, Reason: e.Reason})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "audit trail append failed", "action", e.Action, "err", err)
	}
}

// changePassword lets a user with a session replace their own password
// after proving the current one (the first admin changes the generated
// one this way). Other sessions of the user stay valid until they expire.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok || ap.Method != auth.MethodSession {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "changing a password needs a login session")
	}
	var in passwordRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if _, err := s.auth.Login(r.Context(), ap.Username, in.Current, s.auth.ClientIP(r)); err != nil {
		return &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden, Field: "current", Message: "the current password is wrong"}
	}
	if err := s.auth.SetPassword(r.Context(), ap.UserID, in.New); err != nil {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "new", Message: err.Error()}
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionUserUpdate, rUsers, ap.UserID, nil, map[string]string{"change": "password"})
}

// image loads an image the caller may see; others are not found.
func (s *Server) image(r *http.Request, id int64, action rbac.Action, t rbac.ResourceType) (store.Image, error) {
	im, err := s.db.GetImage(r.Context(), id, nil)
	if err != nil {
		return im, storeErr(err)
	}
	return im, check(r.Context(), action, t, imageAttrs(im))
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	im, err := s.image(r, id, rbac.View, rbac.Images)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, im)
	return nil
}

func (s *Server) requestScan(w http.ResponseWriter, r *http.Request) error {
	var in scanRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	ref, err := name.ParseReference(strings.TrimSpace(in.Image))
	if err != nil || strings.TrimSpace(in.Image) == "" {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "image", Message: "image is not a registry reference"}
	}
	repo := ref.Context()
	if err := check(r.Context(), rbac.Edit, rbac.Scans, rbac.Attributes{Registry: repo.RegistryStr(), Image: repo.RegistryStr() + "/" + repo.RepositoryStr()}); err != nil {
		return err
	}
	job, _, err := s.queue.Enqueue(jobs.Request{Ref: ref.Name(), Priority: jobs.PriorityPush, Registry: repo.RegistryStr()})
	if err != nil {
		return api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "%v", err)
	}
	return s.respond(w, r, http.StatusAccepted, scanAccepted{Job: job}, audit.ActionScanRequest, rScans, job.ID, nil, in)
}

func (s *Server) scanOf(r *http.Request) (store.Scan, error) {
	id, err := pathID(r)
	if err != nil {
		return store.Scan{}, err
	}
	sc, err := s.db.GetScan(r.Context(), id, nil)
	if err != nil {
		return sc, storeErr(err)
	}
	_, err = s.image(r, sc.ImageID, rbac.View, rbac.Scans)
	return sc, err
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.scanOf(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, sc)
	return nil
}

func (s *Server) getScanReport(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.scanOf(r)
	if err != nil {
		return err
	}
	rep, err := s.db.ScanReport(r.Context(), sc.ID, nil)
	if err != nil {
		return storeErr(err)
	}
	api.WriteJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) imagesWithVulnerability(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	sc, err := listScope(r.Context(), rbac.View, rbac.Vulnerabilities)
	if err != nil {
		return err
	}
	p, err := s.db.ImagesWithVulnerability(r.Context(), r.PathValue("id"), store.CrossImageOptions{Limit: o.Limit, Cursor: o.Cursor, Scope: sc})
	return writePage(w, p, err)
}

func (s *Server) imagesWithPackage(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Get("type") == "" || q.Get("name") == "" {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "type and name are required, e.g. type=maven&name=log4j-core&version=<2.17.1")
	}
	sc, err := listScope(r.Context(), rbac.View, rbac.Images)
	if err != nil {
		return err
	}
	p, err := s.db.ImagesWithPackage(r.Context(), q.Get("type"), q.Get("name"), q.Get("version"), store.CrossImageOptions{Limit: o.Limit, Cursor: o.Cursor, Scope: sc})
	return writePage(w, p, err)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var in userRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := auth.ValidatePassword(in.Username, in.Password); err != nil {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "password", Message: err.Error()}
	}
	hash, err := auth.HashPassword(in.Password, auth.DefaultParams)
	if err != nil {
		return err
	}
	u, err := s.db.CreateUser(r.Context(), store.User{Username: in.Username, DisplayName: in.DisplayName, PasswordHash: hash, Source: store.SourceLocal, Disabled: in.Disabled})
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, u, audit.ActionUserCreate, rUsers, strconv.FormatInt(u.ID, 10), nil, u)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.db.GetUser(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	api.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.db.GetUser(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	if ap, _ := auth.PrincipalFrom(r.Context()); ap.UserID == strconv.FormatInt(id, 10) {
		return api.Errorf(http.StatusConflict, api.CodeConflict, "you cannot delete your own account")
	}
	if err := s.db.DeleteUser(r.Context(), id); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionUserDelete, rUsers, strconv.FormatInt(id, 10), u, nil)
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	role, err := rbac.ParseRole(b)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	sr := store.Role{Name: role.Name, Description: role.Description}
	for t, a := range role.Permissions {
		sr.Permissions = append(sr.Permissions, string(t)+":"+string(a))
	}
	out, err := s.db.CreateRole(r.Context(), sr)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, out, audit.ActionRoleUpdate, rRoles, role.Name, nil, role)
}

func (s *Server) createScope(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	sc, err := rbac.ParseScope(b)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	out, err := s.db.CreateAppScope(r.Context(), store.AppScope{Name: sc.Name, Description: sc.Description, Definition: jsonBody(sc)})
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, out, audit.ActionScopeUpdate, rScopes, sc.Name, nil, sc)
}

func (s *Server) createBinding(w http.ResponseWriter, r *http.Request) error {
	var in store.RoleBinding
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	in.ID, in.Created = 0, time.Time{}
	cat, err := s.authz.catalog(r.Context())
	if err != nil {
		return err
	}
	if _, err := cat.Resolve([]rbac.BindingRef{{Role: in.Role, Scopes: in.Scopes}}); err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	out, err := s.db.CreateRoleBinding(r.Context(), in)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, out, audit.ActionRoleUpdate, "role_bindings", strconv.FormatInt(out.ID, 10), nil, out)
}

func (s *Server) deleteBinding(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.db.DeleteRoleBinding(r.Context(), id); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionRoleUpdate, "role_bindings", strconv.FormatInt(id, 10), map[string]int64{"id": id}, nil)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in userPatch
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	old, err := s.db.GetUser(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	u := old
	if in.DisplayName != nil {
		u.DisplayName = *in.DisplayName
	}
	if in.Disabled != nil {
		if ap, _ := auth.PrincipalFrom(r.Context()); *in.Disabled && ap.UserID == strconv.FormatInt(id, 10) {
			return api.Errorf(http.StatusConflict, api.CodeConflict, "you cannot disable your own account")
		}
		u.Disabled = *in.Disabled
	}
	if err := s.db.UpdateUser(r.Context(), u); err != nil {
		return storeErr(err)
	}
	if u.Disabled && !old.Disabled {
		if _, err := s.db.DeleteUserSessions(r.Context(), id); err != nil {
			return err
		}
	}
	return s.respond(w, r, http.StatusOK, u, audit.ActionUserUpdate, rUsers, strconv.FormatInt(id, 10), old, u)
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, builtin := rbac.BuiltinRole(name); builtin {
		return api.Errorf(http.StatusConflict, api.CodeConflict, "%q is a built-in role", name)
	}
	old, err := s.db.GetRole(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	if err := s.db.DeleteRole(r.Context(), old.ID); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionRoleUpdate, rRoles, name, old, nil)
}

func (s *Server) updateScope(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	sc, err := rbac.ParseScope(b)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if sc.Name != r.PathValue("name") {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "name", Message: "the name in the body differs from the URL's"}
	}
	old, err := s.db.GetAppScope(r.Context(), sc.Name)
	if err != nil {
		return storeErr(err)
	}
	upd := old
	upd.Description, upd.Definition = sc.Description, jsonBody(sc)
	if err := s.db.UpdateAppScope(r.Context(), upd); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, upd, audit.ActionScopeUpdate, rScopes, sc.Name, old, upd)
}

func (s *Server) deleteScope(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	old, err := s.db.GetAppScope(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	if err := s.db.DeleteAppScope(r.Context(), old.ID); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionScopeUpdate, rScopes, name, old, nil)
}

// ownTokens restricts token lists to the caller's own unless they may
// edit users (administrators see every token).
func (s *Server) ownTokens(r *http.Request) (int64, bool) {
	p, _ := principalFrom(r.Context())
	if rbac.Decide(p, rbac.Edit, rbac.Users, rbac.Attributes{}).Allow {
		return 0, false
	}
	ap, _ := auth.PrincipalFrom(r.Context())
	id, _ := strconv.ParseInt(ap.UserID, 10, 64)
	return id, true
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	if uid, own := s.ownTokens(r); own {
		// A filter ending in an odd run of backslashes would escape the
		// separator and swallow the restriction.
		if n := len(o.Filter) - len(strings.TrimRight(o.Filter, `\`)); n%2 == 1 {
			return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidFilter, Field: "filter", Message: "the filter ends in an unfinished escape"}
		}
		o.Filter = strings.TrimPrefix(o.Filter+";user="+strconv.FormatInt(uid, 10), ";")
	}
	p, err := s.db.ListTokens(r.Context(), o)
	return writePage(w, p, err)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var in tokenRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(in.TTL)
	if err != nil || ttl <= 0 {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "ttl", Message: "ttl must be a positive duration such as 720h"}
	}
	ap, _ := auth.PrincipalFrom(r.Context())
	if ap.Method == auth.MethodToken {
		return api.Errorf(http.StatusForbidden, api.CodeForbidden, "API tokens cannot create API tokens")
	}
	secret, t, err := s.auth.IssueToken(r.Context(), ap.UserID, in.Name, in.Scopes, ttl)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	st, err := s.db.TokenByPrefix(r.Context(), t.ID)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, tokenCreated{Token: secret, Info: st}, audit.ActionTokenCreate, rTokens, t.ID, nil, st)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	t, err := s.db.TokenByPrefix(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	if uid, own := s.ownTokens(r); own && t.UserID != uid {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "not found")
	}
	if err := s.db.DeleteToken(r.Context(), id); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionTokenRevoke, rTokens, id, t, nil)
}

func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	st := auditStore{s.db}
	switch format {
	case "", "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="mamori-audit.csv"`)
		return audit.ExportCSV(r.Context(), st, w, 0)
	case "jsonl":
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="mamori-audit.jsonl"`)
		return audit.ExportJSONLines(r.Context(), st, w, 0)
	}
	return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "format", Message: "format must be csv or jsonl"}
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	rep, err := audit.Verify(r.Context(), auditStore{s.db}, audit.VerifyOptions{Key: deriveKey(s.key, "audit")})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, auditVerification{OK: rep.OK(), Events: rep.Events, Message: rep.String()})
	return nil
}

func (s *Server) getPolicy(kind string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.db.GetPolicy(r.Context(), kind, r.PathValue("name"), 0)
		if err != nil {
			return storeErr(err)
		}
		api.WriteJSON(w, http.StatusOK, p)
		return nil
	}
}

func (s *Server) policyVersions(kind string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		o, err := listOptions(r)
		if err != nil {
			return err
		}
		p, err := s.db.PolicyVersions(r.Context(), kind, r.PathValue("name"), o)
		return writePage(w, p, err)
	}
}

// savePolicy validates and stores a policy (a new one, or a new version).
// Assurance policies are checked by the same parser as mamori scan
// --policy, so the server never stores a policy the evaluator rejects.
func (s *Server) savePolicy(kind string, create bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in policyRequest
		if err := api.DecodeJSON(w, r, &in, 0); err != nil {
			return err
		}
		if !create {
			in.Name = r.PathValue("name")
		}
		if kind == store.PolicyAssurance {
			if _, err := assurance.Parse(in.Name, in.Definition); err != nil {
				return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidPolicy, Field: "definition", Message: err.Error()}
			}
		} else if !json.Valid(in.Definition) || len(in.Definition) == 0 {
			return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidPolicy, Field: "definition", Message: "definition must be a JSON object"}
		}
		ap, _ := auth.PrincipalFrom(r.Context())
		var (
			p      store.Policy
			before any
			err    error
		)
		if create {
			p, err = s.db.CreatePolicy(r.Context(), kind, in.Name, in.Definition, ap.Username)
		} else {
			if old, gerr := s.db.GetPolicy(r.Context(), kind, in.Name, 0); gerr == nil {
				before = old
			}
			p, err = s.db.UpdatePolicy(r.Context(), kind, in.Name, in.Definition, ap.Username)
		}
		if err != nil {
			return storeErr(err)
		}
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		return s.respond(w, r, status, p, audit.ActionPolicyUpdate, kind+"_policies", in.Name, before, p)
	}
}

func (s *Server) deletePolicy(kind string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		old, err := s.db.GetPolicy(r.Context(), kind, name, 0)
		if err != nil {
			return storeErr(err)
		}
		if err := s.db.DeletePolicy(r.Context(), kind, name); err != nil {
			return storeErr(err)
		}
		return s.respond(w, r, http.StatusNoContent, nil, audit.ActionPolicyUpdate, kind+"_policies", name, old, nil)
	}
}

func (s *Server) putSetting(w http.ResponseWriter, r *http.Request) error {
	var in settingRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	key := r.PathValue("key")
	var before any
	if old, err := s.db.GetSetting(r.Context(), key); err == nil {
		before = old
	}
	if err := s.db.SetSetting(r.Context(), key, in.Value); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionSettingsUpdate, rSettings, key, before, in)
}

func (s *Server) createException(w http.ResponseWriter, r *http.Request) error {
	var in assurance.Exception
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	ap, _ := auth.PrincipalFrom(r.Context())
	in.CreatedBy = ap.Username
	if in.ID == "" {
		in.ID = "exc-" + strconv.FormatInt(s.cfg.Now().UnixNano(), 36)
	}
	if err := in.Validate(); err != nil {
		return api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if !in.Expires.After(s.cfg.Now()) {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "expires", Message: "the exception has already expired"}
	}
	scope := in.Image
	if scope == "" {
		scope = "*"
	}
	e, err := s.db.CreateException(r.Context(), store.Exception{Scope: scope, VulnID: in.Finding, Rule: in.Control, Expires: in.Expires, Justification: in.Justification, CreatedBy: in.CreatedBy})
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, e, audit.ActionExceptionCreate, rExceptions, strconv.FormatInt(e.ID, 10), nil, in)
}

func (s *Server) deleteException(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	old, err := s.db.GetException(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	if err := s.db.DeleteException(r.Context(), id); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionExceptionCreate, rExceptions, strconv.FormatInt(id, 10), old, nil)
}

// registryRequest adds a registry.
type registryRequest struct {
	Name string `json:"name"`
	// URL is "https://registry.example.com" (http only for loopback).
	URL string `json:"url"`
	// AuthType is none, basic or bearer.
	AuthType string `json:"authType"`
	Username string `json:"username,omitempty"`
	// Secret is the password or token; it is stored encrypted and never
	// returned.
	Secret   string `json:"secret,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// registryFrom validates a registry request; plain HTTP and unverified
// TLS are for loopback registries only.
func registryFrom(r *http.Request, in registryRequest) (store.Registry, error) {
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return store.Registry{}, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "url", Message: "url must be https://HOST[:PORT]"}
	}
	loopback := u.Hostname() == "localhost" || (net.ParseIP(u.Hostname()) != nil && net.ParseIP(u.Hostname()).IsLoopback())
	if (u.Scheme == "http" || in.Insecure) && !loopback {
		return store.Registry{}, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "insecure", Message: "plain HTTP and unverified TLS are allowed for loopback registries only"}
	}
	if err := check(r.Context(), rbac.Edit, rbac.Registries, rbac.Attributes{Registry: u.Host}); err != nil {
		return store.Registry{}, err
	}
	return store.Registry{Name: in.Name, URL: u.Scheme + "://" + u.Host, AuthType: in.AuthType,
		Username: in.Username, Secret: in.Secret, Insecure: in.Insecure || u.Scheme == "http"}, nil
}

func (s *Server) updateRegistry(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in registryRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	old, err := s.db.GetRegistry(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	if err := s.registryCheck(r, old); err != nil {
		return err
	}
	upd, err := registryFrom(r, in)
	if err != nil {
		return err
	}
	upd.ID = id
	if upd.Secret == "" {
		if upd.Secret, err = s.db.RegistrySecret(r.Context(), id); err != nil {
			return err
		}
	}
	reg, err := s.db.UpdateRegistry(r.Context(), upd)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, reg, audit.ActionRegistryUpdate, rRegistries, strconv.FormatInt(id, 10), old, reg)
}

func (s *Server) createRegistry(w http.ResponseWriter, r *http.Request) error {
	var in registryRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	sr, err := registryFrom(r, in)
	if err != nil {
		return err
	}
	reg, err := s.db.CreateRegistry(r.Context(), sr)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, reg, audit.ActionRegistryUpdate, rRegistries, strconv.FormatInt(reg.ID, 10), nil, reg)
}

func (s *Server) deleteRegistry(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	old, err := s.db.GetRegistry(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	u, _ := url.Parse(old.URL)
	if err := check(r.Context(), rbac.Edit, rbac.Registries, rbac.Attributes{Registry: u.Host}); err != nil {
		return err
	}
	if err := s.db.DeleteRegistry(r.Context(), id); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, audit.ActionRegistryUpdate, rRegistries, strconv.FormatInt(id, 10), old, nil)
}

// readBody reads a JSON body for parsers that do their own strict
// decoding (roles, scopes).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := api.DecodeJSON(w, r, &raw, 0); err != nil {
		return nil, err
	}
	return raw, nil
}
