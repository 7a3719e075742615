package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// User sources.
const (
	SourceLocal = "local"
	SourceLDAP  = "ldap"
	SourceOIDC  = "oidc"
)

// User is a console user.
type User struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName,omitempty"`
	// PasswordHash is the encoded password hash (for example an argon2id
	// or bcrypt string) of a local user, "" for others. The store never
	// sees a password.
	PasswordHash string `json:"-"`
	// Source is SourceLocal, SourceLDAP or SourceOIDC.
	Source   string `json:"source"`
	Disabled bool   `json:"disabled"`
	// FailedLogins counts consecutive failed logins; LockedUntil, when
	// set, is when a lock-out ends.
	FailedLogins int       `json:"failedLogins"`
	LockedUntil  time.Time `json:"lockedUntil,omitzero"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

func validUser(u *User) error {
	if u.Username == "" || len(u.Username) > 256 {
		return invalidf("username %q: want 1 to 256 characters", u.Username)
	}
	switch u.Source {
	case SourceLocal, SourceLDAP, SourceOIDC:
		return nil
	}
	return invalidf("user %q: source %q is not local, ldap or oidc", u.Username, u.Source)
}

// CreateUser stores a new user.
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	if err := validUser(&u); err != nil {
		return User{}, err
	}
	now := s.nowMicros()
	var err error
	u.ID, err = s.insertID(ctx, s.db, `INSERT INTO users (username, display_name, password_hash, source, disabled, failed_logins,
		locked_until, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Username, u.DisplayName, u.PasswordHash, u.Source, u.Disabled, u.FailedLogins, micros(u.LockedUntil), now, now)
	if err != nil {
		return User{}, dbErr(err, fmt.Sprintf("creating user %q", u.Username))
	}
	u.Created, u.Updated = fromMicros(now), fromMicros(now)
	return u, nil
}

// UpdateUser replaces the user with u.ID (every field but Created).
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	if err := validUser(&u); err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, `UPDATE users SET username = ?, display_name = ?, password_hash = ?, source = ?, disabled = ?,
		failed_logins = ?, locked_until = ?, updated = ? WHERE id = ?`, u.Username, u.DisplayName, u.PasswordHash, u.Source,
		u.Disabled, u.FailedLogins, micros(u.LockedUntil), s.nowMicros(), u.ID)
	return affected(res, err, fmt.Sprintf("updating user %d", u.ID))
}

// RecordLogin records a login attempt atomically: a success resets the
// failure count; a failure increments it and, when it reaches maxFailures
// (if positive), locks the user until lockUntil. It returns the updated
// user.
func (s *Store) RecordLogin(ctx context.Context, id int64, success bool, maxFailures int, lockUntil time.Time) (User, error) {
	var err error
	if success {
		_, err = s.exec(ctx, s.db, "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", id)
	} else {
		_, err = s.exec(ctx, s.db, `UPDATE users SET failed_logins = failed_logins + 1,
			locked_until = CASE WHEN ? > 0 AND failed_logins + 1 >= ? THEN ? ELSE locked_until END WHERE id = ?`,
			maxFailures, maxFailures, micros(lockUntil), id)
	}
	if err != nil {
		return User{}, dbErr(err, fmt.Sprintf("recording login of user %d", id))
	}
	return s.GetUser(ctx, id)
}

const userCols = "u.id, u.username, u.display_name, u.password_hash, u.source, u.disabled, u.failed_logins, u.locked_until, u.created, u.updated"

func scanUser(u *User) []any {
	return []any{&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, &u.Source, &u.Disabled, &u.FailedLogins,
		timeCol{&u.LockedUntil}, timeCol{&u.Created}, timeCol{&u.Updated}}
}

// GetUser returns a user by id.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+userCols+" FROM users u WHERE u.id = ?"), id)
	return scanRow(row, scanUser, fmt.Sprintf("user %d", id))
}

// GetUserByName returns a user by username.
func (s *Store) GetUserByName(ctx context.Context, username string) (User, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+userCols+" FROM users u WHERE u.username = ?"), username)
	return scanRow(row, scanUser, fmt.Sprintf("user %q", username))
}

// DeleteUser deletes a user with its tokens and sessions.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM users WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting user %d", id))
}

var userList = &listSpec[User]{
	schema: &query.Schema{Resource: "users", ID: "u.id", Fields: []query.Field{
		{Name: "id", Column: "u.id", Type: query.Int},
		{Name: "username", Column: "u.username", Type: query.String},
		{Name: "displayName", Column: "u.display_name", Type: query.String},
		{Name: "source", Column: "u.source", Type: query.Enum, Values: []string{SourceLDAP, SourceLocal, SourceOIDC}},
		{Name: "disabled", Column: "u.disabled", Type: query.Bool},
		{Name: "created", Column: "u.created", Type: query.Time},
	}},
	from: "users u", cols: userCols, scan: scanUser, def: []query.SortKey{{Field: "username"}},
}

// ListUsers returns a page of users. Fields: id, username, displayName,
// source, disabled, created.
func (s *Store) ListUsers(ctx context.Context, opts ListOptions) (Page[User], error) {
	return list(ctx, s, userList, opts)
}

// Role is a named set of permissions.
type Role struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Permissions []string  `json:"permissions"`
	Created     time.Time `json:"created"`
}

// CreateRole stores a new role.
func (s *Store) CreateRole(ctx context.Context, r Role) (Role, error) {
	if r.Name == "" || len(r.Name) > 128 {
		return Role{}, invalidf("role name %q: want 1 to 128 characters", r.Name)
	}
	now := s.nowMicros()
	perms, err := jsonCol{nonNil(r.Permissions)}.Value()
	if err != nil {
		return Role{}, err
	}
	r.ID, err = s.insertID(ctx, s.db, "INSERT INTO roles (name, description, permissions, created) VALUES (?, ?, ?, ?)",
		r.Name, r.Description, perms, now)
	if err != nil {
		return Role{}, dbErr(err, fmt.Sprintf("creating role %q", r.Name))
	}
	r.Created = fromMicros(now)
	return r, nil
}

// UpdateRole replaces the name, description and permissions of r.ID.
func (s *Store) UpdateRole(ctx context.Context, r Role) error {
	perms, err := jsonCol{nonNil(r.Permissions)}.Value()
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, s.db, "UPDATE roles SET name = ?, description = ?, permissions = ? WHERE id = ?", r.Name, r.Description, perms, r.ID)
	return affected(res, err, fmt.Sprintf("updating role %d", r.ID))
}

const roleCols = "r.id, r.name, r.description, r.permissions, r.created"

func scanRole(r *Role) []any {
	return []any{&r.ID, &r.Name, &r.Description, jsonCol{&r.Permissions}, timeCol{&r.Created}}
}

// GetRole returns a role by name.
func (s *Store) GetRole(ctx context.Context, name string) (Role, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+roleCols+" FROM roles r WHERE r.name = ?"), name)
	return scanRow(row, scanRole, fmt.Sprintf("role %q", name))
}

// DeleteRole deletes a role and its bindings.
func (s *Store) DeleteRole(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM roles WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting role %d", id))
}

var roleList = &listSpec[Role]{
	schema: &query.Schema{Resource: "roles", ID: "r.id", Fields: []query.Field{
		{Name: "id", Column: "r.id", Type: query.Int},
		{Name: "name", Column: "r.name", Type: query.String},
	}},
	from: "roles r", cols: roleCols, scan: scanRole, def: []query.SortKey{{Field: "name"}},
}

// ListRoles returns a page of roles. Fields: id, name.
func (s *Store) ListRoles(ctx context.Context, opts ListOptions) (Page[Role], error) {
	return list(ctx, s, roleList, opts)
}

// AppScope is an application scope: a named set of images (its Definition,
// a JSON document the RBAC layer interprets and turns into a Scope).
type AppScope struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Definition  json.RawMessage `json:"definition"`
	Created     time.Time       `json:"created"`
}

// CreateAppScope stores a new application scope.
func (s *Store) CreateAppScope(ctx context.Context, a AppScope) (AppScope, error) {
	if a.Name == "" || len(a.Name) > 128 {
		return AppScope{}, invalidf("application scope name %q: want 1 to 128 characters", a.Name)
	}
	if !json.Valid(a.Definition) {
		return AppScope{}, invalidf("application scope %q: the definition is not valid JSON", a.Name)
	}
	now := s.nowMicros()
	var err error
	a.ID, err = s.insertID(ctx, s.db, "INSERT INTO app_scopes (name, description, definition, created) VALUES (?, ?, ?, ?)",
		a.Name, a.Description, rawJSON(a.Definition), now)
	if err != nil {
		return AppScope{}, dbErr(err, fmt.Sprintf("creating application scope %q", a.Name))
	}
	a.Created = fromMicros(now)
	return a, nil
}

// UpdateAppScope replaces the description and definition of a.ID.
func (s *Store) UpdateAppScope(ctx context.Context, a AppScope) error {
	if !json.Valid(a.Definition) {
		return invalidf("application scope %q: the definition is not valid JSON", a.Name)
	}
	res, err := s.exec(ctx, s.db, "UPDATE app_scopes SET name = ?, description = ?, definition = ? WHERE id = ?",
		a.Name, a.Description, rawJSON(a.Definition), a.ID)
	return affected(res, err, fmt.Sprintf("updating application scope %d", a.ID))
}

const appScopeCols = "a.id, a.name, a.description, a.definition, a.created"

func scanAppScope(a *AppScope) []any {
	return []any{&a.ID, &a.Name, &a.Description, rawCol{&a.Definition}, timeCol{&a.Created}}
}

// GetAppScope returns an application scope by name.
func (s *Store) GetAppScope(ctx context.Context, name string) (AppScope, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+appScopeCols+" FROM app_scopes a WHERE a.name = ?"), name)
	return scanRow(row, scanAppScope, fmt.Sprintf("application scope %q", name))
}

// DeleteAppScope deletes an application scope.
func (s *Store) DeleteAppScope(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM app_scopes WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting application scope %d", id))
}

var appScopeList = &listSpec[AppScope]{
	schema: &query.Schema{Resource: "application scopes", ID: "a.id", Fields: []query.Field{
		{Name: "id", Column: "a.id", Type: query.Int},
		{Name: "name", Column: "a.name", Type: query.String},
	}},
	from: "app_scopes a", cols: appScopeCols, scan: scanAppScope, def: []query.SortKey{{Field: "name"}},
}

// ListAppScopes returns a page of application scopes. Fields: id, name.
func (s *Store) ListAppScopes(ctx context.Context, opts ListOptions) (Page[AppScope], error) {
	return list(ctx, s, appScopeList, opts)
}

// Role binding subject kinds.
const (
	SubjectUser  = "user"
	SubjectGroup = "group"
)

// RoleBinding grants a role to a user or group within application scopes.
type RoleBinding struct {
	ID int64 `json:"id"`
	// SubjectKind is SubjectUser or SubjectGroup; Subject the username or
	// group name.
	SubjectKind string `json:"subjectKind"`
	Subject     string `json:"subject"`
	Role        string `json:"role"`
	// Scopes are application scope names; empty means no image at all.
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
}

// CreateRoleBinding stores a binding of an existing role.
func (s *Store) CreateRoleBinding(ctx context.Context, b RoleBinding) (RoleBinding, error) {
	if b.SubjectKind != SubjectUser && b.SubjectKind != SubjectGroup {
		return RoleBinding{}, invalidf("role binding: subject kind %q is not user or group", b.SubjectKind)
	}
	if b.Subject == "" {
		return RoleBinding{}, invalidf("role binding of role %q: subject is required", b.Role)
	}
	scopes, err := jsonCol{nonNil(b.Scopes)}.Value()
	if err != nil {
		return RoleBinding{}, err
	}
	now := s.nowMicros()
	b.ID, err = s.insertID(ctx, s.db, `INSERT INTO role_bindings (subject_kind, subject, role_id, scopes, created)
		SELECT ?, ?, r.id, ?, ? FROM roles r WHERE r.name = ?`, b.SubjectKind, b.Subject, scopes, now, b.Role)
	if err != nil {
		return RoleBinding{}, dbErr(err, fmt.Sprintf("binding role %q to %s %q", b.Role, b.SubjectKind, b.Subject))
	}
	b.Created = fromMicros(now)
	return b, nil
}

// DeleteRoleBinding deletes a role binding.
func (s *Store) DeleteRoleBinding(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM role_bindings WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting role binding %d", id))
}

const bindingCols = "b.id, b.subject_kind, b.subject, r.name, b.scopes, b.created"

func scanBinding(b *RoleBinding) []any {
	return []any{&b.ID, &b.SubjectKind, &b.Subject, &b.Role, jsonCol{&b.Scopes}, timeCol{&b.Created}}
}

var bindingList = &listSpec[RoleBinding]{
	schema: &query.Schema{Resource: "role bindings", ID: "b.id", Fields: []query.Field{
		{Name: "id", Column: "b.id", Type: query.Int},
		{Name: "subjectKind", Column: "b.subject_kind", Type: query.Enum, Values: []string{SubjectGroup, SubjectUser}},
		{Name: "subject", Column: "b.subject", Type: query.String},
		{Name: "role", Column: "r.name", Type: query.String},
	}},
	from: "role_bindings b JOIN roles r ON r.id = b.role_id", cols: bindingCols, scan: scanBinding,
	def: []query.SortKey{{Field: "subject"}},
}

// ListRoleBindings returns a page of role bindings. Fields: id,
// subjectKind, subject, role. The RBAC layer finds a user's bindings with
// the filter "subjectKind=user;subject=NAME" (and one per group).
func (s *Store) ListRoleBindings(ctx context.Context, opts ListOptions) (Page[RoleBinding], error) {
	return list(ctx, s, bindingList, opts)
}
