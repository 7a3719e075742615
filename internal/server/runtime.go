package server

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// rEnforcers is the resource type of agents, groups and what agents
// report.
const rEnforcers = string(rbac.Enforcers)

// inventoryFreshness is how recently an agent must have sent a heartbeat
// for its inventory to be shown.
const inventoryFreshness = 5 * time.Minute

// maxPolicyImport bounds an import body.
const maxPolicyImport = 4 << 20

// enabledPatch switches a runtime policy or agent on or off.
type enabledPatch struct {
	Enabled *bool `json:"enabled"`
}

// agentPatch disables or re-enables an agent.
type agentPatch struct {
	Disabled *bool `json:"disabled"`
}

// groupRequest creates or changes an enforcer group; absent settings are
// the defaults (audit only, container protection on, host protection off,
// fail open).
type groupRequest struct {
	Name        string               `json:"name,omitempty"`
	Description string               `json:"description,omitempty"`
	Settings    *fleet.GroupSettings `json:"settings,omitempty"`
}

// groupToken returns a group's enrollment token, once.
type groupToken struct {
	// Token is the enrollment token: shown only now, stored hashed.
	Token string              `json:"token"`
	Group store.EnforcerGroup `json:"group"`
}

// inventoryView is the workload inventory agents reported.
type inventoryView struct {
	Hosts       []inventoryHost      `json:"hosts"`
	Namespaces  []inventoryNamespace `json:"namespaces"`
	Connections []fleet.Connection   `json:"connections"`
}

// inventoryHost is one agent's host with its containers.
type inventoryHost struct {
	Host       string            `json:"host"`
	AgentID    string            `json:"agentId"`
	Kind       string            `json:"kind"`
	Time       time.Time         `json:"time"`
	Containers []fleet.Container `json:"containers"`
}

// inventoryNamespace is one Kubernetes namespace with its workloads.
type inventoryNamespace struct {
	Namespace string              `json:"namespace"`
	Workloads []inventoryWorkload `json:"workloads"`
}

// inventoryWorkload is a workload and the agent (cluster) reporting it.
type inventoryWorkload struct {
	fleet.Workload
	AgentID string `json:"agentId"`
	Cluster string `json:"cluster"`
}

// agentAttrs are the RBAC attributes of an agent: its host name.
func agentAttrs(a store.Agent) rbac.Attributes { return rbac.Attributes{Host: a.Hostname} }

func (s *Server) runtimeRoutes() []*api.Route {
	return []*api.Route{
		{Method: "GET", Path: "/api/v1/runtime-policies", OperationID: "listRuntimePolicyDocs", Tag: "runtime", Summary: "Runtime policies (filter fields: name, mode, enabled, revision, updated)",
			Resource: rRuntime, Action: "view", List: true, Response: store.RuntimePolicy{}, Handler: list("", s.db.ListRuntimePolicies)},
		{Method: "POST", Path: "/api/v1/runtime-policies", OperationID: "createRuntimePolicyDoc", Tag: "runtime", Summary: "Create a runtime policy (the body is the policy)",
			Resource: rRuntime, Action: "edit", Request: runtimepolicy.Policy{}, Response: store.RuntimePolicy{}, Status: http.StatusCreated, Handler: s.saveRuntimePolicy(true)},
		{Method: "GET", Path: "/api/v1/runtime-policies/export", OperationID: "exportRuntimePolicies", Tag: "runtime", Summary: "Every runtime policy as a JSON array, which import reads",
			Resource: rRuntime, Action: "view", Response: []runtimepolicy.Policy{}, Handler: s.exportRuntimePolicies},
		{Method: "POST", Path: "/api/v1/runtime-policies/import", OperationID: "importRuntimePolicies", Tag: "runtime", Summary: "Create or replace the runtime policies of a JSON array, all or none",
			Resource: rRuntime, Action: "edit", Request: []runtimepolicy.Policy{}, Response: []store.RuntimePolicy{}, Handler: s.importRuntimePolicies},
		{Method: "GET", Path: "/api/v1/runtime-policies/builtins", OperationID: "listBuiltinRuntimePolicies", Tag: "runtime", Summary: "The built-in runtime policies, which can be loaded",
			Resource: rRuntime, Action: "view", Response: []runtimepolicy.Policy{}, Handler: s.listBuiltins},
		{Method: "POST", Path: "/api/v1/runtime-policies/builtins/{name}", OperationID: "loadBuiltinRuntimePolicy", Tag: "runtime", Summary: "Store a built-in runtime policy as a runtime policy of the same name",
			Resource: rRuntime, Action: "edit", Response: store.RuntimePolicy{}, Status: http.StatusCreated, Handler: s.loadBuiltin},
		{Method: "GET", Path: "/api/v1/runtime-policies/{name}", OperationID: "getRuntimePolicyDoc", Tag: "runtime",
			Resource: rRuntime, Action: "view", Response: store.RuntimePolicy{}, Handler: s.getRuntimePolicy},
		{Method: "PUT", Path: "/api/v1/runtime-policies/{name}", OperationID: "updateRuntimePolicyDoc", Tag: "runtime", Summary: "Replace a runtime policy (the body is the policy)",
			Resource: rRuntime, Action: "edit", Request: runtimepolicy.Policy{}, Response: store.RuntimePolicy{}, Handler: s.saveRuntimePolicy(false)},
		{Method: "PATCH", Path: "/api/v1/runtime-policies/{name}", OperationID: "enableRuntimePolicy", Tag: "runtime", Summary: "Enable or disable a runtime policy",
			Resource: rRuntime, Action: "edit", Request: enabledPatch{}, Response: store.RuntimePolicy{}, Handler: s.enableRuntimePolicy},
		{Method: "DELETE", Path: "/api/v1/runtime-policies/{name}", OperationID: "deleteRuntimePolicyDoc", Tag: "runtime",
			Resource: rRuntime, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteRuntimePolicy},
		{Method: "GET", Path: "/api/v1/settings/bypass", OperationID: "getBypass", Tag: "runtime", Summary: "The global bypass: namespaces and labels exempt from runtime protection",
			Resource: rRuntime, Action: "view", Response: fleet.Bypass{}, Handler: s.getBypass},
		{Method: "PUT", Path: "/api/v1/settings/bypass", OperationID: "putBypass", Tag: "runtime", Summary: "Replace the global bypass",
			Resource: rRuntime, Action: "edit", Request: fleet.Bypass{}, Response: fleet.Bypass{}, Handler: s.putBypass},

		{Method: "GET", Path: "/api/v1/enforcer-groups", OperationID: "listEnforcerGroups", Tag: "enforcers",
			Resource: rEnforcers, Action: "view", List: true, Response: store.EnforcerGroup{}, Handler: list("", s.db.ListEnforcerGroups)},
		{Method: "POST", Path: "/api/v1/enforcer-groups", OperationID: "createEnforcerGroup", Tag: "enforcers", Summary: "Create an enforcer group; the answer holds its enrollment token, shown only once",
			Resource: rEnforcers, Action: "edit", Request: groupRequest{}, Response: groupToken{}, Status: http.StatusCreated, Handler: s.createGroup},
		{Method: "GET", Path: "/api/v1/enforcer-groups/{name}", OperationID: "getEnforcerGroup", Tag: "enforcers",
			Resource: rEnforcers, Action: "view", Response: store.EnforcerGroup{}, Handler: s.getGroup},
		{Method: "PUT", Path: "/api/v1/enforcer-groups/{name}", OperationID: "updateEnforcerGroup", Tag: "enforcers", Summary: "Change a group's description and settings",
			Resource: rEnforcers, Action: "edit", Request: groupRequest{}, Response: store.EnforcerGroup{}, Handler: s.updateGroup},
		{Method: "DELETE", Path: "/api/v1/enforcer-groups/{name}", OperationID: "deleteEnforcerGroup", Tag: "enforcers", Summary: "Delete a group without agents",
			Resource: rEnforcers, Action: "edit", Status: http.StatusNoContent, Handler: s.deleteGroup},
		{Method: "POST", Path: "/api/v1/enforcer-groups/{name}/token", OperationID: "rotateEnrollmentToken", Tag: "enforcers", Summary: "Replace a group's enrollment token; the old one stops working at once",
			Resource: rEnforcers, Action: "edit", Response: groupToken{}, Handler: s.rotateToken},
		{Method: "GET", Path: "/api/v1/agents", OperationID: "listAgents", Tag: "enforcers", Summary: "Enrolled agents on hosts in the caller's scopes (filter fields: id, group, kind, hostname, version, lastSeen, enrolled, disabled)",
			Resource: rEnforcers, Action: "view", List: true, Response: store.Agent{}, Handler: s.listAgents},
		{Method: "GET", Path: "/api/v1/agents/{id}", OperationID: "getAgent", Tag: "enforcers", Summary: "One agent with its host's preflight capabilities",
			Resource: rEnforcers, Action: "view", Response: store.Agent{}, Handler: s.getAgent},
		{Method: "PATCH", Path: "/api/v1/agents/{id}", OperationID: "updateAgent", Tag: "enforcers", Summary: "Disable or re-enable an agent (a disabled agent cannot renew, send heartbeats or anything else)",
			Resource: rEnforcers, Action: "edit", Request: agentPatch{}, Response: store.Agent{}, Handler: s.updateAgent},
		{Method: "GET", Path: "/api/v1/runtime-events", OperationID: "listRuntimeEvents", Tag: "enforcers", Summary: "Runtime events from the audit trail, newest first: detections and blocks, or with type=runtime.detect, runtime.block or runtime.allow (admitted admission requests) one kind; audit filter fields",
			Resource: rEnforcers, Action: "view", List: true, Response: audit.Event{}, Handler: s.listRuntimeEvents},
		{Method: "GET", Path: "/api/v1/inventory", OperationID: "getInventory", Tag: "enforcers", Summary: "Hosts and their containers, namespaces with workloads and pods, and connections, as agents seen in the last 5 minutes reported them",
			Resource: rEnforcers, Action: "view", Response: inventoryView{}, Handler: s.getInventory},
	}
}

// parsedPolicy validates a runtime policy document and returns its
// stored form.
func parsedPolicy(p runtimepolicy.Policy, by string) (store.RuntimePolicy, error) {
	doc, err := json.Marshal(p)
	if err != nil {
		return store.RuntimePolicy{}, err
	}
	return store.RuntimePolicy{Name: p.Name, Mode: string(p.Mode), Enabled: p.Enabled, Document: doc, UpdatedBy: by}, nil
}

func invalidPolicy(err error) error {
	return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidPolicy, Message: err.Error()}
}

func callerName(r *http.Request) string {
	ap, _ := auth.PrincipalFrom(r.Context())
	if ap == nil {
		return ""
	}
	return ap.Username
}

func (s *Server) saveRuntimePolicy(create bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		b, err := readBody(w, r)
		if err != nil {
			return err
		}
		p, err := runtimepolicy.Parse(b)
		if err != nil {
			return invalidPolicy(err)
		}
		now := s.cfg.Now().UTC()
		var before any
		p.Created, p.Updated = now, now
		if !create {
			if p.Name != r.PathValue("name") {
				return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "name", Message: "the name in the body differs from the URL's"}
			}
			old, err := s.db.GetRuntimePolicy(r.Context(), p.Name)
			if err != nil {
				return storeErr(err)
			}
			before = old
			var prev runtimepolicy.Policy
			if json.Unmarshal(old.Document, &prev) == nil && !prev.Created.IsZero() {
				p.Created = prev.Created
			}
		}
		sp, err := parsedPolicy(p, callerName(r))
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			sp, err = s.db.CreateRuntimePolicy(r.Context(), sp)
			status = http.StatusCreated
		} else {
			sp, err = s.db.UpdateRuntimePolicy(r.Context(), sp)
		}
		if err != nil {
			return storeErr(err)
		}
		return s.respond(w, r, status, sp, actionRuntimePolicy, rRuntime, sp.Name, before, sp)
	}
}

func (s *Server) getRuntimePolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.db.GetRuntimePolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		return storeErr(err)
	}
	api.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) enableRuntimePolicy(w http.ResponseWriter, r *http.Request) error {
	var in enabledPatch
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if in.Enabled == nil {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "enabled", Message: "enabled is required"}
	}
	old, err := s.db.GetRuntimePolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		return storeErr(err)
	}
	p, err := runtimepolicy.Parse(old.Document)
	if err != nil {
		return invalidPolicy(err)
	}
	p.Enabled, p.Updated = *in.Enabled, s.cfg.Now().UTC()
	sp, err := parsedPolicy(p, callerName(r))
	if err != nil {
		return err
	}
	if sp, err = s.db.UpdateRuntimePolicy(r.Context(), sp); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, sp, actionRuntimePolicy, rRuntime, sp.Name, old, sp)
}

func (s *Server) deleteRuntimePolicy(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	old, err := s.db.GetRuntimePolicy(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	if err := s.db.DeleteRuntimePolicy(r.Context(), name); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, actionRuntimePolicy, rRuntime, name, old, nil)
}

func (s *Server) exportRuntimePolicies(w http.ResponseWriter, r *http.Request) error {
	out := []json.RawMessage{}
	for cursor := ""; ; {
		page, err := s.db.ListRuntimePolicies(r.Context(), store.ListOptions{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return storeErr(err)
		}
		for _, p := range page.Items {
			out = append(out, p.Document)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="mamori-runtime-policies.json"`)
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) importRuntimePolicies(w http.ResponseWriter, r *http.Request) error {
	var raw json.RawMessage
	if err := api.DecodeJSON(w, r, &raw, maxPolicyImport); err != nil {
		return err
	}
	if t := strings.TrimSpace(string(raw)); !strings.HasPrefix(t, "[") {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidJSON, Message: "the body must be a JSON array of runtime policies"}
	}
	ps, err := runtimepolicy.ParseBundle(raw)
	if err != nil {
		return invalidPolicy(err)
	}
	now := s.cfg.Now().UTC()
	sps := make([]store.RuntimePolicy, 0, len(ps))
	for _, p := range ps {
		if p.Created.IsZero() {
			p.Created = now
		}
		p.Updated = now
		sp, err := parsedPolicy(p, callerName(r))
		if err != nil {
			return err
		}
		sps = append(sps, sp)
	}
	stored, err := s.db.ImportRuntimePolicies(r.Context(), sps)
	if err != nil {
		return storeErr(err)
	}
	names := make([]string, len(stored))
	for i, p := range stored {
		names[i] = p.Name
	}
	if stored == nil {
		stored = []store.RuntimePolicy{}
	}
	return s.respond(w, r, http.StatusOK, stored, actionRuntimePolicy, rRuntime, "import", nil, map[string]any{"imported": names})
}

func (s *Server) listBuiltins(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, runtimepolicy.Builtins())
	return nil
}

func (s *Server) loadBuiltin(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	i := slices.IndexFunc(runtimepolicy.Builtins(), func(p runtimepolicy.Policy) bool { return p.Name == name })
	if i < 0 {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "no built-in runtime policy %q", name)
	}
	p := runtimepolicy.Builtins()[i]
	now := s.cfg.Now().UTC()
	p.Created, p.Updated = now, now
	sp, err := parsedPolicy(p, callerName(r))
	if err != nil {
		return err
	}
	if sp, err = s.db.CreateRuntimePolicy(r.Context(), sp); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, sp, actionRuntimePolicy, rRuntime, sp.Name, nil, sp)
}

func (s *Server) getBypass(w http.ResponseWriter, r *http.Request) error {
	b, err := s.db.Bypass(r.Context())
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, b)
	return nil
}

// validBypass checks the bypass lists: namespaces are Kubernetes names,
// labels "key" or "key=value".
func validBypass(b fleet.Bypass) error {
	if len(b.Namespaces) > 256 || len(b.Labels) > 256 {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "at most 256 namespaces and 256 labels"}
	}
	for _, ns := range b.Namespaces {
		if !validText(ns, 63) || strings.ContainsAny(ns, " =,") {
			return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "namespaces", Message: "namespace " + jsonString(ns) + " is not a namespace name"}
		}
	}
	for _, l := range b.Labels {
		k, _, _ := strings.Cut(l, "=")
		if !validText(l, 317) || k == "" || strings.ContainsAny(k, " ,") {
			return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "labels", Message: "label " + jsonString(l) + " is not key or key=value"}
		}
	}
	return nil
}

func jsonString(s string) string {
	if len(s) > 80 {
		s = s[:80]
	}
	return string(jsonBody(s))
}

func (s *Server) putBypass(w http.ResponseWriter, r *http.Request) error {
	var in fleet.Bypass
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := validBypass(in); err != nil {
		return err
	}
	old, err := s.db.Bypass(r.Context())
	if err != nil {
		return err
	}
	if _, err := s.db.SetBypass(r.Context(), in); err != nil {
		return storeErr(err)
	}
	out, err := s.db.Bypass(r.Context())
	if err != nil {
		return err
	}
	return s.respond(w, r, http.StatusOK, out, actionBypassUpdate, rRuntime, "bypass", old, out)
}

// groupCheck allows changing groups only on the Global scope: a group's
// agents may sit on any host.
func groupCheck(r *http.Request, action rbac.Action) error {
	return check(r.Context(), action, rbac.Enforcers, rbac.Attributes{})
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var in groupRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := groupCheck(r, rbac.Edit); err != nil {
		return err
	}
	if !validText(in.Name, 64) {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "name", Message: "name must be 1 to 64 printable characters"}
	}
	g := store.EnforcerGroup{Name: in.Name, Description: in.Description, Settings: store.DefaultGroupSettings()}
	if in.Settings != nil {
		g.Settings = *in.Settings
	}
	token := newSecret("mamori-enroll-", 32)
	g, err := s.db.CreateEnforcerGroup(r.Context(), g, hashToken(token))
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusCreated, groupToken{Token: token, Group: g}, actionGroupUpdate, rEnforcers, g.Name, nil, g)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.db.GetEnforcerGroup(r.Context(), r.PathValue("name"))
	if err != nil {
		return storeErr(err)
	}
	api.WriteJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	var in groupRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := groupCheck(r, rbac.Edit); err != nil {
		return err
	}
	name := r.PathValue("name")
	if in.Name != "" && in.Name != name {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "name", Message: "the name in the body differs from the URL's"}
	}
	old, err := s.db.GetEnforcerGroup(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	g := old
	g.Description = in.Description
	if in.Settings != nil {
		g.Settings = *in.Settings
	}
	if g, err = s.db.UpdateEnforcerGroup(r.Context(), g); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, g, actionGroupUpdate, rEnforcers, g.Name, old, g)
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := groupCheck(r, rbac.Edit); err != nil {
		return err
	}
	name := r.PathValue("name")
	old, err := s.db.GetEnforcerGroup(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	if err := s.db.DeleteEnforcerGroup(r.Context(), name); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusNoContent, nil, actionGroupUpdate, rEnforcers, name, old, nil)
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) error {
	if err := groupCheck(r, rbac.Edit); err != nil {
		return err
	}
	name := r.PathValue("name")
	g, err := s.db.GetEnforcerGroup(r.Context(), name)
	if err != nil {
		return storeErr(err)
	}
	token := newSecret("mamori-enroll-", 32)
	if err := s.db.SetEnforcerGroupToken(r.Context(), name, hashToken(token)); err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, groupToken{Token: token, Group: g}, actionGroupUpdate, rEnforcers, name, nil, map[string]string{"change": "enrollment token rotated"})
}

// hostScope turns the caller's list filter on enforcers into a hostname
// restriction: nil for every host, empty for none, else one conjunction
// of regular expressions per clause. Clauses on clusters match no agent
// (agents are matched by host name).
func hostScope(r *http.Request) (*store.HostScope, error) {
	p, ok := principalFrom(r.Context())
	if !ok {
		return nil, api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "authentication required")
	}
	f := rbac.ListFilter(p, rbac.View, rbac.Enforcers)
	switch f.Kind {
	case rbac.FilterAll:
		return nil, nil
	case rbac.FilterNone:
		return &store.HostScope{}, nil
	}
	hs := &store.HostScope{}
	for _, c := range f.Any {
		var conj []string
		for _, cond := range c.All {
			if cond.Attr != rbac.AttrHost {
				conj = nil
				break
			}
			var alts []string
			for _, g := range cond.Globs {
				alts = append(alts, strings.TrimSuffix(strings.TrimPrefix(g.Regexp(), "^"), "$"))
			}
			conj = append(conj, "^(?:"+strings.Join(alts, "|")+")$")
		}
		if len(conj) > 0 {
			hs.Match = append(hs.Match, conj)
		}
	}
	return hs, nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	hs, err := hostScope(r)
	if err != nil {
		return err
	}
	p, err := s.db.ListAgents(r.Context(), o, hs)
	return writePage(w, p, err)
}

// agentFor loads an agent the caller may act on; others are not found.
func (s *Server) agentFor(r *http.Request, action rbac.Action) (store.Agent, error) {
	a, err := s.db.GetAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return a, storeErr(err)
	}
	return a, check(r.Context(), action, rbac.Enforcers, agentAttrs(a))
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentFor(r, rbac.View)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) updateAgent(w http.ResponseWriter, r *http.Request) error {
	var in agentPatch
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if in.Disabled == nil {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "disabled", Message: "disabled is required"}
	}
	old, err := s.agentFor(r, rbac.Edit)
	if err != nil {
		return err
	}
	if err := s.db.SetAgentDisabled(r.Context(), old.ID, *in.Disabled); err != nil {
		return storeErr(err)
	}
	a, err := s.db.GetAgent(r.Context(), old.ID)
	if err != nil {
		return storeErr(err)
	}
	return s.respond(w, r, http.StatusOK, a, actionAgentUpdate, rEnforcers, a.ID, map[string]bool{"disabled": old.Disabled}, map[string]bool{"disabled": a.Disabled})
}

// listRuntimeEvents lists runtime events from the audit trail. A scoped
// caller sees the events of hosts in their scopes; such a page may hold
// fewer items than the limit (follow nextCursor).
func (s *Server) listRuntimeEvents(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	types := actionRuntimeDetect + "," + actionRuntimeBlock
	switch t := r.URL.Query().Get("type"); t {
	case "":
	case actionRuntimeDetect, actionRuntimeBlock, actionRuntimeAllow:
		types = t
	default:
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "type", Message: "type must be runtime.detect, runtime.block or runtime.allow"}
	}
	// A filter ending in an odd run of backslashes would escape the
	// separator and swallow the restriction.
	if n := len(o.Filter) - len(strings.TrimRight(o.Filter, `\`)); n%2 == 1 {
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidFilter, Field: "filter", Message: "the filter ends in an unfinished escape"}
	}
	o.Filter = strings.TrimPrefix(o.Filter+";action="+types+";resourceType="+resourceRuntimeEv, ";")
	page, err := s.db.ListAuditEvents(r.Context(), o)
	if err != nil {
		return storeErr(err)
	}
	p, _ := principalFrom(r.Context())
	all := rbac.ListFilter(p, rbac.View, rbac.Enforcers).Kind == rbac.FilterAll
	out := store.Page[audit.Event]{Next: page.Next}
	for _, raw := range page.Items {
		var e audit.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		if all || rbac.Decide(p, rbac.View, rbac.Enforcers, rbac.Attributes{Host: e.ResourceID}).Allow {
			out.Items = append(out.Items, e)
		}
	}
	return writePage(w, out, nil)
}

func (s *Server) getInventory(w http.ResponseWriter, r *http.Request) error {
	invs, err := s.db.Inventories(r.Context(), s.cfg.Now().Add(-inventoryFreshness))
	if err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	view := inventoryView{Hosts: []inventoryHost{}, Namespaces: []inventoryNamespace{}, Connections: []fleet.Connection{}}
	byNS := map[string][]inventoryWorkload{}
	for _, ai := range invs {
		if !rbac.Decide(p, rbac.View, rbac.Enforcers, agentAttrs(ai.Agent)).Allow {
			continue
		}
		inv := ai.Inventory
		if len(inv.Containers) > 0 || ai.Agent.Kind == fleet.KindEnforcer {
			cs := inv.Containers
			if cs == nil {
				cs = []fleet.Container{}
			}
			view.Hosts = append(view.Hosts, inventoryHost{Host: ai.Agent.Hostname, AgentID: ai.Agent.ID, Kind: ai.Agent.Kind, Time: inv.Time, Containers: cs})
		}
		for _, wl := range inv.Workloads {
			byNS[wl.Namespace] = append(byNS[wl.Namespace], inventoryWorkload{Workload: wl, AgentID: ai.Agent.ID, Cluster: ai.Agent.Hostname})
		}
		view.Connections = append(view.Connections, inv.Connections...)
	}
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		view.Namespaces = append(view.Namespaces, inventoryNamespace{Namespace: ns, Workloads: byNS[ns]})
	}
	api.WriteJSON(w, http.StatusOK, view)
	return nil
}
