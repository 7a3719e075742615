package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TokenPrefix starts every API token so that secret scanners can recognise
// leaked tokens. A token is TokenPrefix + 16 hex digits of ID + "_" + 64 hex
// digits of secret, matching mamori_[0-9a-f]{16}_[0-9a-f]{64}.
const TokenPrefix = "mamori_"

const (
	tokenIDLen     = 8  // bytes, 16 hex digits
	tokenSecretLen = 32 // bytes, 64 hex digits
	tokenLen       = len(TokenPrefix) + 2*tokenIDLen + 1 + 2*tokenSecretLen
)

// Token verification errors.
var (
	ErrMalformedToken = errors.New("malformed API token")
	ErrInvalidToken   = errors.New("invalid API token")
	ErrTokenExpired   = errors.New("API token expired")
	ErrTokenRevoked   = errors.New("API token revoked")
)

// parseToken splits a token string into its ID and secret.
func parseToken(s string) (id, secret string, err error) {
	if len(s) != tokenLen {
		return "", "", fmt.Errorf("%w: length %d, want %d", ErrMalformedToken, len(s), tokenLen)
	}
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: missing %q prefix", ErrMalformedToken, TokenPrefix)
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*tokenIDLen || !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", fmt.Errorf("%w: want %s<16 hex>_<64 hex>", ErrMalformedToken, TokenPrefix)
	}
	return id, secret, nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// IssueToken creates an API token for the user userID with the given name,
// scopes and lifetime, and returns the token string (shown to the user once;
// only the SHA-256 of its secret is stored) and the stored record.
func (s *Service) IssueToken(ctx context.Context, userID, name string, scopes []string, ttl time.Duration) (string, *APIToken, error) {
	if ttl <= 0 || ttl > s.cfg.MaxTokenLifetime {
		return "", nil, fmt.Errorf("issue token %q: lifetime %v out of range (0, %v]", name, ttl, s.cfg.MaxTokenLifetime)
	}
	if _, err := s.cfg.Users.UserByID(ctx, userID); err != nil {
		return "", nil, fmt.Errorf("issue token %q: %w", name, err)
	}
	id, secret := randomHex(tokenIDLen), randomHex(tokenSecretLen)
	now := s.now()
	t := &APIToken{
		ID:         id,
		UserID:     userID,
		Name:       name,
		SecretHash: hashSecret(secret),
		Scopes:     slices.Clone(scopes),
		CreatedAt:  now,
		ExpiresAt:  now.Add(ttl),
	}
	if err := s.cfg.Tokens.CreateToken(ctx, t); err != nil {
		return "", nil, fmt.Errorf("issue token %q: %w", name, err)
	}
	return TokenPrefix + id + "_" + secret, t, nil
}

// RevokeToken revokes the token with the given ID.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	if err := s.cfg.Tokens.RevokeToken(ctx, id, s.now()); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return nil
}

// VerifyToken checks a token string and returns its record, recording the
// use in LastUsedAt. It returns ErrMalformedToken, ErrInvalidToken (unknown
// ID or wrong secret), ErrTokenExpired or ErrTokenRevoked.
func (s *Service) VerifyToken(ctx context.Context, token string) (*APIToken, error) {
	id, secret, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	t, err := s.cfg.Tokens.TokenByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("look up token %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.SecretHash)) != 1 {
		return nil, ErrInvalidToken
	}
	now := s.now()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, ErrTokenRevoked
	case !now.Before(t.ExpiresAt):
		return nil, ErrTokenExpired
	}
	if err := s.cfg.Tokens.TouchToken(ctx, id, now); err != nil {
		s.logger.Error("record token use", "token", id, "err", err)
	}
	t.LastUsedAt = now
	return t, nil
}
