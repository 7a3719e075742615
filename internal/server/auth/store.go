package auth

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (possibly wrapped) by store implementations when
// the requested user, session or token does not exist.
var ErrNotFound = errors.New("not found")

// User is a local account as the authentication layer needs it.
type User struct {
	// ID is the stable identifier of the user.
	ID string
	// Username is the login name.
	Username string
	// PasswordHash is the argon2id PHC string; empty for users that cannot
	// log in with a local password (for example directory users).
	PasswordHash string
	// Groups are the groups the RBAC layer maps to roles.
	Groups []string
	// Disabled users cannot log in and their sessions and tokens are rejected.
	Disabled bool
}

// UserStore is the persistence the authentication layer needs for users.
type UserStore interface {
	// UserByUsername returns the user with the given username or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UserByID returns the user with the given ID or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// SetPasswordHash replaces the password hash of a user.
	SetPasswordHash(ctx context.Context, userID, hash string) error
}

// Session is a login session. Only the SHA-256 hash of the session ID is
// stored; the ID itself exists only in the client's cookie.
type Session struct {
	// IDHash is the hex SHA-256 of the session ID.
	IDHash string
	// Identity is the authenticated identity at login time.
	Identity Identity
	// CreatedAt bounds the absolute lifetime.
	CreatedAt time.Time
	// LastSeenAt bounds the idle timeout.
	LastSeenAt time.Time
}

// SessionStore is the persistence the authentication layer needs for sessions.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByHash returns the session with the given IDHash or ErrNotFound.
	SessionByHash(ctx context.Context, idHash string) (*Session, error)
	// TouchSession sets the LastSeenAt of a session.
	TouchSession(ctx context.Context, idHash string, lastSeen time.Time) error
	// DeleteSession removes a session; deleting a missing session is not an error.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteExpiredSessions removes sessions last seen before idleBefore or
	// created before createdBefore and returns how many were removed.
	DeleteExpiredSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error)
}

// APIToken is a stored API token. Only the SHA-256 hash of its secret is
// stored.
type APIToken struct {
	// ID is the public identifier embedded in the token string.
	ID string
	// UserID is the owner; the token acts with the owner's identity,
	// restricted to Scopes.
	UserID string
	// Name is a human label.
	Name string
	// SecretHash is the hex SHA-256 of the secret part of the token.
	SecretHash string
	// Scopes are opaque permission strings interpreted by the RBAC layer.
	Scopes []string
	// CreatedAt is when the token was issued.
	CreatedAt time.Time
	// ExpiresAt is when the token stops working.
	ExpiresAt time.Time
	// LastUsedAt is when the token last authenticated a request (zero if never).
	LastUsedAt time.Time
	// RevokedAt is when the token was revoked (zero if not revoked).
	RevokedAt time.Time
}

// TokenStore is the persistence the authentication layer needs for API tokens.
type TokenStore interface {
	// CreateToken stores a new token.
	CreateToken(ctx context.Context, t *APIToken) error
	// TokenByID returns the token with the given ID or ErrNotFound.
	TokenByID(ctx context.Context, id string) (*APIToken, error)
	// RevokeToken sets RevokedAt of a token; it returns ErrNotFound for a missing token.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// TouchToken sets LastUsedAt of a token.
	TouchToken(ctx context.Context, id string, at time.Time) error
}
