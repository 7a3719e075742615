package fleetv1

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mamorisec/mamori/internal/fleet"
)

// The conversions below map the zero time to an absent timestamp and back,
// and empty slices and maps to nil, so a value survives a round trip both
// ways.

func toTimestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	// AsTime of an out-of-range timestamp still returns a time; only its
	// normalisation is lossy, which conversion does not need to repair.
	return ts.AsTime()
}

func toBytes(in []json.RawMessage) [][]byte {
	if len(in) == 0 {
		return nil
	}
	out := make([][]byte, len(in))
	for i, m := range in {
		out[i] = []byte(m)
	}
	return out
}

func fromBytes(in [][]byte) []json.RawMessage {
	if len(in) == 0 {
		return nil
	}
	out := make([]json.RawMessage, len(in))
	for i, b := range in {
		out[i] = json.RawMessage(b)
	}
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func mapOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func convertSlice[A, B any](in []A, f func(A) B) []B {
	if len(in) == 0 {
		return nil
	}
	out := make([]B, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// FromEnrollRequest converts a fleet.EnrollRequest to its message.
func FromEnrollRequest(r fleet.EnrollRequest) *EnrollRequest {
	return &EnrollRequest{Token: r.Token, Kind: r.Kind, Hostname: r.Hostname, Version: r.Version, Csr: r.CSR}
}

// ToEnrollRequest converts a message to a fleet.EnrollRequest.
func ToEnrollRequest(m *EnrollRequest) fleet.EnrollRequest {
	return fleet.EnrollRequest{Token: m.GetToken(), Kind: m.GetKind(), Hostname: m.GetHostname(), Version: m.GetVersion(), CSR: m.GetCsr()}
}

// FromEnrollResponse converts a fleet.EnrollResponse to its message.
func FromEnrollResponse(r fleet.EnrollResponse) *EnrollResponse {
	return &EnrollResponse{AgentId: r.AgentID, Group: r.Group, Certificate: r.Certificate, Ca: r.CA,
		NotAfter: toTimestamp(r.NotAfter), RenewFrom: toTimestamp(r.RenewFrom)}
}

// ToEnrollResponse converts a message to a fleet.EnrollResponse.
func ToEnrollResponse(m *EnrollResponse) fleet.EnrollResponse {
	return fleet.EnrollResponse{AgentID: m.GetAgentId(), Group: m.GetGroup(), Certificate: m.GetCertificate(), CA: m.GetCa(),
		NotAfter: fromTimestamp(m.GetNotAfter()), RenewFrom: fromTimestamp(m.GetRenewFrom())}
}

// FromRenewRequest converts a fleet.RenewRequest to its message.
func FromRenewRequest(r fleet.RenewRequest) *RenewRequest {
	return &RenewRequest{AgentId: r.AgentID, Csr: r.CSR}
}

// ToRenewRequest converts a message to a fleet.RenewRequest.
func ToRenewRequest(m *RenewRequest) fleet.RenewRequest {
	return fleet.RenewRequest{AgentID: m.GetAgentId(), CSR: m.GetCsr()}
}

// FromRenewResponse converts a fleet.RenewResponse to its message.
func FromRenewResponse(r fleet.RenewResponse) *RenewResponse {
	return &RenewResponse{Certificate: r.Certificate, NotAfter: toTimestamp(r.NotAfter), RenewFrom: toTimestamp(r.RenewFrom)}
}

// ToRenewResponse converts a message to a fleet.RenewResponse.
func ToRenewResponse(m *RenewResponse) fleet.RenewResponse {
	return fleet.RenewResponse{Certificate: m.GetCertificate(), NotAfter: fromTimestamp(m.GetNotAfter()), RenewFrom: fromTimestamp(m.GetRenewFrom())}
}

func fromSettings(s fleet.GroupSettings) *GroupSettings {
	return &GroupSettings{AuditOnly: s.AuditOnly, ContainerProtection: s.ContainerProtection, HostProtection: s.HostProtection, FailClosed: s.FailClosed}
}

func toSettings(m *GroupSettings) fleet.GroupSettings {
	return fleet.GroupSettings{AuditOnly: m.GetAuditOnly(), ContainerProtection: m.GetContainerProtection(), HostProtection: m.GetHostProtection(), FailClosed: m.GetFailClosed()}
}

func fromCapability(c fleet.Capability) *Capability {
	return &Capability{Name: c.Name, Available: c.Available, Detail: c.Detail}
}

func toCapability(m *Capability) fleet.Capability {
	return fleet.Capability{Name: m.GetName(), Available: m.GetAvailable(), Detail: m.GetDetail()}
}

// FromHeartbeat converts a fleet.Heartbeat to its message.
func FromHeartbeat(h fleet.Heartbeat) *Heartbeat {
	return &Heartbeat{AgentId: h.AgentID, Hostname: h.Hostname, Version: h.Version,
		Capabilities: convertSlice(h.Capabilities, fromCapability), PolicyRevision: h.PolicyRevision,
		Containers: int64(h.Containers), EventsBuffered: int64(h.EventsBuffered)}
}

// ToHeartbeat converts a message to a fleet.Heartbeat.
func ToHeartbeat(m *Heartbeat) fleet.Heartbeat {
	return fleet.Heartbeat{AgentID: m.GetAgentId(), Hostname: m.GetHostname(), Version: m.GetVersion(),
		Capabilities: convertSlice(m.GetCapabilities(), toCapability), PolicyRevision: m.GetPolicyRevision(),
		Containers: int(m.GetContainers()), EventsBuffered: int(m.GetEventsBuffered())}
}

// FromHeartbeatReply converts a fleet.HeartbeatReply to its message.
func FromHeartbeatReply(r fleet.HeartbeatReply) *HeartbeatReply {
	return &HeartbeatReply{PolicyRevision: r.PolicyRevision, Settings: fromSettings(r.Settings)}
}

// ToHeartbeatReply converts a message to a fleet.HeartbeatReply.
func ToHeartbeatReply(m *HeartbeatReply) fleet.HeartbeatReply {
	return fleet.HeartbeatReply{PolicyRevision: m.GetPolicyRevision(), Settings: toSettings(m.GetSettings())}
}

// FromPolicyRequest converts a fleet.PolicyRequest to its message.
func FromPolicyRequest(r fleet.PolicyRequest) *PolicyRequest {
	return &PolicyRequest{AgentId: r.AgentID, Since: r.Since}
}

// ToPolicyRequest converts a message to a fleet.PolicyRequest.
func ToPolicyRequest(m *PolicyRequest) fleet.PolicyRequest {
	return fleet.PolicyRequest{AgentID: m.GetAgentId(), Since: m.GetSince()}
}

// FromPolicyBundle converts a fleet.PolicyBundle to its message.
func FromPolicyBundle(b fleet.PolicyBundle) *PolicyBundle {
	return &PolicyBundle{Revision: b.Revision, Settings: fromSettings(b.Settings),
		Policies: toBytes(b.Policies), Scopes: toBytes(b.Scopes),
		Bypass: &Bypass{Namespaces: nilIfEmpty(b.Bypass.Namespaces), Labels: nilIfEmpty(b.Bypass.Labels)}}
}

// ToPolicyBundle converts a message to a fleet.PolicyBundle.
func ToPolicyBundle(m *PolicyBundle) fleet.PolicyBundle {
	return fleet.PolicyBundle{Revision: m.GetRevision(), Settings: toSettings(m.GetSettings()),
		Policies: fromBytes(m.GetPolicies()), Scopes: fromBytes(m.GetScopes()),
		Bypass: fleet.Bypass{Namespaces: nilIfEmpty(m.GetBypass().GetNamespaces()), Labels: nilIfEmpty(m.GetBypass().GetLabels())}}
}

func fromProcess(p fleet.Process) *Process {
	return &Process{Pid: int64(p.PID), Path: p.Path, Args: nilIfEmpty(p.Args), Uid: int64(p.UID), User: p.User}
}

func toProcess(m *Process) fleet.Process {
	return fleet.Process{PID: int(m.GetPid()), Path: m.GetPath(), Args: nilIfEmpty(m.GetArgs()), UID: int(m.GetUid()), User: m.GetUser()}
}

// FromEvent converts a fleet.Event to its message.
func FromEvent(e fleet.Event) *Event {
	return &Event{Id: e.ID, Time: toTimestamp(e.Time), AgentId: e.AgentID, Host: e.Host, Status: e.Status,
		Policy: e.Policy, Control: e.Control, Message: e.Message, Container: e.Container,
		ContainerId: e.ContainerID, Image: e.Image, Namespace: e.Namespace, Pod: e.Pod,
		Process: fromProcess(e.Process), Parents: convertSlice(e.Parents, fromProcess), Count: int64(e.Count)}
}

// ToEvent converts a message to a fleet.Event.
func ToEvent(m *Event) fleet.Event {
	return fleet.Event{ID: m.GetId(), Time: fromTimestamp(m.GetTime()), AgentID: m.GetAgentId(), Host: m.GetHost(),
		Status: m.GetStatus(), Policy: m.GetPolicy(), Control: m.GetControl(), Message: m.GetMessage(),
		Container: m.GetContainer(), ContainerID: m.GetContainerId(), Image: m.GetImage(),
		Namespace: m.GetNamespace(), Pod: m.GetPod(), Process: toProcess(m.GetProcess()),
		Parents: convertSlice(m.GetParents(), toProcess), Count: int(m.GetCount())}
}

// FromEventBatch converts a fleet.EventBatch to its message.
func FromEventBatch(b fleet.EventBatch) *EventBatch {
	return &EventBatch{AgentId: b.AgentID, Events: convertSlice(b.Events, FromEvent)}
}

// ToEventBatch converts a message to a fleet.EventBatch.
func ToEventBatch(m *EventBatch) fleet.EventBatch {
	return fleet.EventBatch{AgentID: m.GetAgentId(), Events: convertSlice(m.GetEvents(), ToEvent)}
}

// FromEventAck converts a fleet.EventAck to its message.
func FromEventAck(a fleet.EventAck) *EventAck {
	return &EventAck{Stored: int64(a.Stored), Duplicates: int64(a.Duplicates)}
}

// ToEventAck converts a message to a fleet.EventAck.
func ToEventAck(m *EventAck) fleet.EventAck {
	return fleet.EventAck{Stored: int(m.GetStored()), Duplicates: int(m.GetDuplicates())}
}

func fromContainer(c fleet.Container) *Container {
	return &Container{Id: c.ID, Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest, Runtime: c.Runtime,
		Labels: mapOrNil(c.Labels), Namespace: c.Namespace, Pod: c.Pod, Started: toTimestamp(c.Started),
		Processes: convertSlice(c.Processes, fromProcess), Protected: nilIfEmpty(c.Protected)}
}

func toContainer(m *Container) fleet.Container {
	return fleet.Container{ID: m.GetId(), Name: m.GetName(), Image: m.GetImage(), ImageDigest: m.GetImageDigest(),
		Runtime: m.GetRuntime(), Labels: mapOrNil(m.GetLabels()), Namespace: m.GetNamespace(), Pod: m.GetPod(),
		Started: fromTimestamp(m.GetStarted()), Processes: convertSlice(m.GetProcesses(), toProcess),
		Protected: nilIfEmpty(m.GetProtected())}
}

func fromPod(p fleet.Pod) *Pod {
	return &Pod{Name: p.Name, Node: p.Node, Images: nilIfEmpty(p.Images), Privileged: p.Privileged}
}

func toPod(m *Pod) fleet.Pod {
	return fleet.Pod{Name: m.GetName(), Node: m.GetNode(), Images: nilIfEmpty(m.GetImages()), Privileged: m.GetPrivileged()}
}

func fromWorkload(w fleet.Workload) *Workload {
	return &Workload{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name, Labels: mapOrNil(w.Labels), Pods: convertSlice(w.Pods, fromPod)}
}

func toWorkload(m *Workload) fleet.Workload {
	return fleet.Workload{Namespace: m.GetNamespace(), Kind: m.GetKind(), Name: m.GetName(), Labels: mapOrNil(m.GetLabels()), Pods: convertSlice(m.GetPods(), toPod)}
}

func fromConnection(c fleet.Connection) *Connection {
	return &Connection{From: c.From, To: c.To, Port: int64(c.Port), Proto: c.Proto}
}

func toConnection(m *Connection) fleet.Connection {
	return fleet.Connection{From: m.GetFrom(), To: m.GetTo(), Port: int(m.GetPort()), Proto: m.GetProto()}
}

// FromInventory converts a fleet.Inventory to its message.
func FromInventory(inv fleet.Inventory) *Inventory {
	return &Inventory{AgentId: inv.AgentID, Host: inv.Host, Time: toTimestamp(inv.Time),
		Containers: convertSlice(inv.Containers, fromContainer), Workloads: convertSlice(inv.Workloads, fromWorkload),
		Connections: convertSlice(inv.Connections, fromConnection)}
}

// ToInventory converts a message to a fleet.Inventory.
func ToInventory(m *Inventory) fleet.Inventory {
	return fleet.Inventory{AgentID: m.GetAgentId(), Host: m.GetHost(), Time: fromTimestamp(m.GetTime()),
		Containers: convertSlice(m.GetContainers(), toContainer), Workloads: convertSlice(m.GetWorkloads(), toWorkload),
		Connections: convertSlice(m.GetConnections(), toConnection)}
}
