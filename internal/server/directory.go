package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
