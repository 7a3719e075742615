package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// sessionIDLen is the length of a session ID in random bytes (256 bits).
const sessionIDLen = 32

// touchInterval limits how often a session's LastSeenAt is written.
const touchInterval = time.Minute

// ErrSessionExpired is returned for sessions past their idle timeout or
// absolute lifetime; ErrNotFound for unknown session IDs.
var ErrSessionExpired = errors.New("session expired")

// newSessionID returns a random session ID as unpadded base64url.
func newSessionID() string {
	b := make([]byte, sessionIDLen)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validSessionID reports whether id has the shape of a session ID, so that
// arbitrary cookie values are not looked up.
func validSessionID(id string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == sessionIDLen
}

// sessionHash is the stored form of a session ID.
func sessionHash(id string) string {
	h := sha256.Sum256([]byte("mamori session\x00" + id))
	return hex.EncodeToString(h[:])
}

// csrfToken derives the synchronizer CSRF token of a session. It is bound
// to the session (only the holder of the session ID can compute it), is not
// stored, and reveals nothing about the session ID or its stored hash.
func csrfToken(id string) string {
	h := sha256.Sum256([]byte("mamori csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CreateSession starts a session for id with a fresh random session ID and
// returns that ID (the cookie value). Callers rotate sessions at login by
// deleting the previous session (see HandleLogin).
func (s *Service) CreateSession(ctx context.Context, id *Identity) (string, *Session, error) {
	sid := newSessionID()
	now := s.now()
	ident := *id
	ident.Groups = slices.Clone(id.Groups)
	sess := &Session{IDHash: sessionHash(sid), Identity: ident, CreatedAt: now, LastSeenAt: now}
	if err := s.cfg.Sessions.CreateSession(ctx, sess); err != nil {
		return "", nil, fmt.Errorf("create session for %q: %w", id.Username, err)
	}
	return sid, sess, nil
}

// LookupSession returns the live session with ID sid, refreshing its idle
// timer. Expired sessions are deleted and give ErrSessionExpired; unknown
// or malformed IDs give ErrNotFound.
func (s *Service) LookupSession(ctx context.Context, sid string) (*Session, error) {
	if !validSessionID(sid) {
		return nil, fmt.Errorf("session cookie: %w", ErrNotFound)
	}
	h := sessionHash(sid)
	sess, err := s.cfg.Sessions.SessionByHash(ctx, h)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(sess.LastSeenAt.Add(s.cfg.IdleTimeout)) || !now.Before(sess.CreatedAt.Add(s.cfg.AbsoluteLifetime)) {
		if err := s.cfg.Sessions.DeleteSession(ctx, h); err != nil {
			s.logger.Error("delete expired session", "err", err)
		}
		return nil, ErrSessionExpired
	}
	if now.Sub(sess.LastSeenAt) >= touchInterval {
		if err := s.cfg.Sessions.TouchSession(ctx, h, now); err != nil {
			return nil, fmt.Errorf("refresh session of %q: %w", sess.Identity.Username, err)
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// DeleteSession ends the session with ID sid.
func (s *Service) DeleteSession(ctx context.Context, sid string) error {
	if err := s.cfg.Sessions.DeleteSession(ctx, sessionHash(sid)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PurgeExpiredSessions deletes sessions past their idle timeout or absolute
// lifetime; the server calls it periodically.
func (s *Service) PurgeExpiredSessions(ctx context.Context) (int, error) {
	now := s.now()
	n, err := s.cfg.Sessions.DeleteExpiredSessions(ctx, now.Add(-s.cfg.IdleTimeout), now.Add(-s.cfg.AbsoluteLifetime))
	if err != nil {
		return n, fmt.Errorf("purge expired sessions: %w", err)
	}
	return n, nil
}

// sessionCookie returns the session cookie carrying sid.
//
// SameSite=Strict: the console is a single-page application whose API calls
// are same-site, so Strict costs nothing there, while it keeps the cookie
// off every cross-site request, including top-level navigations that Lax
// would allow (GET requests that a handler might wrongly treat as safe).
// CSRF tokens remain the primary defence; SameSite is defence in depth.
// HttpOnly keeps the ID away from scripts, and Secure plus the __Host-
// prefix bind it to HTTPS on this exact host with Path=/.
func (s *Service) sessionCookie(sid string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookie,
		Value:    sid,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !s.cfg.InsecureCookie,
		SameSite: http.SameSiteStrictMode,
	}
}

// setSessionCookie sets the cookie for a new session; it expires with the
// session's absolute lifetime.
func (s *Service) setSessionCookie(w http.ResponseWriter, sid string) {
	http.SetCookie(w, s.sessionCookie(sid, int(s.cfg.AbsoluteLifetime/time.Second)))
}

// clearSessionCookie tells the browser to drop the session cookie.
func (s *Service) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.sessionCookie("", -1))
}

// StartSession logs in an identity that an external flow verified (an
// OIDC callback): any session the client presented is deleted (session
// fixation), a new one is created, its cookie set, and the login audited.
func (s *Service) StartSession(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	if c, err := r.Cookie(s.cookie); err == nil && c.Value != "" {
		if err := s.DeleteSession(ctx, c.Value); err != nil {
			return err
		}
	}
	sid, _, err := s.CreateSession(ctx, id)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, sid)
	s.audit(ctx, AuditEvent{Actor: id.Username, Action: ActionLogin, ClientIP: s.clientIP(r), Source: id.Source})
	return nil
}
