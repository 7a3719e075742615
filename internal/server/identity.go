package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/store"
)

// authStore adapts the database to the persistence interfaces of package
// auth. User IDs are the store's integer IDs in decimal.
type authStore struct {
	db *store.Store
}

var (
	_ auth.UserStore    = authStore{}
	_ auth.SessionStore = authStore{}
	_ auth.TokenStore   = authStore{}
)

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %v", auth.ErrNotFound, err)
	}
	return err
}

func userID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: user ID %q", auth.ErrNotFound, id)
	}
	return n, nil
}

func toAuthUser(u store.User) *auth.User {
	return &auth.User{ID: strconv.FormatInt(u.ID, 10), Username: u.Username, PasswordHash: u.PasswordHash, Disabled: u.Disabled}
}

func (a authStore) UserByUsername(ctx context.Context, username string) (*auth.User, error) {
	u, err := a.db.GetUserByName(ctx, username)
	if err != nil {
		return nil, notFound(err)
	}
	return toAuthUser(u), nil
}

func (a authStore) UserByID(ctx context.Context, id string) (*auth.User, error) {
	n, err := userID(id)
	if err != nil {
		return nil, err
	}
	u, err := a.db.GetUser(ctx, n)
	if err != nil {
		return nil, notFound(err)
	}
	return toAuthUser(u), nil
}

func (a authStore) SetPasswordHash(ctx context.Context, id, hash string) error {
	n, err := userID(id)
	if err != nil {
		return err
	}
	u, err := a.db.GetUser(ctx, n)
	if err != nil {
		return notFound(err)
	}
	u.PasswordHash = hash
	return a.db.UpdateUser(ctx, u)
}

// csrfHash fills the store's CSRF column: package auth derives the CSRF
// token from the session ID and stores nothing, so the column holds a
// derived value that reveals nothing.
func csrfHash(idHash string) string {
	h := sha256.Sum256([]byte("mamori csrf column\x00" + idHash))
	return hex.EncodeToString(h[:])
}

func (a authStore) CreateSession(ctx context.Context, s *auth.Session) error {
	n, err := userID(s.Identity.UserID)
	if err != nil {
		return err
	}
	_, err = a.db.CreateSession(ctx, store.Session{
		IDHash: s.IDHash, UserID: n, CSRFHash: csrfHash(s.IDHash),
		Expires: s.CreatedAt.Add(maxSessionLifetime), Created: s.CreatedAt,
		LastSeen: s.LastSeenAt, Identity: store.SessionIdentity{Username: s.Identity.Username, Groups: s.Identity.Groups, Source: s.Identity.Source},
	})
	return err
}

func (a authStore) SessionByHash(ctx context.Context, idHash string) (*auth.Session, error) {
	s, err := a.db.GetSession(ctx, idHash)
	if err != nil {
		return nil, notFound(err)
	}
	return &auth.Session{
		IDHash: s.IDHash, CreatedAt: s.Created, LastSeenAt: s.LastSeen,
		Identity: auth.Identity{UserID: strconv.FormatInt(s.UserID, 10), Username: s.Identity.Username, Groups: s.Identity.Groups, Source: s.Identity.Source},
	}, nil
}

func (a authStore) TouchSession(ctx context.Context, idHash string, lastSeen time.Time) error {
	return a.db.TouchSession(ctx, idHash, lastSeen)
}

func (a authStore) DeleteSession(ctx context.Context, idHash string) error {
	err := a.db.DeleteSession(ctx, idHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (a authStore) DeleteExpiredSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error) {
	n, err := a.db.DeleteIdleSessions(ctx, idleBefore, createdBefore)
	return int(n), err
}

func (a authStore) CreateToken(ctx context.Context, t *auth.APIToken) error {
	n, err := userID(t.UserID)
	if err != nil {
		return err
	}
	_, err = a.db.CreateToken(ctx, store.APIToken{
		ID: t.ID, Prefix: t.ID, Hash: t.SecretHash, UserID: n, Name: t.Name, Scopes: t.Scopes, Expires: t.ExpiresAt,
	})
	return err
}

func (a authStore) TokenByID(ctx context.Context, id string) (*auth.APIToken, error) {
	t, err := a.db.TokenByPrefix(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return &auth.APIToken{
		ID: t.ID, UserID: strconv.FormatInt(t.UserID, 10), Name: t.Name, SecretHash: t.Hash, Scopes: t.Scopes,
		CreatedAt: t.Created, ExpiresAt: t.Expires, LastUsedAt: t.LastUsed,
	}, nil
}

// RevokeToken deletes the token: a revoked token has no use, and the audit
// trail keeps the record of it.
func (a authStore) RevokeToken(ctx context.Context, id string, _ time.Time) error {
	return notFound(a.db.DeleteToken(ctx, id))
}

func (a authStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	return a.db.TouchToken(ctx, id, at)
}
