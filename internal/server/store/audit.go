package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// AuditEvent is one entry of the audit log. The log is append-only: the
// store has no method to change or delete an event, and the database
// refuses to (triggers from migration 2). Events are chained: Hash covers
// the event and PrevHash, the previous event's Hash, so that a removed or
// altered event breaks the chain (VerifyAudit).
type AuditEvent struct {
	// Seq numbers events from 1 without gaps.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who acted ("user:alice", "token:ab12", "system").
	Actor string `json:"actor"`
	// Action is what was done ("registry.create", "login.failure").
	Action       string `json:"action"`
	ResourceType string `json:"resourceType"`
	ResourceID   string `json:"resourceID,omitempty"`
	// Before and After are the resource before and after the change
	// (JSON), when it applies. They must hold no secret.
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
	PrevHash string          `json:"prevHash"`
	Hash     string          `json:"hash"`
}

// auditHash returns the hash of an event chained to its predecessor.
func auditHash(e *AuditEvent) string {
	body, _ := json.Marshal([]any{e.Seq, e.Time.UnixMicro(), e.Actor, e.Action, e.ResourceType, e.ResourceID, string(e.Before), string(e.After)})
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// AppendAudit appends an event (its Seq, Time, PrevHash and Hash are
// assigned) and returns it.
func (s *Store) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	if e.Actor == "" || e.Action == "" || e.ResourceType == "" {
		return AuditEvent{}, invalidf("audit event: actor, action and resource type are required")
	}
	for _, m := range []json.RawMessage{e.Before, e.After} {
		if len(m) > 0 && !json.Valid(m) {
			return AuditEvent{}, invalidf("audit event %s: before/after is not valid JSON", e.Action)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == query.Postgres {
			// Appends are serialized so that the chain is linear.
			if _, err := tx.ExecContext(ctx, "LOCK TABLE audit_events IN EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		var last sql.NullInt64
		var prev sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").Scan(&last, &prev)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		e.Seq = last.Int64 + 1
		e.PrevHash = prev.String
		e.Time = fromMicros(s.nowMicros())
		e.Hash = auditHash(&e)
		ev, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `INSERT INTO audit_events (seq, time, actor, action, resource_type, resource_id, before_json, after_json,
			prev_hash, hash, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, micros(e.Time), e.Actor, e.Action, e.ResourceType,
			e.ResourceID, string(e.Before), string(e.After), e.PrevHash, e.Hash, string(ev))
		return err
	})
	if err != nil {
		return AuditEvent{}, dbErr(err, "appending audit event "+e.Action)
	}
	return e, nil
}

const auditCols = "a.seq, a.time, a.actor, a.action, a.resource_type, a.resource_id, a.before_json, a.after_json, a.prev_hash, a.hash"

func scanAudit(e *AuditEvent) []any {
	return []any{&e.Seq, timeCol{&e.Time}, &e.Actor, &e.Action, &e.ResourceType, &e.ResourceID, rawCol{&e.Before}, rawCol{&e.After},
		&e.PrevHash, &e.Hash}
}

// GetAudit returns the event with sequence number seq.
func (s *Store) GetAudit(ctx context.Context, seq int64) (AuditEvent, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+auditCols+" FROM audit_events a WHERE a.seq = ?"), seq)
	e, err := scanRow(row, scanAudit, fmt.Sprintf("audit event %d", seq))
	return e, err
}

var auditList = &listSpec[AuditEvent]{
	schema: &query.Schema{Resource: "audit events", ID: "a.seq", Fields: []query.Field{
		{Name: "seq", Column: "a.seq", Type: query.Int},
		{Name: "time", Column: "a.time", Type: query.Time},
		{Name: "actor", Column: "a.actor", Type: query.String},
		{Name: "action", Column: "a.action", Type: query.String},
		{Name: "resourceType", Column: "a.resource_type", Type: query.String},
		{Name: "resourceID", Column: "a.resource_id", Type: query.String},
	}},
	from: "audit_events a", cols: auditCols, scan: scanAudit, def: []query.SortKey{{Field: "seq", Desc: true}},
}

// ListAudit returns a page of audit events, newest first by default.
// Fields: seq, time, actor, action, resourceType, resourceID.
func (s *Store) ListAudit(ctx context.Context, opts ListOptions) (Page[AuditEvent], error) {
	return list(ctx, s, auditList, opts)
}

// VerifyAudit walks the whole log and returns an error naming the first
// event whose sequence number or hash chain is broken.
func (s *Store) VerifyAudit(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+auditCols+" FROM audit_events a ORDER BY a.seq")
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	var prev string
	var seq int64
	for rows.Next() {
		var e AuditEvent
		if err := rows.Scan(scanAudit(&e)...); err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		seq++
		switch {
		case e.Seq != seq:
			return fmt.Errorf("audit log: event %d is missing", seq)
		case e.PrevHash != prev:
			return fmt.Errorf("audit log: event %d does not chain to event %d", e.Seq, e.Seq-1)
		case auditHash(&e) != e.Hash:
			return fmt.Errorf("audit log: event %d was altered (hash mismatch)", e.Seq)
		}
		prev = e.Hash
	}
	return rows.Err()
}
