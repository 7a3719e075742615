package store

import (
	"encoding/json"

	"github.com/mamorisec/mamori/internal/server/query"
)

// auditList lists audit records. The table is append-only: triggers
// refuse UPDATE and DELETE, and the store has no method that changes a
// record. The hash chain is computed by the caller (package audit) and
// kept in each record's event.
var auditList = &listSpec[json.RawMessage]{
	schema: &query.Schema{Resource: "audit events", ID: "a.seq", Fields: []query.Field{
		{Name: "seq", Column: "a.seq", Type: query.Int},
		{Name: "time", Column: "a.time", Type: query.Time},
		{Name: "actor", Column: "a.actor", Type: query.String},
		{Name: "action", Column: "a.action", Type: query.String},
		{Name: "resourceType", Column: "a.resource_type", Type: query.String},
		{Name: "resourceID", Column: "a.resource_id", Type: query.String},
		{Name: "outcome", Column: "a.outcome", Type: query.String},
	}},
	from: "audit_events a", cols: "a.event",
	scan: func(m *json.RawMessage) []any { return []any{rawCol{m}} },
	def:  []query.SortKey{{Field: "seq", Desc: true}},
}
