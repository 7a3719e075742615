package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mamorisec/mamori/internal/server/query"
)

// Registry authentication types.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "token"
)

// Registry is a container registry the server scans images from.
//
// Its credential is stored in one of two ways. Secret is encrypted with
// AES-256-GCM under the key given to SetSecretKey (the registry name is
// authenticated with it, so a ciphertext cannot be moved to another
// registry) and is only decrypted by RegistrySecret; it never appears in
// Get or List results. SecretRef instead names where the credential lives
// outside the database ("env:REGISTRY_TOKEN", "file:/run/secrets/reg"),
// and is stored as written: resolving it is the caller's job.
type Registry struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// URL is the registry's base URL ("https://registry.example.com").
	URL string `json:"url"`
	// AuthType is AuthNone, AuthBasic or AuthBearer.
	AuthType string `json:"authType"`
	Username string `json:"username,omitempty"`
	// Secret is the password or token to store, write-only: it is read
	// back with RegistrySecret only.
	Secret string `json:"-"`
	// HasSecret reports whether an encrypted secret is stored.
	HasSecret bool   `json:"hasSecret"`
	SecretRef string `json:"secretRef,omitempty"`
	// Insecure allows plain HTTP or unverified TLS.
	Insecure bool      `json:"insecure,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// ErrNoSecretKey is returned when a registry secret is stored or read
// before SetSecretKey.
var ErrNoSecretKey = errors.New("no secret key configured for encrypting registry credentials")

// SetSecretKey sets the 32-byte AES-256 key that encrypts registry
// secrets. The server generates it on first run and keeps it outside the
// database.
func (s *Store) SetSecretKey(key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("secret key is %d bytes, want 32", len(key))
	}
	s.secretKey = append([]byte(nil), key...)
	return nil
}

func (s *Store) aead() (cipher.AEAD, error) {
	if s.secretKey == nil {
		return nil, ErrNoSecretKey
	}
	b, err := aes.NewCipher(s.secretKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal encrypts a registry secret; nil for "".
func (s *Store) seal(name, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	g, err := s.aead()
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", name, err)
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, []byte(secret), []byte(name)), nil
}

func validRegistry(r *Registry) error {
	switch {
	case r.Name == "" || len(r.Name) > 128:
		return invalidf("registry name %q: want 1 to 128 characters", r.Name)
	case r.URL == "":
		return invalidf("registry %q: URL is required", r.Name)
	}
	switch r.AuthType {
	case AuthNone, AuthBasic, AuthBearer:
	default:
		return invalidf("registry %q: auth type %q is not one of none, basic, token", r.Name, r.AuthType)
	}
	if r.Secret != "" && r.SecretRef != "" {
		return invalidf("registry %q: give a secret or a secret reference, not both", r.Name)
	}
	return nil
}

// CreateRegistry stores a new registry and returns it with its ID.
func (s *Store) CreateRegistry(ctx context.Context, r Registry) (Registry, error) {
	if err := validRegistry(&r); err != nil {
		return Registry{}, err
	}
	sealed, err := s.seal(r.Name, r.Secret)
	if err != nil {
		return Registry{}, err
	}
	now := s.nowMicros()
	r.ID, err = s.insertID(ctx, s.db, `INSERT INTO registries (name, url, auth_type, username, secret, secret_ref, insecure, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Name, r.URL, r.AuthType, r.Username, sealed, r.SecretRef, r.Insecure, now, now)
	if err != nil {
		return Registry{}, dbErr(err, fmt.Sprintf("creating registry %q", r.Name))
	}
	r.Secret, r.HasSecret, r.Created, r.Updated = "", sealed != nil, fromMicros(now), fromMicros(now)
	return r, nil
}

// UpdateRegistry replaces the registry with r.ID. An empty Secret keeps the
// stored secret unless SecretRef is set or AuthType is AuthNone.
func (s *Store) UpdateRegistry(ctx context.Context, r Registry) (Registry, error) {
	if err := validRegistry(&r); err != nil {
		return Registry{}, err
	}
	sealed, err := s.seal(r.Name, r.Secret)
	if err != nil {
		return Registry{}, err
	}
	now := s.nowMicros()
	what := fmt.Sprintf("updating registry %d", r.ID)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var old []byte
		var oldName string
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT name, secret FROM registries WHERE id = ?"), r.ID).Scan(&oldName, &old); err != nil {
			return dbErr(err, what)
		}
		if sealed == nil && r.SecretRef == "" && r.AuthType != AuthNone {
			if oldName != r.Name && old != nil {
				return invalidf("%s: renaming a registry needs its secret again", what)
			}
			sealed = old
		}
		res, err := s.exec(ctx, tx, `UPDATE registries SET name = ?, url = ?, auth_type = ?, username = ?, secret = ?, secret_ref = ?,
			insecure = ?, updated = ? WHERE id = ?`, r.Name, r.URL, r.AuthType, r.Username, sealed, r.SecretRef, r.Insecure, now, r.ID)
		return affected(res, err, what)
	})
	if err != nil {
		return Registry{}, err
	}
	return s.GetRegistry(ctx, r.ID)
}

const registryCols = "r.id, r.name, r.url, r.auth_type, r.username, r.secret IS NOT NULL, r.secret_ref, r.insecure, r.created, r.updated"

func scanRegistry(r *Registry) []any {
	return []any{&r.ID, &r.Name, &r.URL, &r.AuthType, &r.Username, &r.HasSecret, &r.SecretRef, &r.Insecure, timeCol{&r.Created}, timeCol{&r.Updated}}
}

// GetRegistry returns a registry without its secret.
func (s *Store) GetRegistry(ctx context.Context, id int64) (Registry, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+registryCols+" FROM registries r WHERE r.id = ?"), id)
	return scanRow(row, scanRegistry, fmt.Sprintf("registry %d", id))
}

// RegistrySecret decrypts the stored secret of a registry ("" when none).
func (s *Store) RegistrySecret(ctx context.Context, id int64) (string, error) {
	var name string
	var sealed []byte
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT name, secret FROM registries WHERE id = ?"), id).Scan(&name, &sealed)
	if err != nil {
		return "", dbErr(err, fmt.Sprintf("registry %d", id))
	}
	if sealed == nil {
		return "", nil
	}
	g, err := s.aead()
	if err != nil {
		return "", fmt.Errorf("registry %q: %w", name, err)
	}
	if len(sealed) < g.NonceSize() {
		return "", fmt.Errorf("registry %q: stored secret is truncated", name)
	}
	plain, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(name))
	if err != nil {
		return "", fmt.Errorf("registry %q: cannot decrypt the stored secret (wrong secret key?): %w", name, err)
	}
	return string(plain), nil
}

// DeleteRegistry deletes a registry.
func (s *Store) DeleteRegistry(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM registries WHERE id = ?", id)
	return affected(res, err, fmt.Sprintf("deleting registry %d", id))
}

var registryList = &listSpec[Registry]{
	schema: &query.Schema{Resource: "registries", ID: "r.id", Fields: []query.Field{
		{Name: "id", Column: "r.id", Type: query.Int},
		{Name: "name", Column: "r.name", Type: query.String},
		{Name: "url", Column: "r.url", Type: query.String},
		{Name: "authType", Column: "r.auth_type", Type: query.Enum, Values: []string{AuthBasic, AuthNone, AuthBearer}},
		{Name: "created", Column: "r.created", Type: query.Time},
	}},
	from: "registries r", cols: registryCols, scan: scanRegistry, def: []query.SortKey{{Field: "name"}},
}

// ListRegistries returns a page of registries. Fields: id, name, url,
// authType, created.
func (s *Store) ListRegistries(ctx context.Context, opts ListOptions) (Page[Registry], error) {
	return list(ctx, s, registryList, opts)
}
