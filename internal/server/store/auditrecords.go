package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// AuditRecord is an audit event whose hash chain the caller computed (the
// server's audit package, with a keyed hash): the store keeps the indexed
// columns and the whole event as Event, verbatim.
type AuditRecord struct {
	Seq          int64
	Time         time.Time
	Actor        string
	Action       string
	ResourceType string
	ResourceID   string
	Outcome      string
	// Before, After and PrevHash are optional copies of the event's
	// fields, for queries in SQL.
	Before   json.RawMessage
	After    json.RawMessage
	PrevHash string
	Hash     string
	// Event is the complete event as JSON.
	Event json.RawMessage
}

// IsConflict reports whether err is, or wraps, ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// AppendAuditEvent appends a record whose Seq must be the last sequence
// number plus one; otherwise (another server appended first) the error
// wraps ErrConflict and nothing is written.
func (s *Store) AppendAuditEvent(ctx context.Context, r AuditRecord) error {
	if r.Action == "" || !json.Valid(r.Event) {
		return invalidf("audit event %d: an action and the event as JSON are required", r.Seq)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == query.Postgres {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE audit_events IN EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		var last int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_events").Scan(&last); err != nil {
			return fmt.Errorf("audit event %d: %w", r.Seq, err)
		}
		if r.Seq != last+1 {
			return fmt.Errorf("audit event %d: the last event is %d: %w", r.Seq, last, ErrConflict)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO audit_events (seq, time, actor, action, resource_type, resource_id, before_json, after_json,
			prev_hash, hash, outcome, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Seq, micros(r.Time), r.Actor, r.Action,
			r.ResourceType, r.ResourceID, string(r.Before), string(r.After), r.PrevHash, r.Hash, r.Outcome, string(r.Event))
		return dbErr(err, fmt.Sprintf("appending audit event %d", r.Seq))
	})
}

// LastAuditEvent returns the Event JSON of the newest record, and false
// when the log is empty.
func (s *Store) LastAuditEvent(ctx context.Context) (json.RawMessage, bool, error) {
	var ev string
	err := s.db.QueryRowContext(ctx, "SELECT event FROM audit_events ORDER BY seq DESC LIMIT 1").Scan(&ev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the last audit event: %w", err)
	}
	return json.RawMessage(ev), true, nil
}

// RangeAuditEvents calls fn with the Event JSON of every record from
// sequence number fromSeq on, in order, and stops at fn's first error.
func (s *Store) RangeAuditEvents(ctx context.Context, fromSeq int64, fn func([]byte) error) error {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT event FROM audit_events WHERE seq >= ? ORDER BY seq"), fromSeq)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev string
		if err := rows.Scan(&ev); err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		if err := fn([]byte(ev)); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ListAuditEvents returns a page of the Event JSON of audit records,
// newest first by default. Fields: seq, time, actor, action,
// resourceType, resourceID, outcome.
func (s *Store) ListAuditEvents(ctx context.Context, opts ListOptions) (Page[json.RawMessage], error) {
	return list(ctx, s, auditList, opts)
}
