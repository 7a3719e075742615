package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/fleetca"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// Fleet limits.
const (
	// maxFleetBody bounds enrollment, renewal, heartbeat and policy
	// requests.
	maxFleetBody = 64 << 10
	// maxFleetBulk bounds event batches and inventories.
	maxFleetBulk = 8 << 20
	// maxBatchEvents is the most events one batch may carry.
	maxBatchEvents = 1000
	// maxEventSize bounds one event's JSON (the audit trail's documents
	// are limited to 1 MiB).
	maxEventSize = 64 << 10
	// maxCapabilities bounds a heartbeat's preflight list.
	maxCapabilities = 256
)

// Audit actions of the fleet.
const (
	actionEnroll        = "fleet.enroll"
	actionRenew         = "fleet.renew"
	actionAgentUpdate   = "fleet.agent_update"
	actionGroupUpdate   = "fleet.group_update"
	actionRuntimeDetect = "runtime." + fleet.StatusDetect
	actionRuntimeBlock  = "runtime." + fleet.StatusBlock
	actionRuntimeAllow  = "runtime." + fleet.StatusAllow
	actionRuntimePolicy = "runtime_policy.update"
	actionBypassUpdate  = "fleet.bypass_update"
	resourceRuntimeEv   = "runtime_events"
)

// fleetService implements fleet.Backend for the server: a gateway calls
// it in process (FleetBackend) or through the REST handlers at
// fleet.Path*, which authorize the gateway's token first.
type fleetService struct {
	s  *Server
	ca *fleetca.CA
	// events serializes event batches so that a batch delivered twice at
	// once is stored once.
	events sync.Mutex
}

var _ fleet.Backend = (*fleetService)(nil)

func newFleetService(s *Server, dataDir string) (*fleetService, error) {
	ca, err := fleetca.LoadOrCreate(dataDir, fleetca.WithClock(s.cfg.Now))
	if err != nil {
		return nil, err
	}
	return &fleetService{s: s, ca: ca}, nil
}

// FleetBackend is the server's fleet backend, for a gateway running in
// the same process. Calls through it are not authorized again: the
// gateway has authenticated the agent by its client certificate.
func (s *Server) FleetBackend() fleet.Backend { return s.fleet }

// FleetCA is the fleet certificate authority: gateways trust agents'
// client certificates by it, and it issues gateways' serving
// certificates (IssueGateway).
func (s *Server) FleetCA() *fleetca.CA { return s.fleet.ca }

// hashToken is the stored form of an enrollment token. The token is 256
// random bits, so a fast unsalted hash is enough: there is nothing to
// guess, and a slow password hash would only let a bad-token flood burn
// CPU.
func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// newSecret returns prefix followed by 256 random bits in hex.
func newSecret(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// fleetActor is the audit actor of a fleet call: the gateway's API
// token, or the in-process gateway.
func fleetActor(ctx context.Context) audit.Actor {
	if ap, ok := auth.PrincipalFrom(ctx); ok {
		return actorOf(ap)
	}
	return audit.Actor{Kind: audit.ActorSystem, ID: "gateway", Name: "gateway"}
}

// appendAudit appends a fleet audit event by the calling gateway.
func (f *fleetService) appendAudit(ctx context.Context, e audit.Event) (audit.Event, error) {
	e.Actor = fleetActor(ctx)
	return f.s.audit.Append(ctx, e)
}

func badRequest(field, format string, args ...any) error {
	e := api.Errorf(http.StatusBadRequest, api.CodeBadRequest, format, args...)
	e.Field = field
	return e
}

// validText reports whether s is valid UTF-8 of 1 to max bytes without
// control characters.
func validText(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Enroll admits an agent whose request carries a group's enrollment
// token, and signs its certificate request.
func (f *fleetService) Enroll(ctx context.Context, req fleet.EnrollRequest) (fleet.EnrollResponse, error) {
	switch req.Kind {
	case fleet.KindEnforcer, fleet.KindKubeEnforcer, fleet.KindGateway:
	default:
		return fleet.EnrollResponse{}, badRequest("kind", "kind %q is not enforcer, kube-enforcer or gateway", req.Kind)
	}
	if !validText(req.Hostname, 253) {
		return fleet.EnrollResponse{}, badRequest("hostname", "hostname must be 1 to 253 printable characters")
	}
	if len(req.Version) > 128 {
		return fleet.EnrollResponse{}, badRequest("version", "version is longer than 128 characters")
	}
	tokens, err := f.s.db.EnforcerGroupTokens(ctx)
	if err != nil {
		return fleet.EnrollResponse{}, err
	}
	presented := []byte(hashToken(req.Token))
	var group *store.GroupToken
	for i := range tokens {
		if subtle.ConstantTimeCompare(presented, []byte(tokens[i].Hash)) == 1 && req.Token != "" {
			group = &tokens[i]
		}
	}
	if group == nil {
		_, aerr := f.appendAudit(ctx, audit.Event{Action: actionEnroll, ResourceType: string(rbac.Enforcers), ResourceID: req.Hostname,
			Outcome: audit.Denied, Reason: "the enrollment token matches no enforcer group",
			After: jsonBody(map[string]string{"hostname": req.Hostname, "kind": req.Kind, "version": req.Version})})
		if aerr != nil {
			return fleet.EnrollResponse{}, aerr
		}
		return fleet.EnrollResponse{}, api.Errorf(http.StatusForbidden, api.CodeForbidden, "the enrollment token matches no enforcer group")
	}
	if _, err := fleetca.ParseCSR([]byte(req.CSR)); err != nil {
		return fleet.EnrollResponse{}, badRequest("csr", "%v", err)
	}
	id := newSecret("agent-", 12)
	is, err := f.ca.SignAgent([]byte(req.CSR), id)
	if err != nil {
		return fleet.EnrollResponse{}, badRequest("csr", "%v", err)
	}
	a, err := f.s.db.CreateAgent(ctx, store.Agent{ID: id, GroupID: group.ID, Kind: req.Kind, Hostname: req.Hostname, Version: req.Version,
		CertSerial: is.Serial, NotAfter: is.NotAfter})
	if err != nil {
		return fleet.EnrollResponse{}, storeErr(err)
	}
	if _, err := f.appendAudit(ctx, audit.Event{Action: actionEnroll, ResourceType: string(rbac.Enforcers), ResourceID: id, Outcome: audit.Success,
		After: jsonBody(map[string]any{"agentId": id, "group": a.Group, "kind": a.Kind, "hostname": a.Hostname, "version": a.Version, "certSerial": is.Serial})}); err != nil {
		return fleet.EnrollResponse{}, err
	}
	return fleet.EnrollResponse{AgentID: id, Group: a.Group, Certificate: string(is.CertPEM), CA: string(f.ca.CertPEM()),
		NotAfter: is.NotAfter, RenewFrom: is.RenewFrom}, nil
}

// agent returns an enrolled agent that is not disabled.
func (f *fleetService) agent(ctx context.Context, id string) (store.Agent, error) {
	if id == "" || len(id) > 128 {
		return store.Agent{}, badRequest("agentId", "agentId is required")
	}
	a, err := f.s.db.GetAgent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no enrolled agent %q", id)
	}
	if err != nil {
		return a, err
	}
	if a.Disabled {
		return a, api.Errorf(http.StatusForbidden, api.CodeForbidden, "agent %q is disabled", id)
	}
	return a, nil
}

// Renew signs a fresh certificate for an enrolled, enabled agent.
func (f *fleetService) Renew(ctx context.Context, req fleet.RenewRequest) (fleet.RenewResponse, error) {
	a, err := f.agent(ctx, req.AgentID)
	if err != nil {
		return fleet.RenewResponse{}, err
	}
	is, err := f.ca.SignAgent([]byte(req.CSR), a.ID)
	if err != nil {
		return fleet.RenewResponse{}, badRequest("csr", "%v", err)
	}
	if err := f.s.db.SetAgentCertificate(ctx, a.ID, is.Serial, is.NotAfter); err != nil {
		return fleet.RenewResponse{}, storeErr(err)
	}
	if _, err := f.appendAudit(ctx, audit.Event{Action: actionRenew, ResourceType: string(rbac.Enforcers), ResourceID: a.ID, Outcome: audit.Success,
		After: jsonBody(map[string]any{"certSerial": is.Serial, "notAfter": is.NotAfter})}); err != nil {
		return fleet.RenewResponse{}, err
	}
	return fleet.RenewResponse{Certificate: string(is.CertPEM), NotAfter: is.NotAfter, RenewFrom: is.RenewFrom}, nil
}

// Heartbeat records an agent's state and tells it the policy revision
// and its group's settings.
func (f *fleetService) Heartbeat(ctx context.Context, hb fleet.Heartbeat) (fleet.HeartbeatReply, error) {
	a, err := f.agent(ctx, hb.AgentID)
	if err != nil {
		return fleet.HeartbeatReply{}, err
	}
	if len(hb.Capabilities) > maxCapabilities {
		return fleet.HeartbeatReply{}, badRequest("capabilities", "more than %d capabilities", maxCapabilities)
	}
	for _, c := range hb.Capabilities {
		if !validText(c.Name, 128) || len(c.Detail) > 1024 {
			return fleet.HeartbeatReply{}, badRequest("capabilities", "capability %.40q: a name of 1 to 128 printable characters and a detail of at most 1024 are required", c.Name)
		}
	}
	if len(hb.Version) > 128 || hb.Containers < 0 || hb.EventsBuffered < 0 {
		return fleet.HeartbeatReply{}, badRequest("", "version, containers or eventsBuffered out of range")
	}
	if err := f.s.db.AgentHeartbeat(ctx, hb); err != nil {
		return fleet.HeartbeatReply{}, storeErr(err)
	}
	g, err := f.s.db.GetEnforcerGroup(ctx, a.Group)
	if err != nil {
		return fleet.HeartbeatReply{}, err
	}
	rev, err := f.s.db.FleetRevision(ctx)
	if err != nil {
		return fleet.HeartbeatReply{}, err
	}
	return fleet.HeartbeatReply{PolicyRevision: rev, Settings: g.Settings}, nil
}

// Policies returns the bundle in force for an agent: every enabled
// runtime policy (policies apply to every group; a group's settings
// switch protection on and off), the application scopes they name, the
// bypass and the group's settings.
func (f *fleetService) Policies(ctx context.Context, req fleet.PolicyRequest) (fleet.PolicyBundle, error) {
	a, err := f.agent(ctx, req.AgentID)
	if err != nil {
		return fleet.PolicyBundle{}, err
	}
	g, err := f.s.db.GetEnforcerGroup(ctx, a.Group)
	if err != nil {
		return fleet.PolicyBundle{}, err
	}
	// The revision is read first: a change racing with this call makes
	// the agent fetch again on its next heartbeat.
	rev, err := f.s.db.FleetRevision(ctx)
	if err != nil {
		return fleet.PolicyBundle{}, err
	}
	pols, err := f.s.db.EnabledRuntimePolicies(ctx)
	if err != nil {
		return fleet.PolicyBundle{}, err
	}
	bypass, err := f.s.db.Bypass(ctx)
	if err != nil {
		return fleet.PolicyBundle{}, err
	}
	b := fleet.PolicyBundle{Revision: rev, Settings: g.Settings, Policies: []json.RawMessage{}, Bypass: bypass}
	var scopes []string
	for _, p := range pols {
		b.Policies = append(b.Policies, p.Document)
		for _, sc := range policyScopes(p.Document) {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	slices.Sort(scopes)
	for _, name := range scopes {
		if name == rbac.GlobalScopeName {
			b.Scopes = append(b.Scopes, jsonBody(rbac.GlobalScope))
			continue
		}
		sc, err := f.s.db.GetAppScope(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since; the agent treats an unknown scope as matching nothing
		}
		if err != nil {
			return fleet.PolicyBundle{}, err
		}
		b.Scopes = append(b.Scopes, sc.Definition)
	}
	return b, nil
}

// Events stores a batch of runtime events in the audit trail, each once.
func (f *fleetService) Events(ctx context.Context, batch fleet.EventBatch) (fleet.EventAck, error) {
	a, err := f.agent(ctx, batch.AgentID)
	if err != nil {
		return fleet.EventAck{}, err
	}
	if len(batch.Events) > maxBatchEvents {
		return fleet.EventAck{}, badRequest("events", "a batch holds at most %d events, got %d", maxBatchEvents, len(batch.Events))
	}
	docs := make([]json.RawMessage, len(batch.Events))
	for i := range batch.Events {
		ev := &batch.Events[i]
		switch {
		case !validText(ev.ID, 128):
			return fleet.EventAck{}, badRequest("events", "event %d: id must be 1 to 128 printable characters", i)
		case ev.Status != fleet.StatusDetect && ev.Status != fleet.StatusBlock && ev.Status != fleet.StatusAllow:
			return fleet.EventAck{}, badRequest("events", "event %q: status %q is not detect, block or allow", ev.ID, ev.Status)
		case ev.Time.IsZero() || ev.Time.Year() < 2000 || ev.Time.Year() > 9999:
			return fleet.EventAck{}, badRequest("events", "event %q: time is missing or out of range", ev.ID)
		case ev.AgentID != "" && ev.AgentID != a.ID:
			return fleet.EventAck{}, badRequest("events", "event %q: agentId differs from the batch's", ev.ID)
		}
		// The agent and host are the authenticated agent's, whatever the
		// event says.
		ev.AgentID, ev.Host = a.ID, a.Hostname
		if ev.Count < 1 {
			ev.Count = 1
		}
		docs[i] = jsonBody(ev)
		if len(docs[i]) > maxEventSize {
			return fleet.EventAck{}, badRequest("events", "event %q: %d bytes, larger than the limit of %d", ev.ID, len(docs[i]), maxEventSize)
		}
	}
	f.events.Lock()
	defer f.events.Unlock()
	var ack fleet.EventAck
	for i, ev := range batch.Events {
		seen, err := f.s.db.RuntimeEventSeen(ctx, a.ID, ev.ID)
		if err != nil {
			return ack, err
		}
		if seen {
			ack.Duplicates++
			continue
		}
		action := actionRuntimeDetect
		switch ev.Status {
		case fleet.StatusBlock:
			action = actionRuntimeBlock
		case fleet.StatusAllow:
			action = actionRuntimeAllow
		}
		stored, err := f.s.audit.Append(ctx, audit.Event{Actor: audit.Actor{Kind: audit.ActorSystem, ID: a.ID, Name: a.Hostname},
			Action: action, ResourceType: resourceRuntimeEv, ResourceID: a.Hostname, Outcome: audit.Success,
			Reason: ev.Message, After: docs[i]})
		if err != nil {
			return ack, err
		}
		// Marked after the audit append: a failure in between stores the
		// event again when the agent re-sends it (at least once, never
		// lost).
		if err := f.s.db.RecordRuntimeEvent(ctx, a.ID, ev.ID, stored.Seq); err != nil && !errors.Is(err, store.ErrConflict) {
			return ack, err
		}
		ack.Stored++
	}
	return ack, nil
}

// Inventory replaces the agent's workload inventory.
func (f *fleetService) Inventory(ctx context.Context, inv fleet.Inventory) error {
	a, err := f.agent(ctx, inv.AgentID)
	if err != nil {
		return err
	}
	inv.Host = a.Hostname
	if inv.Time.IsZero() {
		inv.Time = f.s.cfg.Now().UTC()
	}
	return storeErr(f.s.db.PutInventory(ctx, inv))
}

// policyScopes returns the application scopes a stored (validated)
// runtime policy document names.
func policyScopes(doc json.RawMessage) []string {
	var p struct {
		Scopes []string `json:"scopes"`
	}
	_ = json.Unmarshal(doc, &p)
	return p.Scopes
}

// fleetRoutes are the REST relay of fleet.Backend for gateways: the
// gateway's API token needs edit on enforcers (the built-in Gateway role)
// in a scope covering the agent's host.
func (s *Server) fleetRoutes() []*api.Route {
	edit := func(r *http.Request, host string) error {
		return check(r.Context(), rbac.Edit, rbac.Enforcers, rbac.Attributes{Host: host})
	}
	agentHost := func(r *http.Request, id string) error {
		a, err := s.db.GetAgent(r.Context(), id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return api.Errorf(http.StatusNotFound, api.CodeNotFound, "no enrolled agent %q", id)
			}
			return err
		}
		return edit(r, a.Hostname)
	}
	f := s.fleet
	return []*api.Route{
		{Method: "POST", Path: fleet.PathEnroll, OperationID: "fleetEnroll", Tag: "fleet", Summary: "Enroll an agent with its group's enrollment token; signs its certificate request",
			Resource: rEnforcers, Action: "edit", Request: fleet.EnrollRequest{}, Response: fleet.EnrollResponse{},
			Handler: relay(maxFleetBody, func(r *http.Request, in fleet.EnrollRequest) (any, error) {
				if err := edit(r, in.Hostname); err != nil {
					return nil, err
				}
				return f.Enroll(r.Context(), in)
			})},
		{Method: "POST", Path: fleet.PathRenew, OperationID: "fleetRenew", Tag: "fleet", Summary: "Renew an agent's certificate",
			Resource: rEnforcers, Action: "edit", Request: fleet.RenewRequest{}, Response: fleet.RenewResponse{},
			Handler: relay(maxFleetBody, func(r *http.Request, in fleet.RenewRequest) (any, error) {
				if err := agentHost(r, in.AgentID); err != nil {
					return nil, err
				}
				return f.Renew(r.Context(), in)
			})},
		{Method: "POST", Path: fleet.PathHeartbeat, OperationID: "fleetHeartbeat", Tag: "fleet", Summary: "An agent's heartbeat; answers the policy revision and the group's settings",
			Resource: rEnforcers, Action: "edit", Request: fleet.Heartbeat{}, Response: fleet.HeartbeatReply{},
			Handler: relay(maxFleetBody, func(r *http.Request, in fleet.Heartbeat) (any, error) {
				if err := agentHost(r, in.AgentID); err != nil {
					return nil, err
				}
				return f.Heartbeat(r.Context(), in)
			})},
		{Method: "POST", Path: fleet.PathPolicies, OperationID: "fleetPolicies", Tag: "fleet", Summary: "The policy bundle in force for an agent",
			Resource: rEnforcers, Action: "edit", Request: fleet.PolicyRequest{}, Response: fleet.PolicyBundle{},
			Handler: relay(maxFleetBody, func(r *http.Request, in fleet.PolicyRequest) (any, error) {
				if err := agentHost(r, in.AgentID); err != nil {
					return nil, err
				}
				return f.Policies(r.Context(), in)
			})},
		{Method: "POST", Path: fleet.PathEvents, OperationID: "fleetEvents", Tag: "fleet", Summary: "Store a batch of runtime events in the audit trail (each event once)",
			Resource: rEnforcers, Action: "edit", Request: fleet.EventBatch{}, Response: fleet.EventAck{},
			Handler: relay(maxFleetBulk, func(r *http.Request, in fleet.EventBatch) (any, error) {
				if err := agentHost(r, in.AgentID); err != nil {
					return nil, err
				}
				return f.Events(r.Context(), in)
			})},
		{Method: "POST", Path: fleet.PathInventory, OperationID: "fleetInventory", Tag: "fleet", Summary: "Replace an agent's workload inventory",
			Resource: rEnforcers, Action: "edit", Request: fleet.Inventory{}, Status: http.StatusNoContent,
			Handler: relay(maxFleetBulk, func(r *http.Request, in fleet.Inventory) (any, error) {
				if err := agentHost(r, in.AgentID); err != nil {
					return nil, err
				}
				return nil, f.Inventory(r.Context(), in)
			})},
	}
}

// relay decodes a fleet request strictly (bounded size, no unknown
// fields), runs fn and writes its answer: JSON, or 204 when it is nil.
func relay[T any](limit int64, fn func(r *http.Request, in T) (any, error)) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in T
		if err := api.DecodeJSON(w, r, &in, limit); err != nil {
			return err
		}
		out, err := fn(r, in)
		if err != nil {
			return err
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		api.WriteJSON(w, http.StatusOK, out)
		return nil
	}
}
