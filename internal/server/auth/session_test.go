package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name string
		// steps of idle time between uses of the session
		steps   []time.Duration
		wantErr error
	}{
		{"fresh", []time.Duration{0}, nil},
		{"used within idle timeout", []time.Duration{29 * time.Minute, 29 * time.Minute}, nil},
		{"idle timeout", []time.Duration{30 * time.Minute}, ErrSessionExpired},
		{"kept alive until absolute lifetime", repeat(20*time.Minute, 23), nil}, // 7h40m
		{"absolute lifetime", repeat(20*time.Minute, 24), ErrSessionExpired},    // 8h
		// LastSeenAt is written at most once a minute, so a use 50 s after
		// the last write does not move the idle deadline.
		{"touch throttled to once a minute", []time.Duration{50 * time.Second, 29*time.Minute + 30*time.Second}, ErrSessionExpired},
		{"touch after a minute", []time.Duration{70 * time.Second, 29*time.Minute + 30*time.Second}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			ctx := context.Background()
			sid, _, err := e.svc.CreateSession(ctx, &Identity{UserID: "u1", Username: "alice", Source: "local"})
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.steps {
				e.clock.Advance(d)
				_, err = e.svc.LookupSession(ctx, sid)
				if err != nil && i < len(tc.steps)-1 {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("LookupSession = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if n := len(e.store.SessionHashes()); n != 0 {
					t.Errorf("expired session still stored (%d sessions)", n)
				}
				if _, err := e.svc.LookupSession(ctx, sid); !errors.Is(err, ErrNotFound) {
					t.Errorf("second lookup of expired session = %v, want ErrNotFound", err)
				}
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestSessionStoresOnlyHash(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	sid, sess, err := e.svc.CreateSession(ctx, &Identity{UserID: "u1", Username: "alice", Source: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sid) != 43 || !validSessionID(sid) {
		t.Errorf("session ID %q is not 256 bits of base64url", sid)
	}
	hashes := e.store.SessionHashes()
	if len(hashes) != 1 || hashes[0] != sess.IDHash || strings.Contains(hashes[0], sid) || hashes[0] == sid {
		t.Errorf("stored %v for session %q", hashes, sid)
	}
	if csrfToken(sid) == sess.IDHash || strings.Contains(csrfToken(sid), sid) {
		t.Error("CSRF token reveals the session ID or its stored hash")
	}
	for _, bad := range []string{"", "short", sess.IDHash, sid + "A", strings.ToUpper(sid)} {
		if _, err := e.svc.LookupSession(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupSession(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	sid2, _, _ := e.svc.CreateSession(ctx, &Identity{UserID: "u1", Username: "alice", Source: "local"})
	if sid2 == sid {
		t.Error("two sessions got the same ID")
	}
}

func TestPurgeExpiredSessions(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	id := &Identity{UserID: "u1", Username: "alice", Source: "local"}
	e.svc.CreateSession(ctx, id)
	e.clock.Advance(20 * time.Minute)
	live, _, _ := e.svc.CreateSession(ctx, id)
	e.clock.Advance(15 * time.Minute)
	n, err := e.svc.PurgeExpiredSessions(ctx)
	if err != nil || n != 1 {
		t.Fatalf("PurgeExpiredSessions = %d, %v; want 1", n, err)
	}
	if _, err := e.svc.LookupSession(ctx, live); err != nil {
		t.Errorf("live session purged: %v", err)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, nil)
	tok, rec, err := e.svc.IssueToken(ctx, "u1", "ci", []string{"scan:write", "scan:read"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != tokenLen {
		t.Fatalf("token %q has the wrong format", tok)
	}
	stored, _ := e.store.TokenByID(ctx, rec.ID)
	if strings.Contains(stored.SecretHash, tok[len(TokenPrefix)+17:]) {
		t.Fatal("token secret stored in clear")
	}
	revoked, rrec, _ := e.svc.IssueToken(ctx, "u1", "old", nil, time.Hour)
	if err := e.svc.RevokeToken(ctx, rrec.ID); err != nil {
		t.Fatal(err)
	}
	short, _, _ := e.svc.IssueToken(ctx, "u1", "short", nil, time.Minute)
	e.clock.Advance(2 * time.Minute)

	wrongSecret := tok[:len(tok)-1] + map[bool]string{true: "1", false: "0"}[tok[len(tok)-1] == '0']
	unknownID := TokenPrefix + "0123456789abcdef" + tok[len(TokenPrefix)+16:]
	for _, tc := range []struct {
		name, token string
		want        error
	}{
		{"valid", tok, nil},
		{"expired", short, ErrTokenExpired},
		{"revoked", revoked, ErrTokenRevoked},
		{"wrong secret", wrongSecret, ErrInvalidToken},
		{"unknown id", unknownID, ErrInvalidToken},
		{"empty", "", ErrMalformedToken},
		{"other prefix", "ghp_" + tok[4:], ErrMalformedToken},
		{"upper hex", strings.ToUpper(tok[:7]) + tok[7:], ErrMalformedToken},
		{"uppercase secret", tok[:len(tok)-64] + strings.ToUpper(tok[len(tok)-64:]), ErrMalformedToken},
		{"missing separator", strings.Replace(tok, "_", "-", 2), ErrMalformedToken},
		{"too long", tok + "0", ErrMalformedToken},
		{"moved separator", TokenPrefix + tok[8:24] + "_" + tok[7:8] + tok[25:], ErrMalformedToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.VerifyToken(ctx, tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyToken = %v, want %v", err, tc.want)
			}
			if err == nil && (got.UserID != "u1" || len(got.Scopes) != 2 || !got.LastUsedAt.Equal(e.clock.Now())) {
				t.Errorf("token record %+v", got)
			}
		})
	}
	stored, _ = e.store.TokenByID(ctx, rec.ID)
	if !stored.LastUsedAt.Equal(e.clock.Now()) {
		t.Errorf("LastUsedAt = %v, want %v", stored.LastUsedAt, e.clock.Now())
	}
	for _, tc := range []struct {
		name, user string
		ttl        time.Duration
	}{
		{"no expiry", "u1", 0},
		{"too long", "u1", 400 * 24 * time.Hour},
		{"unknown user", "nope", time.Hour},
	} {
		if _, _, err := e.svc.IssueToken(ctx, tc.user, tc.name, nil, tc.ttl); err == nil {
			t.Errorf("IssueToken %s: no error", tc.name)
		}
	}
	if err := e.svc.RevokeToken(ctx, "ffffffffffffffff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("mamori_0123456789abcdef_" + strings.Repeat("ab", 32))
	f.Add("mamori__")
	f.Add("mamori_0123456789abcdef" + strings.Repeat("_", 65))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := parseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("error %v does not wrap ErrMalformedToken", err)
			}
			return
		}
		if TokenPrefix+id+"_"+secret != s || len(id) != 16 || len(secret) != 64 || !isLowerHex(id+secret) {
			t.Fatalf("parseToken(%q) = %q, %q", s, id, secret)
		}
	})
}
