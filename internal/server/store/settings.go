package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// Setting is one server setting: a key and a JSON value.
type Setting struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Updated time.Time       `json:"updated"`
}

// SetSetting creates or replaces a setting.
func (s *Store) SetSetting(ctx context.Context, key string, value json.RawMessage) error {
	if key == "" || len(key) > 256 {
		return invalidf("setting key %q: want 1 to 256 characters", key)
	}
	if !json.Valid(value) {
		return invalidf("setting %q: the value is not valid JSON", key)
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO settings (key, value, updated) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`, key, rawJSON(value), s.nowMicros())
	return dbErr(err, fmt.Sprintf("setting %q", key))
}

func scanSetting(st *Setting) []any {
	return []any{&st.Key, rawCol{&st.Value}, timeCol{&st.Updated}}
}

// GetSetting returns a setting.
func (s *Store) GetSetting(ctx context.Context, key string) (Setting, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT st.key, st.value, st.updated FROM settings st WHERE st.key = ?"), key)
	return scanRow(row, scanSetting, fmt.Sprintf("setting %q", key))
}

// DeleteSetting deletes a setting.
func (s *Store) DeleteSetting(ctx context.Context, key string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM settings WHERE key = ?", key)
	return affected(res, err, fmt.Sprintf("deleting setting %q", key))
}

var settingList = &listSpec[Setting]{
	schema: &query.Schema{Resource: "settings", ID: "st.key", StringID: true, Fields: []query.Field{
		{Name: "key", Column: "st.key", Type: query.String},
	}},
	from: "settings st", cols: "st.key, st.value, st.updated", scan: scanSetting,
}

// ListSettings returns a page of settings ordered by key. Field: key.
func (s *Store) ListSettings(ctx context.Context, opts ListOptions) (Page[Setting], error) {
	return list(ctx, s, settingList, opts)
}

// Exception is an assurance exception: within an application scope ("*"
// for every image), a vulnerability or policy rule does not fail the
// assurance policy until it expires.
type Exception struct {
	ID    int64  `json:"id"`
	Scope string `json:"scope"`
	// VulnID or Rule names what is excepted (one of them).
	VulnID string `json:"vulnID,omitempty"`
	Rule   string `json:"rule,omitempty"`
	// Expires, when set, ends the exception.
	Expires       time.Time `json:"expires,omitzero"`
	Justification string    `json:"justification"`
	CreatedBy     string    `json:"createdBy"`
	Created       time.Time `json:"created"`
}

func validException(e *Exception) error {
	switch {
	case e.Scope == "":
		return invalidf("exception: scope is required (\"*\" for every image)")
	case (e.VulnID == "") == (e.Rule == ""):
		return invalidf("exception in scope %q: give a vulnerability ID or a rule, not both or neither", e.Scope)
	case e.Justification == "":
		return invalidf("exception for %s%s: a justification is required", e.VulnID, e.Rule)
	case e.CreatedBy == "":
		return invalidf("exception for %s%s: its creator is required", e.VulnID, e.Rule)
	}
	return nil
}

// CreateException stores an exception.
func (s *Store) CreateException(ctx context.Context, e Exception) (Exception, error) {
	if err := validException(&e); err != nil {
		return Exception{}, err
	}
	now := s.nowMicros()
	var err error
	e.VulnID = upper(e.VulnID)
	e.ID, err = s.insertID(ctx, s.db, `INSERT INTO exceptions (scope, vuln_id, rule, expires, justification, created_by, created)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Scope, e.VulnID, e.Rule, micros(e.Expires), e.Justification, e.CreatedBy, now)
	if err != nil {
		return Exception{}, dbErr(err, "creating exception")
	}
	e.Created = fromMicros(now)
	return e, nil
}

// UpdateException replaces the exception with e.ID.
func (s *Store) UpdateException(ctx context.Context, e Exception) error {
	if err := validException(&e); err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `UPDATE exceptions SET scope = ?, vuln_id = ?, rule = ?, expires = ?, justification = ?
		WHERE id = ?`, e.Scope, upper(e.VulnID), e.Rule, micros(e.Expires), e.Justification, e.ID)
	return affected(res, err, fmt.Sprintf("updating exception %d", e.ID))
}

const exceptionCols = "e.id, e.scope, e.vuln_id, e.rule, e.expires, e.justification, e.created_by, e.created"

func scanException(e *Exception) []any {
	return []any{&e.ID, &e.Scope, &e.VulnID, &e.Rule, timeCol{&e.Expires}, &e.Justification, &e.CreatedBy, timeCol{&e.Created}}
}

// GetException returns an exception.
func (s *Store) GetException(ctx context.Context, id int64) (Exception, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+exceptionCols+" FROM exceptions e WHERE e.id = ?"), id)
	return scanRow(row, scanException, fmt.Sprintf("exception %d", id))
}

// DeleteException deletes an exception.
func (s *Store) DeleteException(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM exceptions WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting exception %d", id))
}

var exceptionList = &listSpec[Exception]{
	schema: &query.Schema{Resource: "exceptions", ID: "e.id", Fields: []query.Field{
		{Name: "id", Column: "e.id", Type: query.Int},
		{Name: "scope", Column: "e.scope", Type: query.String},
		{Name: "vulnID", Column: "e.vuln_id", Type: query.String},
		{Name: "rule", Column: "e.rule", Type: query.String},
		{Name: "expires", Column: "e.expires", Type: query.Time},
		{Name: "createdBy", Column: "e.created_by", Type: query.String},
		{Name: "created", Column: "e.created", Type: query.Time},
	}},
	from: "exceptions e", cols: exceptionCols, scan: scanException, def: []query.SortKey{{Field: "created", Desc: true}},
}

// ListExceptions returns a page of exceptions, newest first by default.
// Fields: id, scope, vulnID, rule, expires (0 = never), createdBy, created.
func (s *Store) ListExceptions(ctx context.Context, opts ListOptions) (Page[Exception], error) {
	return list(ctx, s, exceptionList, opts)
}
