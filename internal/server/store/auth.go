package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// BindingsFor returns every role binding of the user and of the groups,
// with the role's permissions, for an authorization decision.
func (s *Store) BindingsFor(ctx context.Context, username string, groups []string) ([]BoundRole, error) {
	args := s.args()
	ors := []string{fmt.Sprintf("(b.subject_kind = 'user' AND b.subject = %s)", args.Add(username))}
	for _, g := range groups {
		ors = append(ors, fmt.Sprintf("(b.subject_kind = 'group' AND b.subject = %s)", args.Add(g)))
	}
	if len(ors) > 1000 {
		return nil, invalidf("user %q: more than 1000 groups", username)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+bindingCols+", r.permissions FROM role_bindings b JOIN roles r ON r.id = b.role_id WHERE "+
		strings.Join(ors, " OR ")+" ORDER BY b.id", args.Values...)
	if err != nil {
		return nil, fmt.Errorf("role bindings of %q: %w", username, err)
	}
	defer rows.Close()
	var out []BoundRole
	for rows.Next() {
		var b BoundRole
		if err := rows.Scan(append(scanBinding(&b.RoleBinding), jsonCol{&b.Permissions})...); err != nil {
			return nil, fmt.Errorf("role bindings of %q: %w", username, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BoundRole is a role binding with the permissions of its role.
type BoundRole struct {
	RoleBinding
	Permissions []string `json:"permissions"`
}

// APIToken is an API token. The token itself is never stored: only its
// SHA-256 Hash (hex), and its Prefix, a non-secret leading part used to
// find the row.
type APIToken struct {
	// ID is a random identifier chosen by the caller.
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
	Hash   string `json:"-"`
	// UserID owns the token; the token never has more rights than its
	// owner.
	UserID int64  `json:"userID"`
	Name   string `json:"name,omitempty"`
	// Scopes restrict the token (permission or application scope names).
	Scopes []string `json:"scopes"`
	// Expires, when set, is when the token stops working.
	Expires  time.Time `json:"expires,omitzero"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
	Created  time.Time `json:"created"`
}

// CreateToken stores a token.
func (s *Store) CreateToken(ctx context.Context, t APIToken) (APIToken, error) {
	if t.ID == "" || t.Prefix == "" || len(t.Hash) != 64 {
		return APIToken{}, invalidf("API token %q: ID, prefix and a hex SHA-256 hash are required", t.ID)
	}
	scopes, err := jsonCol{nonNil(t.Scopes)}.Value()
	if err != nil {
		return APIToken{}, err
	}
	now := s.nowMicros()
	_, err = s.exec(ctx, s.db, `INSERT INTO api_tokens (id, prefix, hash, user_id, name, scopes, expires, last_used, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`, t.ID, t.Prefix, t.Hash, t.UserID, t.Name, scopes, micros(t.Expires), now)
	if err != nil {
		return APIToken{}, dbErr(err, fmt.Sprintf("creating API token %q", t.ID))
	}
	t.Created = fromMicros(now)
	return t, nil
}

const tokenCols = "t.id, t.prefix, t.hash, t.user_id, t.name, t.scopes, t.expires, t.last_used, t.created"

func scanToken(t *APIToken) []any {
	return []any{&t.ID, &t.Prefix, &t.Hash, &t.UserID, &t.Name, jsonCol{&t.Scopes}, timeCol{&t.Expires}, timeCol{&t.LastUsed}, timeCol{&t.Created}}
}

// TokenByPrefix returns the token with the given prefix; the caller
// compares the hash in constant time and checks the expiry.
func (s *Store) TokenByPrefix(ctx context.Context, prefix string) (APIToken, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+tokenCols+" FROM api_tokens t WHERE t.prefix = ?"), prefix)
	return scanRow(row, scanToken, "API token")
}

// TouchToken records that a token was used at time at.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, s.db, "UPDATE api_tokens SET last_used = ? WHERE id = ?", micros(at), id)
	return affected(res, err, fmt.Sprintf("API token %q", id))
}

// DeleteToken revokes a token.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM api_tokens WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting API token %q", id))
}

var tokenList = &listSpec[APIToken]{
	schema: &query.Schema{Resource: "API tokens", ID: "t.id", StringID: true, Fields: []query.Field{
		{Name: "user", Column: "t.user_id", Type: query.Int},
		{Name: "name", Column: "t.name", Type: query.String},
		{Name: "expires", Column: "t.expires", Type: query.Time},
		{Name: "lastUsed", Column: "t.last_used", Type: query.Time},
		{Name: "created", Column: "t.created", Type: query.Time},
	}},
	from: "api_tokens t", cols: tokenCols, scan: scanToken, def: []query.SortKey{{Field: "name"}},
}

// ListTokens returns a page of API tokens. Fields: user, name, expires,
// lastUsed, created.
func (s *Store) ListTokens(ctx context.Context, opts ListOptions) (Page[APIToken], error) {
	return list(ctx, s, tokenList, opts)
}

// Session is a browser session. IDHash and CSRFHash are SHA-256 hashes
// (hex) of the session cookie and CSRF token: a database leak reveals no
// usable session.
type Session struct {
	IDHash   string    `json:"-"`
	UserID   int64     `json:"userID"`
	CSRFHash string    `json:"-"`
	Expires  time.Time `json:"expires"`
	Created  time.Time `json:"created"`
	// LastSeen is when the session was last used (TouchSession).
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// Identity is who the session authenticated, as resolved at login.
	Identity SessionIdentity `json:"identity"`
}

// SessionIdentity is the identity a session was opened for, kept so that
// a request needs no directory look-up.
type SessionIdentity struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
	Source   string   `json:"source,omitempty"`
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, se Session) (Session, error) {
	if len(se.IDHash) != 64 || len(se.CSRFHash) != 64 || se.Expires.IsZero() {
		return Session{}, invalidf("session: hex SHA-256 ID and CSRF hashes and an expiry are required")
	}
	if se.Created.IsZero() {
		se.Created = fromMicros(s.nowMicros())
	}
	if se.LastSeen.IsZero() {
		se.LastSeen = se.Created
	}
	ident, err := jsonCol{se.Identity}.Value()
	if err != nil {
		return Session{}, err
	}
	_, err = s.exec(ctx, s.db, "INSERT INTO sessions (id_hash, user_id, csrf_hash, expires, created, last_seen, identity) VALUES (?, ?, ?, ?, ?, ?, ?)",
		se.IDHash, se.UserID, se.CSRFHash, micros(se.Expires), micros(se.Created), micros(se.LastSeen), ident)
	if err != nil {
		return Session{}, dbErr(err, "creating session")
	}
	return se, nil
}

// GetSession returns an unexpired session by the hash of its ID.
func (s *Store) GetSession(ctx context.Context, idHash string) (Session, error) {
	row := s.db.QueryRowContext(ctx, s.rebind(`SELECT id_hash, user_id, csrf_hash, expires, created, last_seen, identity FROM sessions
		WHERE id_hash = ? AND expires > ?`), idHash, s.nowMicros())
	return scanRow(row, func(se *Session) []any {
		return []any{&se.IDHash, &se.UserID, &se.CSRFHash, timeCol{&se.Expires}, timeCol{&se.Created}, timeCol{&se.LastSeen}, jsonCol{&se.Identity}}
	}, "session")
}

// TouchSession records that a session was used at lastSeen.
func (s *Store) TouchSession(ctx context.Context, idHash string, lastSeen time.Time) error {
	res, err := s.exec(ctx, s.db, "UPDATE sessions SET last_seen = ? WHERE id_hash = ?", micros(lastSeen), idHash)
	return affected(res, err, "touching session")
}

// DeleteIdleSessions removes the sessions last used before idleBefore or
// created before createdBefore (either may be zero to skip it), and the
// expired ones, and returns how many.
func (s *Store) DeleteIdleSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE expires <= ? OR last_seen < ? OR created < ?",
		s.nowMicros(), micros(idleBefore), micros(createdBefore))
	if err != nil {
		return 0, dbErr(err, "deleting idle sessions")
	}
	return res.RowsAffected()
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE id_hash = ?", idHash)
	return affected(res, err, "deleting session")
}

// DeleteUserSessions ends every session of a user (on logout everywhere,
// password change or disabling) and returns how many there were.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int64, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE user_id = ?", userID)
	if err != nil {
		return 0, dbErr(err, fmt.Sprintf("deleting sessions of user %d", userID))
	}
	return res.RowsAffected()
}

// DeleteExpiredSessions removes expired sessions and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE expires <= ?", s.nowMicros())
	if err != nil {
		return 0, dbErr(err, "deleting expired sessions")
	}
	return res.RowsAffected()
}
