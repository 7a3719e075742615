package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/ldapauth"
	"github.com/mamorisec/mamori/internal/server/store"
)

// directoryLogin adapts an LDAP/AD directory to the login chain. A
// directory user gets a user row on first login (source "ldap", no
// password), so that tokens and the audit trail can name it; their roles
// come from role bindings on their directory groups (by group DN) or on
// their username.
type directoryLogin struct {
	db  *store.Store
	dir *ldapauth.Authenticator
}

func (d directoryLogin) Authenticate(ctx context.Context, username, password string) (*auth.Identity, error) {
	id, err := d.dir.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, ldapauth.ErrInvalidCredentials):
		return nil, auth.ErrInvalidCredentials
	case err != nil:
		return nil, fmt.Errorf("directory login: %w", err)
	}
	u, err := d.db.GetUserByName(ctx, id.Username)
	if errors.Is(err, store.ErrNotFound) {
		u, err = d.db.CreateUser(ctx, store.User{Username: id.Username, DisplayName: id.DisplayName, Source: store.SourceLDAP})
	}
	if err != nil {
		return nil, err
	}
	if u.Source != store.SourceLDAP {
		// A local account of the same name is not taken over by the
		// directory.
		return nil, auth.ErrInvalidCredentials
	}
	if u.Disabled {
		return nil, auth.ErrInvalidCredentials
	}
	return &auth.Identity{UserID: strconv.FormatInt(u.ID, 10), Username: u.Username, Groups: id.Groups, Source: store.SourceLDAP}, nil
}

// oidcLogin serves the OIDC login: /api/v1/auth/oidc/login redirects to
// the provider, /api/v1/auth/oidc/callback verifies the answer (state,
// PKCE, ID token), gives the user a row (source "oidc") on first login,
// starts a session and redirects to the console. Roles come from role
// bindings on the user's group claims or username.
func (s *Server) oidcBegin(w http.ResponseWriter, r *http.Request) error {
	if s.oidc == nil {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "single sign-on is not configured")
	}
	s.oidc.Begin(w, r)
	return nil
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	if s.oidc == nil {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "single sign-on is not configured")
	}
	id, err := s.oidc.Callback(w, r)
	if err != nil {
		s.auditAuth(r.Context(), auth.AuditEvent{Time: s.cfg.Now(), Action: auth.ActionLoginFailed, ClientIP: s.auth.ClientIP(r), Reason: "oidc", Source: store.SourceOIDC})
		s.cfg.Log.WarnContext(r.Context(), "OIDC login failed", "err", err)
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "single sign-on failed")
	}
	u, err := s.db.GetUserByName(r.Context(), id.Username)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.db.CreateUser(r.Context(), store.User{Username: id.Username, DisplayName: id.DisplayName, Source: store.SourceOIDC})
	}
	if err != nil {
		return err
	}
	if u.Source != store.SourceOIDC || u.Disabled {
		s.auditAuth(r.Context(), auth.AuditEvent{Time: s.cfg.Now(), Actor: id.Username, Action: auth.ActionLoginFailed, ClientIP: s.auth.ClientIP(r), Reason: "account is not an SSO account or is disabled", Source: store.SourceOIDC})
		return api.Errorf(http.StatusForbidden, api.CodeForbidden, "this account cannot log in with single sign-on")
	}
	if err := s.auth.StartSession(w, r, &auth.Identity{UserID: strconv.FormatInt(u.ID, 10), Username: u.Username, Groups: id.Groups, Source: store.SourceOIDC}); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusFound)
	return nil
}
