// Package fleet defines what travels between the agents on the hosts
// (enforcers and kube-enforcers), the gateways and the server: enrollment,
// heartbeats with the host's preflight results, the policy bundle, runtime
// events and the workload inventory. Enforcers speak gRPC over mutual TLS to
// a gateway (package gateway); a gateway relays each call to the server
// through a Backend, which the server implements and which a gateway reaches
// over the server's REST API (paths in this file).
//
// The types here are the wire model: they marshal to JSON for the REST
// relay and are carried inside the gRPC messages.
package fleet

import (
	"context"
	"encoding/json"
	"time"
)

// Agent kinds that enroll.
const (
	KindEnforcer     = "enforcer"
	KindKubeEnforcer = "kube-enforcer"
	KindGateway      = "gateway"
)

// REST paths of the server's fleet API, relative to the server URL. A
// gateway calls them with an API token whose role has the Gateway
// permission; the enforcer it speaks for is named in the body, taken from
// the enforcer's verified client certificate.
const (
	PathEnroll    = "/api/v1/fleet/enroll"    // POST EnrollRequest → EnrollResponse (authenticated by the group token in the body)
	PathRenew     = "/api/v1/fleet/renew"     // POST RenewRequest → RenewResponse
	PathHeartbeat = "/api/v1/fleet/heartbeat" // POST Heartbeat → HeartbeatReply
	PathPolicies  = "/api/v1/fleet/policies"  // POST PolicyRequest → PolicyBundle
	PathEvents    = "/api/v1/fleet/events"    // POST EventBatch → EventAck
	PathInventory = "/api/v1/fleet/inventory" // POST Inventory → (204)
)

// Capability is one preflight finding of an agent's host: whether a
// mechanism works there. Enforcers never claim enforcement a capability they
// lack would need.
type Capability struct {
	// Name is a stable identifier such as "exec-events.tp_btf",
	// "pre-exec-deny.fanotify", "lsm.bpf", "pids-cgroup", "seccomp",
	// "nftables", "signal.bpf_send_signal".
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Detail says how it was probed, or why it is unavailable.
	Detail string `json:"detail,omitempty"`
}

// EnrollRequest asks the server to admit a new agent into an enforcer
// group and to sign its certificate request.
type EnrollRequest struct {
	// Token is the group's enrollment token (shown once when the group is
	// created; stored hashed).
	Token    string `json:"token"`
	Kind     string `json:"kind"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// CSR is a PEM certificate request whose key the agent generated and
	// never sends.
	CSR string `json:"csr"`
}

// EnrollResponse admits the agent.
type EnrollResponse struct {
	AgentID string `json:"agentId"`
	Group   string `json:"group"`
	// Certificate is the PEM client certificate signed by the server's
	// fleet CA; its CommonName is AgentID.
	Certificate string `json:"certificate"`
	// CA is the PEM fleet CA certificate to trust gateways by.
	CA        string    `json:"ca"`
	NotAfter  time.Time `json:"notAfter"`
	RenewFrom time.Time `json:"renewFrom"`
}

// RenewRequest asks for a fresh certificate before the current one expires.
type RenewRequest struct {
	AgentID string `json:"agentId"`
	CSR     string `json:"csr"`
}

// RenewResponse carries the renewed certificate.
type RenewResponse struct {
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"notAfter"`
	RenewFrom   time.Time `json:"renewFrom"`
}

// GroupSettings are an enforcer group's switches.
type GroupSettings struct {
	// AuditOnly turns every enforce-mode policy into audit on the group's
	// hosts (the default for a new group).
	AuditOnly bool `json:"auditOnly"`
	// ContainerProtection and HostProtection switch runtime policies on for
	// containers and for the host's own processes.
	ContainerProtection bool `json:"containerProtection"`
	HostProtection      bool `json:"hostProtection"`
	// FailClosed makes a pre-exec check that cannot be answered (the
	// enforcer is overloaded) deny instead of allow. A crashed enforcer
	// always fails open: the kernel allows once the listener is gone.
	FailClosed bool `json:"failClosed"`
}

// Heartbeat is sent by an agent every few seconds.
type Heartbeat struct {
	AgentID        string       `json:"agentId"`
	Hostname       string       `json:"hostname"`
	Version        string       `json:"version"`
	Capabilities   []Capability `json:"capabilities"`
	PolicyRevision int64        `json:"policyRevision"`
	// Containers counts the containers the agent sees.
	Containers int `json:"containers"`
	// EventsBuffered counts events waiting on the agent's disk spool.
	EventsBuffered int `json:"eventsBuffered"`
}

// HeartbeatReply tells the agent whether it must fetch policies.
type HeartbeatReply struct {
	PolicyRevision int64         `json:"policyRevision"`
	Settings       GroupSettings `json:"settings"`
}

// PolicyRequest asks for the policies in force for an agent.
type PolicyRequest struct {
	AgentID string `json:"agentId"`
	// Since is the revision the agent holds; the bundle is returned even
	// when it is unchanged.
	Since int64 `json:"since"`
}

// PolicyBundle is everything an agent enforces. Policies are
// runtimepolicy.Policy documents in their JSON form.
type PolicyBundle struct {
	Revision int64             `json:"revision"`
	Settings GroupSettings     `json:"settings"`
	Policies []json.RawMessage `json:"policies"`
	// Scopes are the definitions (rbac.ApplicationScope JSON) of every
	// application scope the policies name, so the agent can match
	// workloads against them without asking the server.
	Scopes []json.RawMessage `json:"scopes,omitempty"`
	// Bypass lists the global bypass: label selectors (key=value or key)
	// and Kubernetes namespaces exempt from detection and enforcement.
	Bypass Bypass `json:"bypass"`
}

// Bypass is the global exemption list.
type Bypass struct {
	Namespaces []string `json:"namespaces"`
	Labels     []string `json:"labels"`
}

// Event statuses.
const (
	StatusDetect = "detect"
	StatusBlock  = "block"
	// StatusAllow records a decision that found nothing (an admission
	// request admitted without violation), so that every admission
	// decision is in the audit trail.
	StatusAllow = "allow"
)

// Event is one runtime detection or block, as the server stores it in its
// audit trail.
type Event struct {
	// ID is unique per agent (the agent's spool sequence), so a batch
	// delivered twice is stored once.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	AgentID   string    `json:"agentId"`
	Host      string    `json:"host"`
	Status    string    `json:"status"` // StatusDetect, StatusBlock or StatusAllow
	Policy    string    `json:"policy"`
	Control   string    `json:"control"`
	Message   string    `json:"message"`
	Container string    `json:"container,omitempty"` // container name
	// ContainerID is the runtime's full container id.
	ContainerID string  `json:"containerId,omitempty"`
	Image       string  `json:"image,omitempty"`
	Namespace   string  `json:"namespace,omitempty"`
	Pod         string  `json:"pod,omitempty"`
	Process     Process `json:"process"`
	// Parents is the parent chain, nearest first.
	Parents []Process `json:"parents,omitempty"`
	// Count is how many identical events this one stands for after
	// de-duplication (1 when it stands alone).
	Count int `json:"count"`
}

// Process describes one process in an event or the inventory.
type Process struct {
	PID  int      `json:"pid"`
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	UID  int      `json:"uid"`
	User string   `json:"user,omitempty"`
}

// EventBatch carries events from one agent.
type EventBatch struct {
	AgentID string  `json:"agentId"`
	Events  []Event `json:"events"`
}

// EventAck names how many events of a batch the server stored (the rest
// were duplicates of events it already had).
type EventAck struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
}

// Inventory is an agent's full view of its host (or cluster), replacing the
// previous one the server had from that agent.
type Inventory struct {
	AgentID    string      `json:"agentId"`
	Host       string      `json:"host"`
	Time       time.Time   `json:"time"`
	Containers []Container `json:"containers,omitempty"`
	// Workloads are Kubernetes workloads (from a kube-enforcer).
	Workloads []Workload `json:"workloads,omitempty"`
	// Connections are observed network connections between workloads or
	// containers.
	Connections []Connection `json:"connections,omitempty"`
}

// Container is one running container on a host.
type Container struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	ImageDigest string            `json:"imageDigest,omitempty"`
	Runtime     string            `json:"runtime"` // docker, containerd
	Labels      map[string]string `json:"labels,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Pod         string            `json:"pod,omitempty"`
	Started     time.Time         `json:"started"`
	Processes   []Process         `json:"processes,omitempty"`
	// Protected names the runtime policies that apply to it.
	Protected []string `json:"protected,omitempty"`
}

// Workload is a Kubernetes workload with its running pods.
type Workload struct {
	Namespace string            `json:"namespace"`
	Kind      string            `json:"kind"` // Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Pods      []Pod             `json:"pods"`
}

// Pod is one running pod of a workload.
type Pod struct {
	Name       string   `json:"name"`
	Node       string   `json:"node,omitempty"`
	Images     []string `json:"images"`
	Privileged bool     `json:"privileged,omitempty"`
}

// Connection is a network connection seen between two endpoints, each
// written "namespace/workload" or a container name.
type Connection struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Port  int    `json:"port,omitempty"`
	Proto string `json:"proto,omitempty"`
}

// Backend is what a gateway relays to: the server, reached through its REST
// API, or the server itself in process. Every method is called on behalf
// of one authenticated agent (except Enroll, which the token authenticates).
type Backend interface {
	Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error)
	Renew(ctx context.Context, req RenewRequest) (RenewResponse, error)
	Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatReply, error)
	Policies(ctx context.Context, req PolicyRequest) (PolicyBundle, error)
	Events(ctx context.Context, batch EventBatch) (EventAck, error)
	Inventory(ctx context.Context, inv Inventory) error
}
