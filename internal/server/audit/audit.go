// Package audit is the console server's tamper-evident audit trail.
//
// Every event is appended to a hash chain: its Hash covers a canonical
// encoding of all its fields and the previous event's hash, so changing,
// deleting, inserting or reordering stored events breaks the chain, which
// Verify detects. With an HMAC key the chain cannot be recomputed by
// someone who can write to the database but does not hold the key.
// Events are never updated or deleted; nothing in this package can.
//
// docs/rbac.md (section "Audit trail") describes the canonical encoding,
// the HMAC key and how to anchor the chain against truncation.
package audit

import (
	"encoding/json"
	"time"
)

// ActorKind says who caused an event.
type ActorKind string

// The actor kinds.
const (
	ActorUser   ActorKind = "user"
	ActorToken  ActorKind = "token"
	ActorSystem ActorKind = "system"
)

// Outcome says how the audited action ended.
type Outcome string

// The outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Denied  Outcome = "denied"
)

// Common actions. Actions are lower-case dotted names
// "<object>.<verb>[.<detail>]"; these are the ones the server uses, and
// others following the same form are accepted.
const (
	ActionLogin           = "auth.login"
	ActionLoginFailed     = "auth.login_failed"
	ActionLogout          = "auth.logout"
	ActionUserCreate      = "user.create"
	ActionUserUpdate      = "user.update"
	ActionUserDelete      = "user.delete"
	ActionRoleUpdate      = "role.update"
	ActionScopeUpdate     = "scope.update"
	ActionTokenCreate     = "token.create"
	ActionTokenRevoke     = "token.revoke"
	ActionPolicyUpdate    = "policy.update"
	ActionRegistryUpdate  = "registry.update"
	ActionSettingsUpdate  = "settings.update"
	ActionScanRequest     = "scan.request"
	ActionScanComplete    = "scan.complete"
	ActionSecurityEvent   = "security.event"
	ActionAccessDenied    = "access.denied"
	ActionExceptionCreate = "exception.create"
)

// Actor identifies who caused an event.
type Actor struct {
	Kind ActorKind `json:"kind"`
	// ID is the user or token ID, or the component name for the system.
	ID string `json:"id"`
	// Name is the display name at the time of the event.
	Name string `json:"name,omitempty"`
}

// Event is one entry of the audit trail. Log.Append fills Seq, PrevHash
// and Hash; the caller fills the rest.
type Event struct {
	// Seq numbers events from 1 without gaps.
	Seq int64 `json:"seq"`
	// Time is when the event happened, kept to the microsecond in UTC.
	Time    time.Time `json:"time"`
	Actor   Actor     `json:"actor"`
	ActorIP string    `json:"actor_ip,omitempty"`
	// Action is a dotted name such as "user.create".
	Action       string `json:"action"`
	ResourceType string `json:"resource_type,omitempty"`
	ResourceID   string `json:"resource_id,omitempty"`
	// Before and After are the resource's JSON before and after the
	// change (secrets removed by the caller), in canonical form: compact
	// with object keys sorted.
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
	Outcome Outcome         `json:"outcome"`
	Reason  string          `json:"reason,omitempty"`
	// PrevHash is the previous event's Hash, empty for the first event.
	PrevHash string `json:"prev_hash"`
	// Hash is the lower-case hex SHA-256 (or HMAC-SHA-256) of the
	// canonical encoding of every other field.
	Hash string `json:"hash"`
}
