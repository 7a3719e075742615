package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemStore is an in-memory UserStore, SessionStore and TokenStore for tests
// and development. It is safe for concurrent use.
type MemStore struct {
	mu       sync.Mutex
	users    map[string]*User // by ID
	sessions map[string]*Session
	tokens   map[string]*APIToken
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{users: map[string]*User{}, sessions: map[string]*Session{}, tokens: map[string]*APIToken{}}
}

func copyUser(u *User) *User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	return &c
}

// AddUser stores u, replacing a user with the same ID. Usernames must be unique.
func (m *MemStore) AddUser(u User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.users {
		if o.Username == u.Username && o.ID != u.ID {
			return fmt.Errorf("add user %q: username already used by user %s", u.Username, o.ID)
		}
	}
	m.users[u.ID] = copyUser(&u)
	return nil
}

// UserByUsername implements UserStore.
func (m *MemStore) UserByUsername(_ context.Context, username string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if u.Username == username {
			return copyUser(u), nil
		}
	}
	return nil, fmt.Errorf("user %q: %w", username, ErrNotFound)
}

// UserByID implements UserStore.
func (m *MemStore) UserByID(_ context.Context, id string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return nil, fmt.Errorf("user ID %q: %w", id, ErrNotFound)
	}
	return copyUser(u), nil
}

// SetPasswordHash implements UserStore.
func (m *MemStore) SetPasswordHash(_ context.Context, userID, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return fmt.Errorf("user ID %q: %w", userID, ErrNotFound)
	}
	u.PasswordHash = hash
	return nil
}

func copySession(s *Session) *Session {
	c := *s
	c.Identity.Groups = slices.Clone(s.Identity.Groups)
	return &c
}

// CreateSession implements SessionStore.
func (m *MemStore) CreateSession(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.IDHash]; ok {
		return fmt.Errorf("create session: duplicate session ID hash")
	}
	m.sessions[s.IDHash] = copySession(s)
	return nil
}

// SessionByHash implements SessionStore.
func (m *MemStore) SessionByHash(_ context.Context, idHash string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[idHash]
	if !ok {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	return copySession(s), nil
}

// TouchSession implements SessionStore.
func (m *MemStore) TouchSession(_ context.Context, idHash string, lastSeen time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[idHash]
	if !ok {
		return fmt.Errorf("session: %w", ErrNotFound)
	}
	s.LastSeenAt = lastSeen
	return nil
}

// DeleteSession implements SessionStore.
func (m *MemStore) DeleteSession(_ context.Context, idHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, idHash)
	return nil
}

// DeleteExpiredSessions implements SessionStore.
func (m *MemStore) DeleteExpiredSessions(_ context.Context, idleBefore, createdBefore time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, s := range m.sessions {
		if s.LastSeenAt.Before(idleBefore) || s.CreatedAt.Before(createdBefore) {
			delete(m.sessions, k)
			n++
		}
	}
	return n, nil
}

// SessionHashes returns the stored session ID hashes (for tests that check
// that raw session IDs are never stored).
func (m *MemStore) SessionHashes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.sessions {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func copyToken(t *APIToken) *APIToken {
	c := *t
	c.Scopes = slices.Clone(t.Scopes)
	return &c
}

// CreateToken implements TokenStore.
func (m *MemStore) CreateToken(_ context.Context, t *APIToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[t.ID]; ok {
		return fmt.Errorf("create token %s: duplicate ID", t.ID)
	}
	m.tokens[t.ID] = copyToken(t)
	return nil
}

// TokenByID implements TokenStore.
func (m *MemStore) TokenByID(_ context.Context, id string) (*APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return nil, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return copyToken(t), nil
}

// RevokeToken implements TokenStore.
func (m *MemStore) RevokeToken(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	t.RevokedAt = at
	return nil
}

// TouchToken implements TokenStore.
func (m *MemStore) TouchToken(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	t.LastUsedAt = at
	return nil
}
