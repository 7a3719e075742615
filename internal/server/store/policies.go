package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// Policy kinds.
const (
	PolicyAssurance = "assurance"
	PolicyRuntime   = "runtime"
)

// Policy is one version of an assurance or runtime policy. Every update
// creates a new version; the newest is the current one. Old versions stay
// so that a scan's verdict can be traced to the policy text it used.
type Policy struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Version counts from 1.
	Version int  `json:"version"`
	Current bool `json:"current"`
	// Definition is the policy document (JSON).
	Definition json.RawMessage `json:"definition"`
	Created    time.Time       `json:"created"`
	CreatedBy  string          `json:"createdBy,omitempty"`
}

func validPolicy(kind, name string, def json.RawMessage) error {
	if kind != PolicyAssurance && kind != PolicyRuntime {
		return invalidf("policy kind %q is not assurance or runtime", kind)
	}
	if name == "" || len(name) > 128 {
		return invalidf("policy name %q: want 1 to 128 characters", name)
	}
	if !json.Valid(def) {
		return invalidf("%s policy %q: the definition is not valid JSON", kind, name)
	}
	return nil
}

// CreatePolicy stores version 1 of a new policy; ErrConflict when a
// policy of that kind and name exists.
func (s *Store) CreatePolicy(ctx context.Context, kind, name string, def json.RawMessage, by string) (Policy, error) {
	if err := validPolicy(kind, name, def); err != nil {
		return Policy{}, err
	}
	now := s.nowMicros()
	id, err := s.insertID(ctx, s.db, `INSERT INTO policies (kind, name, version, is_current, definition, created, created_by)
		VALUES (?, ?, 1, ?, ?, ?, ?)`, kind, name, true, rawJSON(def), now, by)
	if err != nil {
		return Policy{}, dbErr(err, fmt.Sprintf("creating %s policy %q", kind, name))
	}
	return Policy{ID: id, Kind: kind, Name: name, Version: 1, Current: true, Definition: def, Created: fromMicros(now), CreatedBy: by}, nil
}

// UpdatePolicy stores a new version of an existing policy and makes it
// current.
func (s *Store) UpdatePolicy(ctx context.Context, kind, name string, def json.RawMessage, by string) (Policy, error) {
	if err := validPolicy(kind, name, def); err != nil {
		return Policy{}, err
	}
	p := Policy{Kind: kind, Name: name, Current: true, Definition: def, CreatedBy: by}
	what := fmt.Sprintf("updating %s policy %q", kind, name)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur int
		err := tx.QueryRowContext(ctx, s.rebind("SELECT version FROM policies WHERE kind = ? AND name = ? AND is_current = ?"), kind, name, true).Scan(&cur)
		if err != nil {
			return dbErr(err, what)
		}
		if _, err := s.exec(ctx, tx, "UPDATE policies SET is_current = ? WHERE kind = ? AND name = ?", false, kind, name); err != nil {
			return dbErr(err, what)
		}
		now := s.nowMicros()
		p.Version, p.Created = cur+1, fromMicros(now)
		p.ID, err = s.insertID(ctx, tx, `INSERT INTO policies (kind, name, version, is_current, definition, created, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, kind, name, p.Version, true, rawJSON(def), now, by)
		return dbErr(err, what)
	})
	if err != nil {
		return Policy{}, err
	}
	return p, nil
}

const policyCols = "p.id, p.kind, p.name, p.version, p.is_current, p.definition, p.created, p.created_by"

// rawCol scans JSON text into a json.RawMessage.
type rawCol struct{ m *json.RawMessage }

// Scan implements sql.Scanner.
func (c rawCol) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*c.m = json.RawMessage(v)
	case []byte:
		*c.m = append(json.RawMessage(nil), v...)
	case nil:
		*c.m = nil
	default:
		return fmt.Errorf("JSON column holds %T", src)
	}
	return nil
}

func scanPolicy(p *Policy) []any {
	return []any{&p.ID, &p.Kind, &p.Name, &p.Version, &p.Current, rawCol{&p.Definition}, timeCol{&p.Created}, &p.CreatedBy}
}

// GetPolicy returns the current version of a policy, or version when it
// is positive.
func (s *Store) GetPolicy(ctx context.Context, kind, name string, version int) (Policy, error) {
	q := "SELECT " + policyCols + " FROM policies p WHERE p.kind = ? AND p.name = ? AND "
	args := []any{kind, name}
	if version > 0 {
		q += "p.version = ?"
		args = append(args, version)
	} else {
		q += "p.is_current = ?"
		args = append(args, true)
	}
	return scanRow(s.db.QueryRowContext(ctx, s.rebind(q), args...), scanPolicy, fmt.Sprintf("%s policy %q", kind, name))
}

// DeletePolicy deletes a policy with all its versions.
func (s *Store) DeletePolicy(ctx context.Context, kind, name string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM policies WHERE kind = ? AND name = ?", kind, name)
	return affected(res, err, fmt.Sprintf("deleting %s policy %q", kind, name))
}

var policySchema = &query.Schema{Resource: "policies", ID: "p.id", Fields: []query.Field{
	{Name: "id", Column: "p.id", Type: query.Int},
	{Name: "name", Column: "p.name", Type: query.String},
	{Name: "version", Column: "p.version", Type: query.Int},
	{Name: "created", Column: "p.created", Type: query.Time},
	{Name: "createdBy", Column: "p.created_by", Type: query.String},
}}

// ListPolicies returns a page of the current versions of the policies of
// a kind. Fields: id, name, version, created, createdBy.
func (s *Store) ListPolicies(ctx context.Context, kind string, opts ListOptions) (Page[Policy], error) {
	return list(ctx, s, &listSpec[Policy]{schema: policySchema, from: "policies p", cols: policyCols, scan: scanPolicy,
		def: []query.SortKey{{Field: "name"}},
		where: func(a *query.Args) []string {
			return []string{"p.kind = " + a.Add(kind), "p.is_current = " + a.Add(true)}
		}}, opts)
}

// PolicyVersions returns a page of every version of one policy, newest
// first by default.
func (s *Store) PolicyVersions(ctx context.Context, kind, name string, opts ListOptions) (Page[Policy], error) {
	return list(ctx, s, &listSpec[Policy]{schema: policySchema, from: "policies p", cols: policyCols, scan: scanPolicy,
		def: []query.SortKey{{Field: "version", Desc: true}},
		where: func(a *query.Args) []string {
			return []string{"p.kind = " + a.Add(kind), "p.name = " + a.Add(name)}
		}}, opts)
}
